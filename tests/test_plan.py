"""The plan before training (scaler.plan), --dry-run, and the time budget --time
(scaler.budget): runs per stage, the time model, the resolvable difference, skipping and
resuming.

Every test reads the made-up throughput of conftest (1 ms per B0 training image, 1 s per run):
no timing runs, the same numbers on every machine.
"""

from __future__ import annotations

import json
import math

import pytest
from conftest import TINY_PROXY, fake_throughput

from scaler import budget, plan, timing
from scaler.stats import detectable_difference

# ----------------------------------------------------------------------------------------------
# the resolvable difference
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 6, 10])
def test_detectable_difference_has_80_percent_power(n):
    from scipy.stats import nct
    from scipy.stats import t as student
    from statsmodels.stats.power import TTestPower

    sigma = 4.8
    d = detectable_difference(sigma, n)
    assert d == pytest.approx(TTestPower().solve_power(nobs=n, alpha=0.05, power=0.8) * sigma)
    # The same from the noncentral t directly: a two-sided paired t-test of n pairs finds a
    # true difference d with probability 0.8.
    crit, nc = student.ppf(0.975, n - 1), d / sigma * math.sqrt(n)
    assert nct.sf(crit, n - 1, nc) + nct.cdf(-crit, n - 1, nc) == pytest.approx(0.8, abs=1e-4)


def test_detectable_difference_needs_two_pairs_and_shrinks_with_more():
    assert detectable_difference(4.8, 1) is None
    assert detectable_difference(4.8, 3) > detectable_difference(4.8, 6) > 0
    assert detectable_difference(2 * 4.8, 6) == pytest.approx(2 * detectable_difference(4.8, 6))


# ----------------------------------------------------------------------------------------------
# the time model and its cache
# ----------------------------------------------------------------------------------------------


def test_run_time_scales_with_flops_and_images():
    t = timing.cached("cpu", 1)
    assert t is not None and t.seconds_per_image == pytest.approx(1e-3)
    one = t.run_seconds(t.flops, 1000, 300) - t.overhead
    assert t.run_seconds(2 * t.flops, 1000, 300) - t.overhead == pytest.approx(2 * one)
    assert t.run_seconds(t.flops, 2000, 600) - t.overhead == pytest.approx(2 * one)
    assert one == pytest.approx(1e-3 * (1000 + 300 * timing.EVAL_SHARE))


def test_stale_or_foreign_cache_is_not_used(tmp_path, monkeypatch):
    path = fake_throughput(tmp_path / "t.json")
    monkeypatch.setenv(timing.CACHE_ENV, str(path))
    assert timing.cached("cpu", 1) is not None
    entries = json.loads(path.read_text())
    for e in entries:
        e["measured"] = "2020-01-01T00:00:00+00:00"
    path.write_text(json.dumps(entries))
    assert timing.cached("cpu", 1) is None  # older than MAX_AGE_DAYS: measured again
    for e in entries:
        e["measured"], e["torch"] = timing.Throughput(**e).measured, "0.0.1"
    path.write_text(json.dumps(entries))
    assert timing.cached("cpu", 1) is None  # another torch


def test_makespan_places_trials_in_queue_order():
    assert plan.makespan([3.0, 3.0, 3.0, 3.0], 2) == 6.0
    assert plan.makespan([5.0, 1.0, 1.0, 1.0], 2) == 5.0
    assert plan.makespan([1.0, 2.0, 3.0], 1) == 6.0
    assert plan.makespan([2.0], 8) == 2.0


def test_a_run_beside_other_workers_is_priced_between_alone_and_all():
    alone, shared = timing.cached("cpu", 1), timing.cached("cpu", 1, 3)
    assert shared.processes == 3 and timing.cached("cpu", 1, 5) is None
    speed = plan.Speed(alone, shared)
    cost = (alone.flops, 1000, 300)
    one, three = alone.run_seconds(*cost), shared.run_seconds(*cost)
    assert three > one  # the fake: each of 3 processes half as fast as one alone
    assert speed.run_seconds(cost, 1) == pytest.approx(one)
    assert speed.run_seconds(cost, 3) == speed.run_seconds(cost, 8) == pytest.approx(three)
    assert speed.run_seconds(cost, 2) == pytest.approx((one + three) / 2)


