"""The base check and the proxy's minimum of SGD steps (scaler.base_check, scaler.proxy).

A search trains its base first and stops, exit code 4, before any candidate when the base's val
top-1 is not clearly above the majority-class rate: on a generated set whose labels are noise it
stops; on a learnable one (four colours) it passes and the candidate trains. A proxy run is
stated in epochs, SGD steps and images, and a small train split is trained up to ``min_steps``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scaler import base_check as B
from scaler.proxy import PROXY_PRESETS, lengthen, resolve_proxy, run_steps
from scaler.records import BASE_ROLE
from scaler.timing import train_images

COLORS = ((220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 230, 230))
TRAIN, VAL = 32, 25  # images a class: 128 train, 100 val (majority class 25 %)


def _write_set(root: Path, noise: bool) -> Path:
    """Four classes of 32 px PNGs under train/ and val/: solid colours (learnable), or random
    pixels whose class folder says nothing (labels that are noise)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", TRAIN), ("val", VAL)):
        for c, color in enumerate(COLORS):
            for i in range(n):
                if noise:
                    pixels = rng.integers(0, 256, (32, 32, 3))
                else:
                    pixels = np.clip(np.array(color) + rng.integers(-30, 30, (32, 32, 3)), 0, 255)
                path = root / split / f"c{c}" / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels.astype(np.uint8)).save(path)
    return root


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("base-check")
    return {kind: _write_set(base / kind, kind == "noise") for kind in ("learnable", "noise")}


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCALER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SCALER_STORAGE", raising=False)
    return tmp_path


# ----------------------------------------------------------------------------------------------
# the rule
# ----------------------------------------------------------------------------------------------


def test_the_rule_needs_the_margin_and_the_binomial_test():
    assert (B.MIN_POINTS, B.ALPHA, B.EXIT_CODE) == (2.0, 0.01, 4)
    # 40 val images, two balanced classes: 28 right (70 %) passes, 27 (67.5 %) does not.
    ok, p = B.passes(70.0, 40, 50.0)
    assert ok and p < 0.01
    ok, p = B.passes(67.5, 40, 50.0)
    assert not ok and 0.01 < p < 0.05
    # A large val split: 1.9 points above is significant but under the floor; 2.0 passes.
    assert B.passes(26.9, 100_000, 25.0) == (False, pytest.approx(0.0, abs=1e-12))
    assert B.passes(27.0, 100_000, 25.0)[0]
    assert not B.passes(24.1, 400, 25.0)[0]  # below the majority class


def test_a_check_is_one_line_and_a_stored_record():
    check = B.judge([24.0, 24.2], [0, 1], 400, 25.0, steps=80)
    assert check.outcome == B.Outcome.STOPPED and not check.passed
    assert check.top1 == pytest.approx(24.1) and check.seeds == (0, 1)
    text = check.describe()
    assert "\n" not in text
    assert text.startswith(
        "base check failed: the base reached 24.1 % (seeds 0, 1) against a majority-class rate "
        "of 25.0 % on 400 val images"
    )
    assert "it has not learned in 80 SGD steps" in text and "--base-check off" in text
    assert B.BaseCheck.from_attrs(check.to_attrs()) == check
    assert B.BaseCheck.from_attrs(None) is None
    passed = B.judge([60.0, 62.0], [0, 1], 400, 25.0, steps=80)
    assert passed.passed
    assert passed.describe().startswith("base check passed: the base reached 61.0 %")
    overridden = dataclasses.replace(check, outcome=B.Outcome.OVERRIDDEN)
    assert "overridden (--base-check off)" in overridden.describe()


# ----------------------------------------------------------------------------------------------
# the proxy's length in steps and images, and its minimum
# ----------------------------------------------------------------------------------------------


def test_the_default_proxy_is_80_steps_on_the_embedded_split_and_unchanged():
    standard = resolve_proxy("standard")
    assert standard.min_steps == 80 and PROXY_PRESETS["quick"].min_steps == 0
    changes, length = lengthen(standard, 2600)  # the embedded train split
    assert changes == {} and length.configured_steps is None
    assert length.describe() == (
        "2 epochs = 80 SGD steps = 5,120 images (batch 64 of 2,600 train images; minimum 80 steps)"
    )
    assert train_images(standard, 2600) == 5120 == run_steps(standard, 2600) * 64


