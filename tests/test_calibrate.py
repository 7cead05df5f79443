"""scaler calibrate: Kendall τ, the paired bootstrap, the report, bad input."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_PROXY

from scaler import calibrate as C
from scaler.findings_calibration import order_tau


def test_kendall_tau_known_values():
    assert order_tau([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert order_tau([4, 3, 2, 1], [1, 2, 3, 4]) == -1.0
    # one swapped neighbour pair out of six: (5 - 1) / 6
    assert order_tau([1, 3, 2, 4], [1, 2, 3, 4]) == pytest.approx(4 / 6)
    # tau-b with a tie in x: 2 concordant, 3 discordant, 1 tie: (2 - 3) / sqrt(6 * 5)
    assert order_tau([1, 1, 2, 0], [1, 2, 3, 4]) == pytest.approx(-1 / 30**0.5)
    assert order_tau([1, 1, 1], [1, 2, 3]) == 0.0


def _runs(*per_member):
    return [
        C.MemberRuns(m, 32, 1, 1, tuple(t), 0.0)
        for m, t in zip(("b0", "b1", "b2", "b3"), per_member, strict=False)
    ]


def test_tau_statistics_pairs_seeds():
    # seed 0 orders the members as the paper does, seed 1 reverses them
    runs = _runs((1, 4), (2, 3), (3, 2), (4, 1))
    per_seed, mean, of_means, (lo, hi) = C.tau_statistics(runs, samples=400)
    assert per_seed == (1.0, -1.0)
    assert mean == 0.0 and of_means == 0.0  # every mean is 2.5: all tied
    assert lo == -1.0 and hi == 1.0
    agree = _runs((1, 2, 1), (2, 3, 2), (3, 4, 3), (4, 5, 5))
    per_seed, mean, _, (lo, hi) = C.tau_statistics(agree, samples=400)
    assert mean == 1.0 and lo == hi == 1.0


@pytest.mark.parametrize(
    "args, option",
    [
        (["--members", "b0,b9"], "--members"),
        (["--members", "b0"], "--members"),
        (["--members", "b0,b0"], "--members"),
        (["--seeds", "1"], "--seeds"),
        (["--base-pixels", "90", "--upsample", "off", "--data", "embedded"], "--base-pixels"),
        (["--upsample", "nearest"], "--upsample"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, tmp_path, args, option):
    out = tmp_path / "cal"
    code, stdout, stderr = cli("calibrate", *args, "--out", out)
    assert code == 2, stderr
    assert option in stderr and len(stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_calibrate_trains_paired_seeds_and_writes_the_report(tmp_path):
    cfg = C.CalibrationConfig(
        members=("b0", "b2"), seeds=2, proxy="quick", proxy_overrides=TINY_PROXY
    )
    seen = []
    url = f"sqlite:///{tmp_path / 'c.db'}"
    cal = C.calibrate(cfg, lambda m, k, t: seen.append((m, k)), storage=url)
    assert seen == [("b0", 0), ("b0", 1), ("b2", 0), ("b2", 1)]
    assert [r.pixels for r in cal.runs] == [16, 19]  # b2: 260/224 of the 16 px base
    assert len(cal.tau_per_seed) == 2 and -1 <= cal.tau_mean <= 1
    files = C.write_report(cal, tmp_path / "cal")
    data = json.loads(files[0].read_text())
    assert data["paper_top1"] == {"b0": 77.1, "b2": 80.1}
    assert len(files[1].read_text().splitlines()) == 1 + 4
    assert "Kendall τ" in files[2].read_text()


TINY = C.CalibrationConfig(members=("b0", "b1"), seeds=2, proxy="quick", proxy_overrides=TINY_PROXY)


def _same(a: C.Calibration, b: C.Calibration) -> None:
    """Two calibrations agree run by run (the time they took aside)."""
    x, y = a.to_dict(), b.to_dict()
    for d in (x, y):
        d.pop("wall_time")
        for row in d["runs"]:
            row.pop("wall_time")
    assert x == y


@pytest.mark.slow
def test_an_interrupted_calibration_resumes_with_only_the_missing_runs(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    started = []

    def stop_at_third_run(event):
        if event.kind == "trial_start":
            started.append((event.info["member"], event.info["seed_index"]))
            if len(started) == 3:
                raise KeyboardInterrupt  # Ctrl-C as b1's first run starts

    with pytest.raises(KeyboardInterrupt):
        C.run(TINY, "cal", url, progress=stop_at_third_run)
    seen = []
    resumed = C.calibrate(TINY, lambda m, k, t: seen.append((m, k)), study="cal", storage=url)
    assert seen == [("b1", 0), ("b1", 1)]  # b0's runs were kept
    again = C.calibrate(TINY, lambda m, k, t: seen.append((m, k)), study="cal", storage=url)
    assert len(seen) == 2 and again == resumed  # nothing left to train: the same result
    whole = C.calibrate(TINY, storage=f"sqlite:///{tmp_path / 'whole.db'}")
    _same(resumed, whole)
    assert [len(r.top1) for r in resumed.runs] == [2, 2]


def test_a_calibration_study_refuses_other_settings_and_says_what_is_missing(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 'c.db'}"
    p = C.prepare(TINY, "cal", url)
    assert p.study_name == "cal" and not (tmp_path / "c.db").exists()  # prepare writes nothing
    study = C.create(p)
    points = [t.user_attrs["point"] for t in study.get_trials()]
    assert points == ["calibrate:b0:0", "calibrate:b0:1", "calibrate:b1:0", "calibrate:b1:1"]
    assert {t.state for t in study.get_trials()} == {optuna.trial.TrialState.WAITING}
    with pytest.raises(ValueError, match="no run of b0 with seed index 0: not trained yet"):
        C.result(study, url)
    from scaler.records import Status, write
    from scaler.runner import claim

    trial = claim(study)  # b0, seed 0: a run that raised is kept with its reason
    write(trial, status=Status.FAILED, reason="DivergedError: loss is nan")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    from scaler.train import TrainError

    # a run that failed is no bad input: the CLI exits 1 with this line, as 0.5 did
    with pytest.raises(TrainError, match=r"b0 with seed index 0: it failed \(DivergedError"):
        C.result(study, url)
    with pytest.raises(ValueError, match=r"different configuration \(seeds: 2 → 3"):
        C.create(C.prepare(C.CalibrationConfig(**{**TINY.__dict__, "seeds": 3}), "cal", url))
    other = C.default_study_name(C.CalibrationConfig(**{**TINY.__dict__, "seeds": 3}), "f")
    assert other != C.default_study_name(TINY, "f") and other.startswith("calibration-fashion-")


@pytest.mark.slow
def test_calibrate_runs_on_two_workers_and_resumes_from_the_cli(cli, tmp_path, tiny_args):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    args = ["calibrate", "--members", "b0,b1", "--seeds", "2", *tiny_args, "--storage", url]
    code, stdout, stderr = cli(*args, "--study", "w", "--workers", "2", "--out", tmp_path / "o")
    assert code == 0, stderr
    assert "Kendall τ" in stdout and "study w in" in stdout
    from optuna.trial import TrialState

    from scaler.studies import load_study

    trials = load_study("w", url).get_trials()
    assert sorted(t.user_attrs["point"] for t in trials if t.state == TrialState.COMPLETE) == [
        "calibrate:b0:0",
        "calibrate:b0:1",
        "calibrate:b1:0",
        "calibrate:b1:1",
    ]
    report = (tmp_path / "o" / "calibration.json").read_text()
    code, again, stderr = cli(*args, "--study", "w", "--json")  # resumes: nothing to train
    assert code == 0 and "trial 1/" not in stderr
    assert json.loads(again)["runs"] == json.loads(report)["runs"]


def test_lr_range_script_scores_test_split_from_a_first_seed(tmp_path):
    """scripts/lr_range.py: --first-seed picks the seeds, --test adds the test split's top-1."""
    import csv
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "lr_range.py"
    out = tmp_path / "lr.csv"
    args = ["--proxy", "quick", "--members", "b0", "--lrs", "0.01", "--seeds", "2"]
    args += ["--set", "images=64", "--set", "base_pixels=16", "--out", str(out)]
    subprocess.run([sys.executable, str(script), *args, "--first-seed", "3", "--test"], check=True)
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [row["seed"] for row in rows] == ["3", "4"]
    assert all(0.0 <= float(row["test_top1"]) <= 100.0 for row in rows)
    plain = tmp_path / "plain.csv"
    subprocess.run([sys.executable, str(script), *args[:-1], str(plain)], check=True)
    with plain.open() as f:
        header = next(csv.reader(f))
    assert "test_top1" not in header  # older files of the script keep their columns