def test_measure_times_processes_together_as_workers(tmp_path, monkeypatch):
    monkeypatch.setenv(timing.CACHE_ENV, str(tmp_path / "t.json"))
    t = timing.throughput("cpu", 1, processes=2)  # two spawned processes, 1 thread each
    assert (t.processes, t.threads, t.device) == (2, 1, "cpu")
    assert t.start > 0 and 0 < t.seconds_per_image < 1
    assert timing.cached("cpu", 1, 2) == t and timing.cached("cpu", 1) is None


# ----------------------------------------------------------------------------------------------
# plans of the kinds
# ----------------------------------------------------------------------------------------------


def test_calibration_plan_counts_runs_and_scales_time_with_flops(tmp_path):
    from scaler import calibrate as C
    from scaler.complexity import count

    cfg = C.CalibrationConfig(
        members=("b0", "b2"), seeds=3, proxy="quick", proxy_overrides=TINY_PROXY
    )
    p = C.prepare(cfg, storage=f"sqlite:///{tmp_path / 'c.db'}")
    pl = plan.plan(C, p)
    (stage,) = pl.stages
    assert (stage.name, stage.runs, stage.networks, stage.pairs) == ("calibration", 6, 2, 3)
    assert stage.resolves == pytest.approx(detectable_difference(plan.DEFAULT_SIGMA, 3))
    assert pl.sigma == plan.DEFAULT_SIGMA and "default" in pl.sigma_source
    settings = cfg.proxy_config()
    b0, b2 = (timing.run_seconds(spec, settings, p.source) for _, spec in p.specs)
    flops = [count(spec, p.source.num_classes).flops for _, spec in p.specs]
    t = pl.throughput
    assert (b2 - t.overhead) / (b0 - t.overhead) == pytest.approx(flops[1] / flops[0])
    assert stage.seconds == pytest.approx(3 * (b0 + b2))
    assert not (tmp_path / "c.db").exists()  # planning creates nothing


def test_calibration_plan_on_workers_spreads_its_runs(tmp_path):
    from scaler import calibrate as C

    cfg = C.CalibrationConfig(
        members=("b0", "b2"), seeds=3, proxy="quick", proxy_overrides=TINY_PROXY
    )
    p = C.prepare(cfg, storage=f"sqlite:///{tmp_path / 'c.db'}")
    pl = plan.plan(C, p, workers=2)
    shared = timing.cached("cpu", 1, 2)
    assert pl.shared == shared and pl.start == shared.start == 1.0  # the fake's start
    settings = cfg.proxy_config()
    b0, b2 = (shared.run_seconds(*timing.run_cost(s, settings, p.source)) for _, s in p.specs)
    # Runs queued b0:0, b0:1, b0:2, b2:0, b2:1, b2:2, each to the first worker free: the
    # second worker ends last, with b0 + 2 x b2.
    assert pl.stages[0].seconds == pytest.approx(b0 + 2 * b2)
    assert pl.seconds == pytest.approx(1.0 + b0 + 2 * b2)
    assert "2 worker processes" in "\n".join(pl.lines())
    assert pl.attrs()["workers"] == 2


def test_search_plan_has_its_stages(tmp_path):
    from scaler import searches as S
    from scaler.candidates import realize_candidate
    from scaler.search_config import SearchConfig

    cfg = SearchConfig(budget=2.0, proxy="quick", proxy_overrides=TINY_PROXY, seeds=2)
    p = S.prepare(cfg, storage=f"sqlite:///{tmp_path / 's.db'}")
    search, confirmation = plan.plan(S, p).stages
    keys = set()
    for q in S.queued_points(cfg):
        role, a, b = q.attrs["role"], q.attrs["alpha"], q.attrs["beta"]
        c = realize_candidate(cfg, role, a, b, p.source.num_classes, p.source.max_pixels)
        if not c.infeasible and role != "base":
            keys.add(c.network_key)
    assert search.runs == cfg.base_seeds + 2 * len(keys)  # twins once, infeasible never
    assert (search.pairs, confirmation.name, confirmation.runs) == (2, "confirmation", 4)
    assert not (tmp_path / "s.db").exists()


# ----------------------------------------------------------------------------------------------
# --time
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("20m", 1200), ("1h", 3600), ("45", 45)]
)
def test_parse_duration(text, seconds):
    assert budget.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "20x", "", "1e9", "m"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError, match="--time"):
        budget.parse_duration(text)


def test_budget_fits_and_travels_in_the_environment():
    assert budget.current() is None
    with budget.limited(100.0) as b:
        assert budget.current() == b
        assert b.fits(50.0) and not b.fits(200.0)
    assert budget.current() is None


