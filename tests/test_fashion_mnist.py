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