def test_report_of_a_calibration_says_which_command_writes_it(cli, tmp_path, monkeypatch):
    import optuna

    monkeypatch.chdir(tmp_path)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its "created" line is not ours
    try:
        st = optuna.create_study(study_name="cal", storage="sqlite:///s.db")
    finally:
        optuna.logging.set_verbosity(verbosity)
    st.set_user_attr("kind", "calibration")
    for command in ("report", "plot"):
        code, _, err = cli(command, "cal", "--storage", "sqlite:///s.db", "--out", "r")
        assert code == 2 and err.count("\n") == 1, err
        assert "is a calibration" in err and "scaler calibrate" in err
    assert not (tmp_path / "r").exists()


def _calibration(per_member, seeds: int) -> C.Calibration:
    return _calibration_of(_runs(*per_member), seeds)


def _calibration_of(runs, seeds: int) -> C.Calibration:
    from scaler.findings_calibration import tau_p

    per_seed, mean, of_means, interval = C.tau_statistics(runs, samples=400)
    return C.Calibration(
        config=C.CalibrationConfig(seeds=seeds),
        proxy_settings={"base_pixels": 48, "seed": 0},
        data_classes=13,
        runs=tuple(runs),
        tau_per_seed=per_seed,
        tau_mean=mean,
        tau_of_means=of_means,
        tau_interval=interval,
        wall_time=60.0,
        tau_p=tau_p(per_seed, len(runs)),
    )


