"""The command line as a new user meets it: one vocabulary for sizes, flags that look like
flags, ``--json`` on stdout, the options 0.6 removed refused with their replacement, validation
before anything is created, Ctrl-C that says how to resume, and the README's quick start
followed to the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_ARGS

COMMANDS = [
    ["info"],
    ["family"],
    ["train"],
    ["bench"],
    ["search"],
    ["export"],
    ["studies"],
    ["plot"],
    ["report"],
    ["sweep", "width-by-baseline"],
    ["sweep", "single"],
    ["sweep", "compound"],
]
# A tiny search: the base and the paper's point (1.2, 1.1) only.
TINY_SEARCH = ["search", "--budget", "2x", *TINY_ARGS, "--alpha-range", "1.2:1.2"]
TINY_SEARCH += ["--beta-range", "1.1:1.1", "--study", "tiny"]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_flags_look_like_flags(cli, command):
    code, out, _ = cli(*command, "--help")
    assert code == 0 and "<bool>" not in out
    assert "--help" in out


@pytest.mark.slow
def test_json_prints_to_stdout_everywhere(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["info", "--preset", "b0"], ["family", "--alpha", "1.2", "--beta", "1.1",
                 "--gamma", "1.15", "--phi-max", "1"], ["studies"]):  # fmt: skip
        code, out, err = cli(*args, "--json")
        assert code == 0, err
        json.loads(out)
    code, out, err = cli("train", "--preset", "b0", *TINY_ARGS, "--json")
    assert code == 0, err
    assert json.loads(out)["top1"] >= 0 and "training" in err  # stdout holds the JSON alone


@pytest.mark.slow
def test_train_out_writes_the_file(cli, tmp_path):
    code, _, err = cli("train", "--preset", "b0", *TINY_ARGS, "--out", tmp_path / "a.json")
    assert code == 0, err
    assert json.loads((tmp_path / "a.json").read_text())["pixels"] == 16


def _refused(cli, tmp_path, monkeypatch, *args) -> str:
    """The one-line error and exit 2 of a command, which created nothing."""
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*args)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("Error: "), err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []
    return err.strip()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["search", *TINY_ARGS, "--cost-resolution", "224"],
            "--cost-resolution was removed in 0.6: use --cost-pixels",
        ),
        (
            ["info", "--base-resolution", "32"],
            "--base-resolution was removed in 0.6: use --cost-pixels",
        ),
        (
            [
                "family",
                "--alpha",
                "1.2",
                "--beta",
                "1.1",
                "--gamma",
                "1.15",
                "--base-resolution=32",
            ],
            "--base-resolution was removed in 0.6: use --cost-pixels",
        ),
        (
            ["train", "--preset", "b0", *TINY_ARGS, "--json", "run.json"],
            "--json run.json was removed in 0.6: use --out run.json",
        ),
    ],
    ids=[
        "search --cost-resolution",
        "info --base-resolution",
        "family --base-resolution",
        "train --json FILE",
    ],
)
def test_options_removed_in_0_6_name_their_replacement(cli, tmp_path, monkeypatch, args, message):
    err = _refused(cli, tmp_path, monkeypatch, *args)
    assert err.startswith("Error: " + message), err


def test_resolution_is_the_multiplier_not_pixels(cli, tmp_path, monkeypatch):
    err = _refused(cli, tmp_path, monkeypatch, "info", "--resolution", "40", "--json")
    assert "resolution 40.0 is invalid: it must be <= 32 (for pixels use --pixels)" in err
    err = _refused(cli, tmp_path, monkeypatch, "train", "--resolution", "224", *TINY_ARGS)
    assert "(for pixels use --pixels)" in err
    err = _refused(cli, tmp_path, monkeypatch, "info", "--resolution", "10")  # 2240 px
    assert "--resolution 10 is invalid: it gives 2240 px" in err and "use --pixels" in err


def test_one_vocabulary_for_sizes(cli):
    from scaler.scaling import network_spec

    def pixels(*args: str) -> int:  # small sizes: fvcore traces every network info shows
        code, out, err = cli("info", *args, "--cost-pixels", "32", "--json")
        assert code == 0, err
        return json.loads(out)["pixels"]

    assert network_spec(resolution=1.15).pixels == 258  # a multiplier of the cost pixels (224)
    assert pixels("--resolution", "1.5") == 48
    assert pixels("--pixels", "40") == 40
    assert pixels("--resolution", "8") == 256  # r = 8, no longer 8 px


def test_tolerance_takes_a_percentage_or_a_fraction():
    from scaler.search_config import parse_tolerance

    assert parse_tolerance("5%") == pytest.approx(0.05) == parse_tolerance("0.05")
    for bad in ("0", "100%", "abc", "-5%"):
        with pytest.raises(ValueError, match="--tolerance"):
            parse_tolerance(bad)


def test_max_flops_says_where_it_is_measured():
    import dataclasses

    from scaler import sweeps as W
    from scaler.sweep_points import sweep_points

    cfg = W.SweepConfig(kind="single", dims=("resolution",), resolutions=(1.0, 1.3))
    at_proxy = sweep_points(dataclasses.replace(cfg, max_flops=60e6), 13, None)
    at_cost = sweep_points(dataclasses.replace(cfg, max_flops=60e6, max_flops_at="cost"), 13, None)
    assert not any(p.skip for p in at_proxy)  # 48 and 62 px cost less than 60 MFLOPs ...
    assert all("at r × 224 px exceed" in p.skip for p in at_cost)  # ... 224 and 291 px more


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--device", "cuda"], "--device cuda"),
        (["--study", ""], "--study ''"),
        (["--budget", "0.001x"], "--budget 0.001x is invalid"),
        (["--tolerance", "5"], "--tolerance '5'"),
        (["--cost-pixels", "4"], "--cost-pixels"),
    ],
)
def test_search_validates_before_creating_anything(cli, tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("search", *TINY_ARGS, *args)
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert list(tmp_path.iterdir()) == []  # no study, no folder


def test_sweep_validates_the_device_first(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("sweep", "width-by-baseline", "--device", "cuda", *TINY_ARGS[:2])
    assert code == 2 and err.count("\n") == 1 and "--device cuda" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_says_what_was_kept_and_how_to_resume(cli, tmp_path, monkeypatch):
    from scaler import runner

    monkeypatch.chdir(tmp_path)
    real = runner.train_point
    calls = []

    def second_is_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "train_point", second_is_interrupted)
    code, _, err = cli(*TINY_SEARCH)
    assert code == 130
    assert "study tiny keeps its 1 finished trials" in err
    assert "queued again" in err and "Resume with: scaler search --budget 2x" in err
    monkeypatch.setattr(runner, "train_point", real)
    code, out, err = cli(*TINY_SEARCH)  # the command it printed resumes the study
    assert code == 0 and "interrupted" in out


@pytest.mark.slow
def test_the_quick_start_followed_to_the_end(tmp_path):
    """The README's quick start and its follow-ups, as a user types them, output to a file."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def scaler(*args) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "scaler", *map(str, args)]
        run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        return run

    search = scaler(*TINY_SEARCH)
    assert "trial 1/" in search.stderr and "top-1" in search.stderr  # progress, line by line
    scaler("export", "tiny", "--out", "coefficients.json")
    scaler("family", "--coefficients", "coefficients.json", "--compare-official")
    scaler("report", "tiny")  # its family reaches past the builder's 2048 px by φ = 7
    assert (Path(tmp_path) / "reports" / "tiny" / "README.md").exists()
    scaler("plot", "tiny")
    scaler("studies")


def test_python_names_of_0_1_are_refused_naming_their_replacement(monkeypatch):
    from scaler import searches
    from scaler.spec import scale

    with pytest.raises(
        TypeError, match=r"base_resolution=\.\.\.\) was removed in 0\.6: use base_pixels"
    ):
        scale(base_resolution=32)
    with pytest.raises(TypeError, match="unexpected keyword argument 'base_pixel'"):
        scale(base_pixel=32)
    monkeypatch.setattr(searches, "run", lambda cfg, *a, **k: pytest.fail("it ran"))
    with pytest.raises(
        TypeError, match=r"cost_resolution=\.\.\.\) was removed in 0\.6: use cost_pixels"
    ):
        searches.search("2x", cost_resolution=240)


def test_the_leaderboard_has_no_tied_column():
    import pandas as pd

    from scaler.results import Noise, leaderboard

    frame = pd.DataFrame(
        {"number": [0, 1], "state": "COMPLETE", "role": ["base", "candidate"], "top1_mean": 50.0}
    )
    board = leaderboard(frame, Noise(float("nan"), 0))
    assert "possibly_best" in board.columns and "tied" not in board.columns  # 0.3's name
