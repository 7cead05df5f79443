"""Small images (``--upsample``): a 32 px CIFAR-format set and a 28 px grayscale ImageFolder
train at a 48 px proxy base, under one recorded policy for every source.

The sets are generated in tmp_path at test time; the searches use the tiny proxy except for
the base size, which is the default proxy's 48 px: enlarging to it is what is tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_ARGS
from PIL import Image
from test_data import _write_cifar10

from scaler.data import DataError, parse_data
from scaler.records import TrialRecord
from scaler.results import load_studies
from scaler.studies import config_diff, load_study, stored_config, stored_upsample

# A two-candidate grid (the paper's point and one other), no confirmation stage, no --time.
SEARCH = ["search", "--budget", "2x", "--time", "off", "--no-confirm", "--alpha-range"]
SEARCH += ["1.1:1.2", "--beta-range", "1.1:1.1", "--alpha-step", "0.1", "--beta-step", "0.1"]


@pytest.fixture
def cifar(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar"
    _write_cifar10(folder / "cifar-10-batches-bin", per_batch=10)
    return folder


def _write_gray_folder(root: Path, side: int = 28, per_class: int = 4) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(("zero", "one")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(60 + 120 * c, 20, (side, side)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8), mode="L").save(root / name / f"{i}.png")
    return root


def test_cifar_is_enlarged_to_a_48_px_base_by_the_policy(cifar: Path) -> None:
    bilinear = parse_data(f"cifar10:{cifar}", upsample="bilinear")
    assert bilinear.native_pixels == 32 and bilinear.max_pixels is None
    part = bilinear.load("train", 48)
    assert part.images.shape[1:] == (3, 48, 48) and part.images.dtype == torch.uint8
    assert torch.equal(part.labels, bilinear.load("train", 32).labels)
    bicubic = parse_data(f"cifar10:{cifar}", upsample="bicubic").load("train", 48)
    assert not torch.equal(bicubic.images, part.images)  # the filter is the policy's
    off = parse_data(f"cifar10:{cifar}")  # the library enlarges nothing unasked
    with pytest.raises(DataError, match="images are 32 px.*--upsample bilinear"):
        off.load("train", 48)


def test_a_grayscale_imagefolder_follows_the_same_policy(tmp_path: Path) -> None:
    spec = f"imagefolder:{_write_gray_folder(tmp_path / 'gray')}"
    cache = tmp_path / "cache"
    source = parse_data(spec, cache_dir=cache, upsample="bilinear")
    assert source.native_pixels == 28 and source.grayscale
    part = source.load("train", 48)
    assert part.images.shape[1:] == (3, 48, 48)
    assert torch.equal(part.images[:, 0], part.images[:, 1])  # one channel, replicated
    bicubic = parse_data(spec, cache_dir=cache, upsample="bicubic")
    assert bicubic.cache_path("train", 48) != source.cache_path("train", 48)
    assert bicubic.cache_path("train", 16) == source.cache_path("train", 16)  # shrunk alike
    with pytest.raises(DataError, match="images are 28 px.*--upsample bilinear"):
        parse_data(spec, cache_dir=cache).load("train", 48)
    note = source.describe_images(48, 66)
    assert note == (
        "data: imagefolder images are 28 px grayscale (one channel, replicated to 3); "
        "upsampled (bilinear) to 48–66 px for the proxy (--upsample off refuses)"
    )
    assert parse_data(spec, cache_dir=cache).describe_images(16, 16) == (
        "data: imagefolder images are grayscale (one channel, replicated to 3)"
    )


def test_a_32_px_cifar_search_at_a_48_px_base_records_its_policy(cli, cifar, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = [*SEARCH, "--data", f"cifar10:{cifar}", "--storage", url, "--study", "c"]
    code, out, err = cli(*args, *TINY_ARGS, "--base-pixels", "48")
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("data: cifar10 images are 32 px; upsampled (bilinear) to 48–"), out
    assert first.endswith(" px for the proxy (--upsample off refuses)")
    study = load_study("c", url)
    assert stored_config(study)["upsample"] == "bilinear"
    done = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    pixels = [TrialRecord.from_trial(t).pixels for t in done]
    assert len(done) >= 3 and min(pixels) >= 48  # two base runs and the candidates
    # A resumed study keeps its own policy; another one is refused before anything runs.
    code, out, _ = cli(*args, *TINY_ARGS, "--base-pixels", "48")
    assert code == 0 and out.startswith("data: cifar10 images are 32 px; upsampled (bilinear)")
    code, _, err = cli(*args, *TINY_ARGS, "--base-pixels", "48", "--upsample", "bicubic")
    assert code == 2 and "upsample: bilinear → bicubic" in err
    exported = tmp_path / "c.json"
    code, _, err = cli("export", "c", "--storage", url, "--out", exported)
    assert code == 0, err
    assert json.loads(exported.read_text())["provenance"]["upsample"] == "bilinear"
    from scaler.report import build_markdown

    text = build_markdown(load_studies(["c"], url), [])
    assert "--upsample bilinear" in text and "| upsample | bilinear |" in text


def test_a_28_px_grayscale_imagefolder_search_runs(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SCALER_CACHE", str(tmp_path / "cache"))
    folder = _write_gray_folder(tmp_path / "gray")
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = [*SEARCH, "--data", f"imagefolder:{folder}", "--storage", url, "--study", "g"]
    code, out, err = cli(*args, *TINY_ARGS, "--base-pixels", "32")
    assert code == 0, err
    first = out.splitlines()[0]
    assert first == (
        "data: imagefolder images are 28 px grayscale (one channel, replicated to 3); "
        "upsampled (bilinear) to 32 px for the proxy (--upsample off refuses)"
    ), out
    assert out.count("replicated to 3") == 1  # said once
    assert stored_config(load_study("g", url))["upsample"] == "bilinear"


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--upsample", "off"], "the images are 32 px and --upsample off refuses"),
        (["--upsample", "nearest"], "--upsample 'nearest' is invalid: valid: bilinear | bicubic"),
    ],
)
def test_off_and_unknown_modes_are_refused_creating_nothing(cli, cifar, tmp_path, extra, needle):
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = cli(*SEARCH, "--data", f"cifar10:{cifar}", "--storage", url, *extra)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert "--upsample" in err and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar"]


def test_a_study_stored_before_the_option_keeps_its_old_behaviour() -> None:
    old_cifar = {"data": "cifar10:/d", "seeds": 1}
    assert stored_upsample(old_cifar) == "off"
    assert stored_upsample({"data": "imagefolder:/d"}) == "bicubic"  # Pillow's, as it was
    assert config_diff(old_cifar, {**old_cifar, "upsample": "off"}) == []
    assert config_diff(old_cifar, {**old_cifar, "upsample": "bilinear"}) == [
        "upsample: off → bilinear"
    ]


def test_train_says_the_policy_first_and_refuses_off(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SCALER_CACHE", str(tmp_path / "cache"))
    data = f"imagefolder:{_write_gray_folder(tmp_path / 'gray')}"
    args = ["train", "--width", "0.25", "--depth", "0.5", "--pixels", "32", "--data", data]
    code, out, err = cli(*args, "--upsample", "bicubic", *TINY_ARGS)
    assert code == 0, err
    assert out.splitlines()[0] == (
        "data: imagefolder images are 28 px grayscale (one channel, replicated to 3); "
        "upsampled (bicubic) to 32 px for the proxy (--upsample off refuses)"
    )
    code, out, err = cli(*args, "--upsample", "off", *TINY_ARGS)
    assert code == 2 and "--upsample bilinear" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(*args, "--upsample", "lanczos", *TINY_ARGS)
    assert code == 2 and "--upsample 'lanczos' is invalid: valid: bilinear | bicubic | off" in err
