"""scripts/fashion_mnist.py: IDX files into an image folder scaler reads, on small made-up IDX
files written here (the real ones come from Debian's dataset-fashion-mnist package)."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fashion_mnist.py"


def _script():
    spec = importlib.util.spec_from_file_location("fashion_mnist", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _idx(path: Path, array: np.ndarray) -> None:
    head = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(gzip.compress(head + array.astype(np.uint8).tobytes()))


@pytest.fixture
def idx(tmp_path):
    rng = np.random.default_rng(0)
    for part, per_class in (("train", 8), ("t10k", 3)):
        labels = np.repeat(np.arange(10), per_class)
        # Each image holds its own index in the first pixel: draws can be traced back.
        images = rng.integers(0, 255, (len(labels), 28, 28))
        images[:, 0, 0] = np.arange(len(labels))
        _idx(tmp_path / f"{part}-images-idx3-ubyte.gz", images)
        _idx(tmp_path / f"{part}-labels-idx1-ubyte.gz", labels)
    return tmp_path


def test_idx_round_trip(idx):
    fm = _script()
    images = fm.read_idx(idx / "train-images-idx3-ubyte.gz")
    assert images.shape == (80, 28, 28) and list(images[:5, 0, 0]) == [0, 1, 2, 3, 4]
    assert list(fm.read_idx(idx / "t10k-labels-idx1-ubyte.gz")[:4]) == [0, 0, 0, 1]


def test_writes_disjoint_class_balanced_splits_that_scaler_reads(idx, tmp_path):
    from PIL import Image

    from scaler.data import parse_data

    out = tmp_path / "fm"
    assert (
        _script().main([str(out), "--idx", str(idx), "--train", "5", "--val", "2", "--test", "3"])
        == 0
    )
    counts = {s: len(list((out / s).rglob("*.png"))) for s in ("train", "val", "test")}
    assert counts == {"train": 50, "val": 20, "test": 30}
    names = {s: {p.stem for p in (out / s).rglob("*.png")} for s in ("train", "val")}
    assert not names["train"] & names["val"]  # drawn without overlap from the training set
    png = next((out / "train" / "bag").glob("*.png"))
    assert Image.open(png).size == (28, 28) and Image.open(png).mode == "L"
    source = parse_data(f"imagefolder:{out}")
    assert source.num_classes == 10


def test_refuses_what_it_cannot_do(idx, tmp_path, capsys):
    fm = _script()
    assert fm.main([str(tmp_path / "a"), "--idx", str(tmp_path / "none")]) == 2
    assert "dataset-fashion-mnist" in capsys.readouterr().err
    assert fm.main([str(tmp_path / "b"), "--idx", str(idx), "--train", "8", "--val", "1"]) == 2
    assert "class t-shirt has 8 images, 9 asked" in capsys.readouterr().err


def test_npz_holds_the_same_draw_by_class(idx, tmp_path):
    fm = _script()
    out, npz = tmp_path / "fm", tmp_path / "fm.npz"
    args = ["--idx", str(idx), "--train", "5", "--val", "2", "--test", "3"]
    assert fm.main([str(out), *args]) == 0 and fm.main(["--npz", str(npz), *args]) == 0
    with np.load(npz) as f:
        arrays = {k: f[k] for k in f.files}
    for split, n in (("train", 50), ("val", 20), ("test", 30)):
        labels = arrays[f"{split}_labels"]
        assert arrays[f"{split}_images"].shape == (n, 28, 28)
        assert list(labels) == sorted(labels)  # by class, so a prefix per class is a draw
        traced = {int(i) for i in arrays[f"{split}_images"][:, 0, 0]}
        assert traced == {int(p.stem) for p in (out / split).rglob("*.png")}
    with pytest.raises(SystemExit):  # a folder and a file at once: one or the other
        fm.main([str(tmp_path / "c"), "--npz", str(npz), *args])


def test_embedded_fashion_serves_balanced_grayscale_splits():
    import torch

    from scaler.data import DataError, parse_data

    source = parse_data("fashion", upsample="bilinear")
    assert (source.num_classes, source.native_pixels, source.grayscale) == (10, 28, True)
    sizes = {s: len(source.load(s, 28)) for s in ("train", "val", "test")}
    assert sizes == {"train": 2600, "val": 1500, "test": 1500}
    val = source.load("val", 48)
    assert val.images.shape == (1500, 3, 48, 48)
    assert torch.equal(val.images[:, 0], val.images[:, 2])  # one channel, replicated
    assert val.labels.bincount().tolist() == [150] * 10
    small = parse_data("fashion:train=10,val=5")
    assert small.name == "fashion:train=10,val=5" and len(small.load("val", 28)) == 50
    # The first n of each class: a smaller draw is inside the larger one.
    assert torch.equal(small.load("train", 28).images[:10], source.load("train", 28).images[:10])
    assert small.fingerprint() != source.fingerprint()
    train = {x.numpy().tobytes() for x in source.load("train", 28).images}
    held = {x.numpy().tobytes() for s in ("val", "test") for x in source.load(s, 28).images}
    assert not train & held
    with pytest.raises(DataError, match="px requested"):
        parse_data("fashion").load("train", 48)  # the library enlarges nothing unasked
    for bad, match in (
        ("fashion:train=0", "1..260"),
        ("fashion:val=151", "1..150"),
        ("fashion:crop=3", "KEY one of train, val, test"),
        ("fashion:test=x", "must be a number"),
    ):
        with pytest.raises(DataError, match=match):
            parse_data(bad)
