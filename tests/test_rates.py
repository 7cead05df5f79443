"""Chance, the majority-class rate, small held-out classes and --metric balanced."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_ARGS
from PIL import Image

from scaler.data import parse_data
from scaler.data.rates import (
    MIN_CLASS_IMAGES,
    balanced_accuracy,
    class_rates,
    small_class_warnings,
)

# val holds 25, 5 and 2 images: the majority class is 25/32 = 78.1 % and two classes are small.
VAL_COUNTS = {"big": 25, "mid": 5, "tiny": 2}
TRAIN_COUNTS = {"big": 30, "mid": 20, "tiny": 14}
_COLORS = {"big": (220, 40, 40), "mid": (40, 200, 60), "tiny": (40, 60, 220)}


def _write(path: Path, color: tuple[int, int, int], i: int) -> None:
    rng = np.random.default_rng(i)
    pixels = np.clip(np.array(color) + rng.integers(-20, 20, (32, 32, 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory) -> Path:
    """A pre-split image folder with imbalanced classes (PNGs of three colours)."""
    root = tmp_path_factory.mktemp("imbalanced") / "images"
    for split, counts in (("train", TRAIN_COUNTS), ("val", VAL_COUNTS)):
        for name, n in counts.items():
            for i in range(n):
                _write(root / split / name / f"{i}.png", _COLORS[name], i)
    return root


def test_rates_of_an_imbalanced_folder(imbalanced, tmp_path):
    source = parse_data(f"imagefolder:{imbalanced}")
    rates = class_rates(source)
    assert set(rates) == {"val"}  # no test/ folder: no test split
    val = rates["val"]
    assert val.images == 32 and val.counts == (25, 5, 2)
    assert val.chance == pytest.approx(100 / 3)
    assert val.majority == pytest.approx(100 * 25 / 32)
    assert val.describe() == "Chance 33.3 %, majority class 78.1 % (val: 32 images, 3 classes)"


def test_a_too_small_class_is_warned_about_in_one_line(imbalanced):
    rates = class_rates(parse_data(f"imagefolder:{imbalanced}"))
    line = small_class_warnings(rates)
    assert MIN_CLASS_IMAGES == 20
    assert "\n" not in line and "tiny (2)" in line and "mid (5)" in line and "big" not in line
    assert small_class_warnings(rates, minimum=2) == ""
    assert small_class_warnings(rates, minimum=3).startswith("warning: 1 class under 3 val images")


def test_balanced_accuracy_is_mean_per_class_recall():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    correct = np.array([1, 1, 1, 1, 0, 1, 0, 0], dtype=bool)
    # recalls 100 %, 50 %, 0 %: balanced 50 %, where top-1 is 62.5 %
    assert balanced_accuracy(correct, labels) == pytest.approx(50.0)
    with pytest.raises(ValueError):
        balanced_accuracy(correct[:3], labels)


SEARCH = ["search", "--budget", "2x", *TINY_ARGS, "--alpha-range", "1.2:1.2"]
SEARCH += ["--beta-range", "1.1:1.1", "--no-confirm", "--proxy-tolerance", "0.6"]


@pytest.mark.slow
def test_search_ranks_by_balanced_accuracy_and_keeps_the_metric(cli, imbalanced, tmp_path,
                                                                monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCALER_CACHE", str(tmp_path / "cache"))
    data = ["--data", f"imagefolder:{imbalanced}"]
    code, out, err = cli(*SEARCH, *data, "--metric", "balanced", "--study", "bal")
    assert code == 0, err
    first = out.splitlines()
    assert any(line.startswith("warning: 2 classes under 20 val images") for line in first)
    assert "ranked by balanced accuracy" in out
    assert "Chance 33.3 %, majority class 78.1 % (val: 32 images, 3 classes)" in out
    from scaler import searches as S
    from scaler.studies import load_study, stored_config

    url = "sqlite:///studies/bal.db"
    study = load_study("bal", url)
    assert stored_config(study)["metric"] == "balanced"
    assert study.user_attrs["class_rates"]["counts"]["val"] == [25, 5, 2]
    res = S.result(study, url)
    assert res.metric == "balanced"
    board = res.board
    assert board["balanced_mean"].notna().all()
    assert list(board["balanced_mean"]) == sorted(board["balanced_mean"], reverse=True)
    for _, row in board.iterrows():
        assert len(row["balanced_seeds"]) == row["seeds"]
        assert row["value"] == pytest.approx(row["balanced_mean"])  # what a TPE sampler sees
    # A changed metric is refused like any other changed setting.
    code, _, err = cli(*SEARCH, *data, "--metric", "top1", "--study", "bal")
    assert code == 2 and "different configuration" in err and "metric" in err
    code, out, err = cli("studies", "--json")
    assert code == 0, err
    row = next(r for r in json.loads(out) if r["study"] == "bal")
    assert row["metric"] == "balanced" and row["majority"] == pytest.approx(78.12)
    # The report and the export say which metric ranked, and the rates beside top-1.
    code, _, err = cli("report", "bal", "--storage", url, "--out", "r")
    assert code == 0, err
    text = (tmp_path / "r" / "README.md").read_text()
    assert "Ranked by balanced accuracy (mean per-class recall) on val" in text
    assert "Chance 33.3 %, majority class 78.1 % (val: 32 images, 3 classes)" in text
    assert "Warning: 2 classes under 20 val images: tiny (2), mid (5)" in text
    assert "| top-1 − majority |" in text
    code, _, err = cli("export", "bal", "--storage", url, "--out", "e.json")
    assert code == 0, err
    stats = json.loads((tmp_path / "e.json").read_text())["statistics"]
    assert stats["metric"] == "balanced"
    assert stats["class_rates"]["val"]["majority"] == pytest.approx(100 * 25 / 32)


def test_a_study_stored_without_a_metric_reads_as_top1():
    from scaler.studies import config_diff

    old = {"budget": 2.0}  # stored before --metric existed
    assert config_diff(old, {"budget": 2.0, "metric": "top1"}) == []
    assert config_diff(old, {"budget": 2.0, "metric": "balanced"}) == ["metric: top1 → balanced"]


def test_an_unknown_metric_is_refused_in_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*SEARCH, "--metric", "f1", "--study", "bad")
    assert code == 2
    assert err.strip().count("\n") == 0 and "--metric 'f1' is invalid" in err
    assert "top1, balanced" in err and "Traceback" not in err + out
    assert not (tmp_path / "studies").exists()
