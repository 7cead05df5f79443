"""Fashion-MNIST as an image folder scaler reads (``--data imagefolder:OUT``).

Reads the four IDX files of Debian's ``dataset-fashion-mnist`` package (70,000 grayscale
images of 28 px, 10 classes, MIT licence; ``apt-get install dataset-fashion-mnist`` puts them in
/usr/share/datasets/fashion-mnist) and writes PNGs as OUT/{train,val,test}/CLASS/N.png: a
seeded, class-balanced draw of ``--train`` images per class from the official training set for
train, ``--val`` more for val, and ``--test`` per class from the official test set, so the
test images were never beside the training ones. Nothing is downloaded.

  python scripts/fashion_mnist.py OUT [--idx DIR] [--train 260] [--val 65] [--test 65] [--seed 0]
  python scripts/fashion_mnist.py --npz scaler/data/fashion_mnist.npz --val 150 --test 150

``--npz`` writes the same draw as one compressed file instead of PNGs (images ordered by class,
then by index in the official files): the file ``--data fashion`` serves, built this way.

The defaults give 2,600 / 650 / 650 images: the embedded set's sizes, so the default proxy's
2 epochs are the same number of SGD steps on both.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np

from scaler.data.fashion import FASHION_CLASSES as CLASSES

IDX = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip or not) as an array: magic 0x00000800 | dtype | rank, then the sizes."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    rank = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


def load(idx: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """(images N x 28 x 28, labels N) of ``part`` ("train" or "t10k")."""
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        names = [idx / f"{part}-{kind}.gz", idx / f"{part}-{kind}"]
        path = next((p for p in names if p.exists()), None)
        if path is None:
            raise FileNotFoundError(
                f"{names[0]} is missing: install Debian's dataset-fashion-mnist or give --idx"
            )
        found.append(read_idx(path))
    return found[0], found[1]


def draw(labels: np.ndarray, counts: list[int], rng) -> list[np.ndarray]:
    """Disjoint per-class draws: for each count, ``count`` indices of every class."""
    out = [[] for _ in counts]
    for c in range(len(CLASSES)):
        pool = rng.permutation(np.flatnonzero(labels == c))
        if len(pool) < sum(counts):
            raise ValueError(f"class {CLASSES[c]} has {len(pool)} images, {sum(counts)} asked")
        start = 0
        for i, n in enumerate(counts):
            out[i].append(pool[start : start + n])
            start += n
    return [np.sort(np.concatenate(o)) for o in out]


def write(out: Path, split: str, images: np.ndarray, labels: np.ndarray, picks) -> None:
    from PIL import Image

    for c in CLASSES:
        (out / split / c).mkdir(parents=True, exist_ok=True)
    for i in picks:
        Image.fromarray(images[i], mode="L").save(out / split / CLASSES[labels[i]] / f"{i}.png")


def write_npz(out: Path, parts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """The draw as one file: SPLIT_images (N x 28 x 28) and SPLIT_labels, by class then index."""
    arrays = {}
    for split, (images, labels, picks) in parts.items():
        order = picks[np.lexsort((picks, labels[picks]))]
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images[order], labels[order]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, nargs="?")
    ap.add_argument("--npz", type=Path, help="write the draw as this .npz file instead")
    ap.add_argument("--idx", type=Path, default=IDX)
    ap.add_argument("--train", type=int, default=260, help="train images per class")
    ap.add_argument("--val", type=int, default=65, help="val images per class")
    ap.add_argument("--test", type=int, default=65, help="test images per class")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if min(a.train, a.val, a.test) < 1:
        ap.error("--train, --val and --test must be at least 1")
    if (a.out is None) == (a.npz is None):
        ap.error("give OUT (an image folder) or --npz FILE, not both")
    if a.out is not None and a.out.exists() and any(a.out.iterdir()):
        ap.error(f"{a.out} exists and is not empty: give a new folder")
    try:
        train_x, train_y = load(a.idx, "train")
        test_x, test_y = load(a.idx, "t10k")
        rng = np.random.default_rng(a.seed)
        train, val = draw(train_y, [a.train, a.val], rng)
        (test,) = draw(test_y, [a.test], rng)
    except (OSError, ValueError) as e:
        print(f"fashion_mnist.py: {e}", file=sys.stderr)
        return 2
    if a.npz is not None:
        parts = {"train": (train_x, train_y, train), "val": (train_x, train_y, val)}
        write_npz(a.npz, {**parts, "test": (test_x, test_y, test)})
        print(f"wrote {len(train)} / {len(val)} / {len(test)} images to {a.npz}")
        return 0
    write(a.out, "train", train_x, train_y, train)
    write(a.out, "val", train_x, train_y, val)
    write(a.out, "test", test_x, test_y, test)
    print(f"wrote {len(train)} / {len(val)} / {len(test)} images (train / val / test) to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
