"""`scaler train` and `scaler bench`: bad --data values and options are one-line errors."""

import pytest


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda p: "nope:x", "unknown scheme"),
        (lambda p: f"imagefolder:{p / 'missing'}", "imagefolder"),
        (lambda p: (p / "empty").mkdir() or f"imagefolder:{p / 'empty'}", "imagefolder"),
        (lambda p: (p / "f.txt").write_text("x") and f"imagefolder:{p / 'f.txt'}", "imagefolder"),
        (lambda p: f"cifar10:{p}", "cifar10"),
        (lambda p: "", "--data"),
    ],
)
def test_train_bad_data(cli, tmp_path, make, needle):
    code, out, err = cli("train", "--preset", "b0", "--proxy", "quick", "--data", make(tmp_path))
    assert code == 2 and err.startswith("Error: ") and err.count("\n") == 1, err
    assert needle in err and "Traceback" not in out + err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--proxy", "huge"], "proxy"),
        (["train", "--batch-size", "0"], "batch"),
        (["train", "--lr", "-1"], "lr"),
        (["train", "--device", "tpu"], "device"),
        (["train", "--depth", "-2"], "depth"),
        (["bench", "--rounds", "0"], "--rounds"),
    ],
)
def test_train_bad_options(cli, args, needle):
    code, out, err = cli(*args)
    assert code == 2 and err.count("\n") == 1 and needle in err, err


@pytest.mark.slow
def test_train_out(cli, tmp_path):
    out_file = tmp_path / "run.json"
    code, out, err = cli(
        "train", "--width", "0.25", "--depth", "0.5", "--proxy", "quick", "--epochs", "1",
        "--images", "64", "--batch-size", "32", "--base-pixels", "16", "--threads", "1",
        "--out", out_file,
    )  # fmt: skip
    assert code == 0, err
    import json

    data = json.loads(out_file.read_text())
    assert data["pixels"] == 16 and 0 <= data["top1"] <= 100 and data["flops"] > 0
    assert "top-1" in out