def test_a_small_split_is_lengthened_to_the_minimum():
    standard = resolve_proxy("standard")
    changes, length = lengthen(standard, 128)  # 2 steps an epoch: 4 steps in 2 epochs
    assert changes == {"epochs": 40}
    assert (length.steps, length.images, length.configured_steps) == (80, 5120, 4)
    assert length.announce().startswith(
        "proxy run lengthened to the minimum of 80 SGD steps (its settings give 4 on these 128 "
        "train images; --min-steps 0 keeps them): 40 epochs = 80 SGD steps = 5,120 images"
    )
    by_images = resolve_proxy("standard", {"images": 640})  # 10 steps
    assert lengthen(by_images, 128)[0] == {"images": 80 * 64}
    assert lengthen(resolve_proxy("quick"), 128)[0] == {}  # a smoke run is exempt
    assert lengthen(resolve_proxy("standard", {"min_steps": 0}), 128)[0] == {}
    with pytest.raises(ValueError, match="min_steps -1 is invalid"):
        resolve_proxy("standard", {"min_steps": -1})


def test_min_steps_keeps_the_names_of_studies(sets):
    from scaler.search_config import SearchConfig
    from scaler.searches import default_study_name

    def name(**overrides) -> str:
        cfg = SearchConfig(proxy_overrides=tuple(overrides.items()))
        return default_study_name(cfg, "fingerprint")

    assert name() == name(min_steps=80) != name(min_steps=200)
    quick = SearchConfig(proxy="quick")
    assert '"min_steps"' not in default_study_name(quick, "f")  # the preset's own: not hashed


def test_the_check_is_on_by_default_and_off_for_the_quick_smoke_run():
    from scaler.search_config import SearchConfig

    assert SearchConfig().check == "stop" and SearchConfig(proxy="long").check == "stop"
    assert SearchConfig(proxy="quick").check == "off"
    assert SearchConfig(proxy="quick", base_check="stop").stored()["base_check"] == "stop"
    with pytest.raises(ValueError, match="--base-check 'warn' is invalid: valid values are stop"):
        SearchConfig(base_check="warn").validate()


def test_the_embedded_default_search_keeps_its_name(here):
    from scaler.data import parse_data
    from scaler.search_config import SearchConfig
    from scaler.searches import default_study_name

    # 0.6's default search, named as 0.6 named it (before min_steps, before 0.7's default data
    # and scoring): its studies resume under the same command with 0.6's settings spelled out.
    fingerprint = parse_data("embedded").fingerprint()
    old = SearchConfig(data="embedded", proxy_overrides=(("average", "none"), ("tta", "none")))
    assert default_study_name(old, fingerprint) == "search-embedded-2x-standard-f14124"
    new = default_study_name(SearchConfig(), parse_data("fashion").fingerprint())
    assert (
        new.startswith("search-fashion-2x-standard-") and new != "search-fashion-2x-standard-f14124"
    )


SEARCH = ["search", "--budget", "2x", "--base", "resnet18", "--proxy", "quick", "--batch-size"]
SEARCH += ["32", "--base-pixels", "16", "--lr", "0.05", "--threads", "1", "--no-confirm"]
SEARCH += ["--alpha-range", "1.2:1.2", "--beta-range", "1.1:1.1", "--proxy-tolerance", "0.6"]
SEARCH += ["--time", "off"]
CHECK = ["--base-check", "stop"]  # the quick preset's default is off: it is a smoke run