def test_fewer_than_5_seeds_report_their_spread_not_a_95_interval():
    # reports/calibration's per-seed τ: +1.00, +1.00, +0.67 over 3 seeds
    cal = _calibration(((1, 1, 2), (2, 2, 1), (3, 3, 3), (4, 4, 4)), 3)
    assert cal.tau_interval == (pytest.approx(2 / 3), 1.0)  # the range, no bootstrap
    text = C.report_text(cal)
    assert "95 %" not in text
    assert "the spread of the 3 per-seed values: +0.67 to +1.00, no coverage claimed" in text
    assert cal.tau_p == pytest.approx(10 / 24**3)  # Σ S ≥ 16: three 6s, or two 6s and a 4 (3·3)
    assert "exact one-sided permutation p = 0.00072" in text
    five = _calibration(((1,) * 5, (2,) * 5, (3,) * 5, (4,) * 5), 5)
    assert "95 % paired bootstrap over 5 seeds: +1.00 to +1.00" in C.report_text(five)


def test_tau_p_is_one_twenty_fourth_for_one_perfect_seed_of_four():
    from scaler.findings_calibration import tau_p

    assert tau_p((1.0,), 4) == pytest.approx(1 / 24)
    assert tau_p((1.0, 1.0, 1.0), 4) == pytest.approx((1 / 24) ** 3)


def test_a_seed_run_at_threads_1_and_2_is_not_paired():
    import dataclasses

    runs = _runs((1, 4, 1), (2, 3, 2), (3, 2, 3), (4, 1, 4))  # seed 1 reverses the paper
    assert C.tau_statistics(runs)[0] == (1.0, -1.0, 1.0)
    runs = [dataclasses.replace(r, threads=(1, 1, 1)) for r in runs]
    runs[0] = dataclasses.replace(runs[0], threads=(1, 2, 1))  # b0's seed 1 at 2 threads
    per_seed, mean, _, _ = C.tau_statistics(runs)
    assert per_seed == (1.0, 1.0) and mean == 1.0
    cal = _calibration_of(runs, 3)
    assert (
        "Seed index 1: its members' runs were made at different CPU thread counts, so they are "
        "not paired and are left out of the per-seed τ."
    ) in C.report_text(cal)


def _scored_runs(gaps, noise, seeds=5, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 2, seeds)  # what a seed does to every member
    runs = []
    for i, m in enumerate(("b0", "b1", "b2", "b3")):
        val = 70 + sum(gaps[:i]) + shared + rng.normal(0, noise, seeds)
        test = 70 + sum(gaps[:i]) + shared + rng.normal(0, noise, seeds)
        runs.append(
            C.MemberRuns(
                m, 48, 1, 1, tuple(val), 0.0, (1,) * seeds, tuple(test), tuple((val + test) / 2)
            )
        )
    return runs


def test_the_gate_needs_every_adjacent_step_above_zero_on_its_split():
    from scaler.findings_calibration import scorings

    clear = scorings(_scored_runs([5, 5, 5], noise=0.5))
    assert [s.split for s in clear] == ["val", "test", "both"]
    assert all(s.ordered for s in clear)
    assert [(a, b) for a, b, _ in clear[0].adjacent] == [("b1", "b0"), ("b2", "b1"), ("b3", "b2")]
    assert clear[0].adjacent[0][2].df == 4
    flat = scorings(_scored_runs([5, 0, 5], noise=0.5))  # b2 is no better than b1
    assert not any(s.ordered for s in flat)
    # runs without test scores (before 0.7's report) are scored on val only
    old = [C.MemberRuns(r.member, 48, 1, 1, r.top1, 0.0) for r in _scored_runs([5, 5, 5], 0.5)]
    assert [s.split for s in scorings(old)] == ["val"]
