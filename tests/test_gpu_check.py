"""scripts/gpu_check.py without a GPU and without training: its plan, its budgets, its phase states.

The plan is what the one GPU call will be spent on, so it is checked here: the default fits the
8 minutes at the stored H200 rates, every phase's runs are the ones scaler itself would train,
and the budgets never add up to more than the time limit.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gc():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def default_plan(gc, tmp_path_factory):
    """The default plan on an H200: every phase, --time-limit 480, K chosen by scaler."""
    settings = gc.Settings(out=tmp_path_factory.mktemp("gpu-check"))
    return settings, {p.name: p for p in gc.make_plan(settings, list(gc.PHASES), 480.0)}


def test_default_plan_fits_480_s_at_the_stored_rates(gc, default_plan):
    settings, plan = default_plan
    assert list(plan) == list(gc.PHASES)
    total = sum(p.estimate for p in plan.values())
    assert 0 < total <= 480
    text = gc.plan_text(settings, list(plan.values()), 480.0)
    assert "fits" in text.splitlines()[-1] and "NOT" not in text
    for name, p in plan.items():
        assert p.estimate > gc.PHASE_START_S, name
        assert f"scaler {' '.join(p.argv)}" in text


def test_the_plan_times_no_latency_on_a_device_it_lacks(gc, monkeypatch, tmp_path):
    import scaler.latency
    from scaler.search_config import LATENCY_ENV

    monkeypatch.delenv(LATENCY_ENV, raising=False)  # as a user's shell: latency is recorded

    def no_timing(*args, **kwargs):
        raise AssertionError("the plan timed a network")

    monkeypatch.setattr(scaler.latency, "compare", no_timing)
    plan = gc.make_plan(gc.Settings(out=tmp_path), ["search"], 480.0)  # for an H200's cuda
    assert [p.name for p in plan] == ["search"] and plan[0].runs > 0


def test_budgets_sum_to_the_limit_and_cover_each_estimate(default_plan):
    _, plan = default_plan
    budgets = [p.budget for p in plan.values()]
    assert sum(budgets) <= 480 + 1e-6
    assert sum(budgets) == pytest.approx(480)
    for p in plan.values():  # the plan fits, so each phase gets at least its estimate
        assert p.budget >= p.estimate


def test_budgets_shrink_with_a_short_limit(gc, default_plan):
    settings, plan = default_plan
    phases = list(plan.values())
    total = sum(p.estimate for p in phases)
    text = gc.plan_text(settings, phases, 200.0)
    assert "does NOT fit" in text
    assert f"{total - 200:.0f} s over" in text


def test_search_runs_are_the_search_modules(gc, default_plan):
    """The default 2x grid: what the search's queue and candidates say, then confirm.DEFAULTS
    with the check's fixed confirmation seeds (a race's rounds cannot be planned)."""
    from scaler import candidates, confirm, searches
    from scaler.data import parse_data

    source = parse_data("embedded")
    cfg = searches.SearchConfig()
    points = searches.queued_points(cfg)
    assert len(points) == cfg.candidate_cap() + 1  # the grid (the paper's point on it) + base
    feasible = [
        q
        for q in points
        if not candidates.realize_candidate(
            cfg,
            q.attrs["role"],
            q.attrs["alpha"],
            q.attrs["beta"],
            source.num_classes,
            source.max_pixels,
        ).infeasible
    ]
    search_runs = sum(cfg.base_seeds if q.attrs["role"] == "base" else cfg.seeds for q in feasible)
    d = confirm.DEFAULTS
    confirm_runs = (d["top"] + len(d["anchors"])) * gc.CONFIRM_SEEDS
    _, plan = default_plan
    assert plan["search"].runs == search_runs + confirm_runs
    # The H200 check of commit 5837cb6 trained base x 2 and 5 candidates; 4 were infeasible.
    assert (len(points) - len(feasible), search_runs) == (4, 7)
    assert plan["search"].runs == 7 + 10


def test_sweep_and_calibrate_runs_are_the_librarys(gc, default_plan):
    from scaler import calibrate, sweep_points, sweeps
    from scaler.data import parse_data

    source = parse_data("embedded")
    cfg = sweeps.SweepConfig(kind="width-by-baseline", seeds=2)
    points = sweep_points.sweep_points(cfg, source.num_classes, source.max_pixels)
    trained = [p for p in points if not p.skip]
    _, plan = default_plan
    assert plan["sweep"].runs == len(trained) * 2 == 40
    cal = calibrate.CalibrationConfig()
    assert plan["calibrate"].runs == len(cal.members) * cal.seeds == 12
    assert plan["bench"].runs == 2 * gc.BENCH_ROUNDS


def test_rates_are_for_b0(gc):
    from scaler.spec import preset

    assert preset("b0", 48).layers == gc.RATE_LAYERS
    assert gc.rate(1) == gc.rate(2) < gc.rate(5) < gc.rate(8) < gc.rate(16)
    assert gc.rate(16) == pytest.approx(2 * gc.rate(8))
    assert "h200-lr-embedded.csv" in gc.RATES[2].source
    assert "h200-gpu-check-summary.json" in gc.RATES[8].source


def test_makespan_places_trials_in_queue_order(gc):
    assert gc.makespan([10, 10, 10], 2) == 20
    assert gc.makespan([5] * 8, 8) == 5
    assert gc.makespan([1, 1, 4], 2) == 5  # the third trial waits for the first free worker
    assert gc.makespan([], 8) == 0


def test_commands_pass_workers_per_gpu_on_cuda_only(gc, tmp_path):
    cuda = gc.commands(gc.Settings(workers_per_gpu=4, out=tmp_path))
    for name in ("search", "sweep", "calibrate"):  # calibrate: a study kind since 0.6
        assert cuda[name][-2:] == ["--workers-per-gpu", "4"]
    assert "--workers-per-gpu" not in cuda["bench"]
    assert gc.commands(gc.Settings(out=tmp_path))["calibrate"][-2:] != ["--workers-per-gpu", "4"]
    cpu = gc.commands(gc.Settings(device="cpu", tiny=True, workers_per_gpu=4, out=tmp_path))
    assert not any("--workers-per-gpu" in argv for argv in cpu.values())
    assert cpu["search"][:3] == ["search", "--budget", "2x"]


def test_unknown_phase_exits_2_with_one_line(gc, capsys, tmp_path):
    assert gc.main([str(tmp_path / "out"), "--phases", "bench,bogus", "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().count("\n") == 0
    assert "'bogus'" in captured.err and "bench, search, sweep, calibrate" in captured.err
    assert not (tmp_path / "out").exists()


def test_dry_run_prints_the_plan_and_runs_nothing(gc, capsys, tmp_path):
    out = tmp_path / "plan"
    assert gc.main([str(out), "--dry-run", "--phases", "calibrate"]) == 0
    text = capsys.readouterr().out
    assert "scaler calibrate --device cuda" in text
    assert "runs: 12 on 8 workers" in text and "fits" in text
    assert not out.exists()


def test_phase_states(gc):
    assert gc.phase_state(0) == "finished"
    assert gc.phase_state("timed out") == "cut"
    assert gc.phase_state(1) == "failed"
    assert gc.phase_state(-15) == "failed"
    assert gc.phase_state(None) == "skipped"
    rows = {
        "bench": {"state": gc.phase_state(0)},
        "search": {"state": gc.phase_state("timed out")},
        "sweep": {"state": "skipped"},
    }
    assert gc.exit_code(rows) == 0  # a cut phase is a measurement, not a failure
    rows["calibrate"] = {"state": gc.phase_state(2)}
    assert gc.exit_code(rows) == 1


def test_runs_finished_from_study_files_and_log(gc, tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="gpu-search", storage=storage)
    for attrs, state in (
        ({"role": "base", "status": "trained", "top1_seeds": [70.0, 71.0]}, "COMPLETE"),
        ({"role": "grid", "status": "reused", "top1_seeds": [70.0]}, "COMPLETE"),
        ({"role": "confirm", "status": "trained", "top1_seeds": [72.0, 73.0]}, "COMPLETE"),
        ({"role": "grid", "status": "trained", "top1_seeds": [69.0]}, "FAIL"),
    ):
        trial = study.ask()
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        if state == "COMPLETE":
            study.tell(trial, 70.0)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    n, detail = gc.runs_finished("search", {}, tmp_path)
    assert (n, detail["by_role"]) == (4, {"base": 2, "confirm": 2})
    assert gc.runs_finished("sweep", {}, tmp_path) == (0, {"study": "not created"})

    # calibrate: its study, else calibration/runs.csv, else its log
    (tmp_path / "calibrate.log").write_text("b0 seed 0: top-1 70.00 %\nb0 seed 1: top-1 71 %\n")
    assert gc.runs_finished("calibrate", {}, tmp_path)[0] == 2
    (tmp_path / "calibration").mkdir()
    (tmp_path / "calibration" / "runs.csv").write_text("member,seed\nb0,0\nb0,1\nb1,0\n")
    assert gc.runs_finished("calibrate", {}, tmp_path) == (3, {"from": "calibration/runs.csv"})
    cal = optuna.create_study(study_name="gpu-calibrate", storage=storage)
    trial = cal.ask()
    for k, v in {"role": "calibrate", "status": "trained", "top1_seeds": [70.0]}.items():
        trial.set_user_attr(k, v)
    cal.tell(trial, 70.0)
    assert gc.runs_finished("calibrate", {}, tmp_path) == (1, {"by_role": {"calibrate": 1}})
    bench = {"result": {"scaler_rounds": [1.0, 2.0, 3.0]}}
    assert gc.runs_finished("bench", bench, tmp_path)[0] == 6