@pytest.mark.parametrize("value", ["0", "-5m", "20x"])
def test_bad_time_is_one_line_and_creates_nothing(cli, tiny_args, tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("search", *tiny_args, "--time", value)
    assert code == 2 and "--time" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.rglob("*.db"))


def test_search_keeps_to_20_minutes_unless_told_otherwise(cli, tiny_args, tmp_path, monkeypatch):
    """The default search's budget is 20m; --time off drops it (and the plan says which)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(timing.CACHE_ENV, str(fake_throughput(tmp_path / "t.json", 1e-9, 100.0)))
    code, out, _ = cli("search", *tiny_args, "--dry-run")
    assert code == 0 and "--time 20m: the plan fits" in out, out
    code, out, _ = cli("search", *tiny_args, "--dry-run", "--time", "5m")
    assert code == 0 and "--time 5m: the plan does not fit" in out, out  # 7 runs of ~100 s
    code, out, _ = cli("search", *tiny_args, "--dry-run", "--time", "OFF")
    assert code == 0 and "--time" not in out, out
    assert not (tmp_path / "studies").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["search"],
        ["calibrate", "--members", "b0,b1", "--seeds", "2"],
        ["sweep", "single", "--dim", "width", "--max-flops", "20M"],
    ],
)
def test_dry_run_prints_the_plan_and_creates_nothing(
    cli, tiny_args, tmp_path, monkeypatch, command
):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(*command, *tiny_args, "--dry-run")
    assert code == 0, out
    assert "plan of" in out and "runs" in out and f"σ {plan.DEFAULT_SIGMA:.2f}" in out
    assert not any(tmp_path.iterdir())  # no studies/ folder, no database


def test_time_budget_skips_runs_and_a_larger_one_resumes(cli, tiny_args, tmp_path, monkeypatch):
    """Each run is estimated at 100 s (overhead), so the base's two runs (200 s) do not fit in
    150 s and the candidates' single runs do; the same command with 1 h trains the base."""
    from scaler.studies import load_study

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(timing.CACHE_ENV, str(fake_throughput(tmp_path / "t.json", 1e-9, 100.0)))
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = ["search", *tiny_args, "--no-confirm", "--storage", url, "--study", "t"]
    code, out, _ = cli(*args, "--time", "150s")
    assert code == 0, out
    assert "skipped 1 points" in out and "base" in out
    study = load_study("t", url)
    trained = [
        t.user_attrs.get("role") for t in study.trials if t.user_attrs.get("status") == "trained"
    ]
    assert "base" not in trained and trained
    assert study.user_attrs["plan"]["runs"] == len(trained) + 2  # the estimate, stored
    assert "time" not in json.dumps(study.user_attrs["config"])  # not the study's identity

    code, out, _ = cli(*args, "--time", "1h")
    assert code == 0, out
    assert "--time 1h skipped" not in out and "skipped time budget; trained again" in out
    study = load_study("t", url)
    again = [
        t.user_attrs.get("role") for t in study.trials if t.user_attrs.get("status") == "trained"
    ]
    assert sorted(again) == sorted([*trained, "base"])  # only the base trained now

    from scaler.report_search import time_lines
    from scaler.results import load_studies

    (line, _) = time_lines(load_studies(["t"], url)[0])
    assert f"planned ~{study.user_attrs['plan']['seconds']:.0f} s" in line


@pytest.mark.slow
def test_sigma_comes_from_a_noise_study_of_the_same_data_and_proxy(cli, tiny_args, tmp_path):
    from scaler import calibrate as C
    from scaler import noise as N
    from scaler.plan_stages import noise_studies
    from scaler.studies import load_study

    url = f"sqlite:///{tmp_path / 'n.db'}"
    settings = C.CalibrationConfig(proxy="quick", proxy_overrides=TINY_PROXY).proxy_config()
    assert plan.noise_sigma(url, "fashion", settings)[0] == plan.DEFAULT_SIGMA
    code, out, _ = cli("noise", "--networks", "b0,b1", *tiny_args, "--storage", url)
    assert code == 0, out
    ((name, _),) = noise_studies(url)
    pair = N.result(load_study(name, url), url).findings.pairs[0]
    sigma, where = plan.noise_sigma(url, "fashion", settings)
    assert sigma == pytest.approx(math.sqrt(max(pair.split.run, 0.0))) and name in where
    other = C.CalibrationConfig(proxy="quick", proxy_overrides=(*TINY_PROXY, ("lr", 0.01)))
    assert plan.noise_sigma(url, "fashion", other.proxy_config())[0] == plan.DEFAULT_SIGMA