def test_a_small_set_is_said_lengthened_and_stored_so(here, cli, sets):
    data = ["--data", f"imagefolder:{sets['learnable']}", "--proxy", "standard"]
    code, out, err = cli(*SEARCH, *data, "--study", "small", "--dry-run")
    assert code == 0, err
    assert (
        "proxy run lengthened to the minimum of 80 SGD steps (its settings give 8 on these 128 "
        "train images; --min-steps 0 keeps them): 20 epochs = 80 SGD steps = 2,560 images"
    ) in out
    assert not (here / "studies").exists()  # a dry run creates nothing
    from scaler import searches as S
    from scaler.studies import load_study, stored_config

    cfg = S.SearchConfig(
        data=f"imagefolder:{sets['learnable']}",
        proxy_overrides=(("batch_size", 32), ("base_pixels", 16)),
    )
    prepared = S.prepare(cfg, "small")
    assert prepared.cfg.proxy_config().epochs == 20 and prepared.length.steps == 80
    S.create(prepared)
    stored = stored_config(load_study("small", prepared.storage_url))
    assert stored["proxy"]["epochs"] == 20 and stored["proxy"]["min_steps"] == 80
    assert stored["proxy_length"]["configured_steps"] == 8 and stored["base_check"] == "stop"
    # A study stored before min_steps existed resumes as it ran: 2 epochs, no minimum.
    study = load_study("small", prepared.storage_url)
    old = {k: v for k, v in stored.items() if k not in ("proxy_length", "base_check")}
    old["proxy"] = {k: v for k, v in stored["proxy"].items() if k != "min_steps"}
    old["proxy"]["epochs"] = 2
    study.set_user_attr("config", old)
    again = S.prepare(cfg, "small")  # compares with the stored settings: no error
    assert again.cfg.proxy_config().epochs == 2 and again.length.configured_steps is None


def test_bad_base_check_and_min_steps_are_refused(here, cli, sets):
    data = ["--data", f"imagefolder:{sets['noise']}"]
    code, _, err = cli(*SEARCH, *data, "--base-check", "warn")
    assert code == 2 and err.startswith("Error: --base-check 'warn' is invalid: valid values")
    assert "stop, off" in err and len(err.splitlines()) == 1
    code, _, err = cli(*SEARCH, *data, "--min-steps", "-3")
    assert code == 2 and "min_steps -3 is invalid" in err
    assert not (here / "studies").exists()


# ----------------------------------------------------------------------------------------------
# the check in a search
# ----------------------------------------------------------------------------------------------


def _roles(study) -> list[str]:
    return [t.user_attrs.get("role") for t in study.get_trials() if t.state.is_finished()]


@pytest.mark.slow  # whole searches: ~10-20 s
def test_labels_that_are_noise_stop_the_search_after_the_base(here, cli, sets):
    from scaler.studies import load_study

    data = ["--data", f"imagefolder:{sets['noise']}", "--images", "320", "--study", "noise"]
    code, out, err = cli(*SEARCH, *data, *CHECK)
    assert code == B.EXIT_CODE, err
    line = next(x for x in out.splitlines() if x.startswith("base check failed"))
    assert "against a majority-class rate of 25.0 % on 100 val images" in line
    assert "it has not learned in 10 SGD steps; the search stopped before its candidates" in line
    assert "next: scaler export" not in out
    study = load_study("noise", "sqlite:///studies/noise.db")
    assert _roles(study) == [BASE_ROLE]  # no candidate trained, none queued
    assert study.user_attrs[B.ATTR]["outcome"] == "stopped"
    code, _, err = cli("report", "noise", "--storage", "sqlite:///studies/noise.db", "--out", "r")
    assert code == 0, err
    report = (here / "r" / "README.md").read_text()
    assert "Base check failed: the base reached" in report
    assert "Proxy run: 2.5 epochs = 10 SGD steps = 320 images" in report
    # The same command stops again; --base-check off resumes it and trains the candidate.
    assert cli(*SEARCH, *data, *CHECK)[0] == B.EXIT_CODE
    code, out, err = cli(*SEARCH, *data, "--base-check", "off")
    assert code == 0, err
    assert "base check failed and overridden (--base-check off)" in out
    assert sorted(_roles(load_study("noise", "sqlite:///studies/noise.db"))) == [BASE_ROLE, "paper"]


@pytest.mark.slow  # whole searches: ~10-20 s
def test_a_learnable_set_passes_and_the_candidates_train(here, cli, sets):
    from scaler.studies import load_study

    data = ["--data", f"imagefolder:{sets['learnable']}", "--images", "320", "--study", "ok"]
    code, out, err = cli(*SEARCH, *data, *CHECK)
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("base check passed"))
    assert "against a majority-class rate of 25.0 % on 100 val images" in line
    study = load_study("ok", "sqlite:///studies/ok.db")
    assert sorted(_roles(study)) == [BASE_ROLE, "paper"]
    assert study.user_attrs[B.ATTR]["outcome"] == "passed"
