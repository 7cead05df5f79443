"""The GPU check: every phase timed on the card, under a budget from a stated plan.

Called by scripts/gpu_check.sh once scaler is installed; writes OUT/summary.json (rewritten
after every phase, so a run cut short still leaves what it measured) and one log per phase.
``--dry-run`` prints the plan (phases, commands, runs, estimated minutes on the card) and runs
nothing; it needs no GPU.

  python scripts/gpu_check.py OUT [--device cuda|cpu] [--tiny] [--time-limit S] [--dry-run]
                                  [--workers-per-gpu K] [--phases bench,search,sweep,calibrate]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PHASES = ("bench", "search", "sweep", "calibrate")
# Tiny settings for the CPU smoke run in CI: seconds per phase, nothing measured.
TINY_PRESET = "quick"
TINY_OVERRIDES = {"epochs": 1, "images": 64, "batch_size": 32, "base_pixels": 16, "threads": 1}
CONFIRM_SEEDS = 2  # the search's confirmation: fixed seeds, so its time can be planned
TINY_SEARCH = {"alpha_range": (1.0, 1.2), "beta_range": (1.0, 1.1), "proxy_tolerance": 0.6}
TINY_SWEEP_WIDTHS = (1.0, 1.4)
TINY_CALIBRATE = {"members": ("b0", "b1"), "seeds": 2}
SWEEP_SEEDS = 2  # the Figure 1 sweep: 20 points x 2 seeds
BENCH_ROUNDS = 3  # scaler bench's default; each round runs the trainer and the reference loop


# ---------------------------------------------------------------------------------------------
# The stored H200 rates (NVIDIA H200, torch 2.11.0+cu130, 16 cores) and the plan's allowances
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """Seconds of one run of ``images`` training images of a 16-layer network (B0, 48 px)."""

    seconds: float
    images: int  # epochs x 2,560 (2,600 embedded train images, batches of 64, last one dropped)
    source: str


# Processes on one card -> the slowest measured run there. Runs of a network deeper than 16
# layers are priced x layers/16 (a 48 px proxy network is launch-bound: docs/gpu.md).
RATES = {
    2: Rate(
        20.8,
        12 * 2560,
        "reports/proxy-study/h200-lr-embedded.csv: b0, 48 px, 12 epochs (commit 23c7037), "
        "19.1-20.8 s a run after each process's first (2 processes: docs/gpu.md); "
        "b3 (26 layers) 21.8-28.7 s, under 20.8 x 26/16 = 33.8",
    ),
    8: Rate(
        48.0,
        8 * 2560,
        "docs/gpu.md (the logs of reports/proxy-study/h200-gpu-check-summary.json, "
        "commit 5837cb6, 8 workers): the sweep's first 8 points (16 layers, 8 epochs), "
        "37-48 s per seed; the search's runs (16-26 layers) 41-67 s, under 48 x 26/16 = 78",
    ),
}
RATE_LAYERS = 16  # layers of B0 and of the sweep's d = 1 points, the networks RATES timed
# Each phase: interpreter, torch, CUDA context, workers spawned, the study created. From the
# summary: the sweep took 130.2 s for 2 seeds of <= 48 s in each worker, ~34 s besides them.
PHASE_START_S = 30.0
RUN_OVERHEAD_S = 2.0  # per run: model built, cuDNN tuned to its shapes, fvcore count, records
BENCH_PNG_S = 10.0  # bench writes the train split as PNGs for its reference loop (allowance)
BENCH_REFERENCE_FACTOR = 4.0  # naive loop : trainer (4.09x on a CPU, docs/performance.md)
AUTO_PER_GPU = 8  # scaler's own K on the H200: min(8, 16 cores, what fits in 80 % of 141 GB)

PLAN_HELP = (
    f"""\
The plan (what --dry-run prints, per phase; every number below is in this script):

  run seconds = RATE(P) x images / RATE.images x max(1, layers/{RATE_LAYERS}) + {RUN_OVERHEAD_S:g} s
                P = the processes training at once: min(K workers, trials of the stage)
  phase       = {PHASE_START_S:g} s start + its trials placed in queue order on K workers (a trial
                trains its seeds one after another; the search's confirmation starts when its
                search stage ends); never less than (sum of its run seconds) / K
  budget      = the phase's estimate x time limit / (sum of the estimates); the time a phase
                leaves unused goes to the next one

Runs are counted with scaler's own functions: the search's queue (searches.queued_points),
each point realized under the budget (candidates.realize_candidate: infeasible points are
never trained, twins are trained once), then the confirmation (confirm._resolve with
confirm.DEFAULTS: top 3 + base + paper, 2 seeds, 2x the run; the slowest feasible candidates
are taken as the top 3); the sweep's points (sweep_points.sweep_points) x its seeds;
calibrate's members (calibrate.member_specs) x seeds, a
trial a run on K workers as the others; bench's rounds x 2 loops of 32 batches, the reference
loop priced at {BENCH_REFERENCE_FACTOR:g}x the trainer's time, + {BENCH_PNG_S:g} s to write its
PNGs. Images a run: scaler.confirm's count (epochs x whole batches of the train split).

RATE(P), the slowest measured run of a 16-layer network on one H200 with P processes on it:
"""
    + "\n".join(
        textwrap.fill(
            f"P = {k}: {r.seconds:g} s per {r.images:,} images ({r.source})",
            96,
            initial_indent="  ",
            subsequent_indent="    ",
            break_on_hyphens=False,
        )
        for k, r in RATES.items()
    )
    + f"""
  P = 1 uses P = 2's; 2 < P < 8 interpolates per image between them linearly (the card
  trains about as many images a second with 2 processes as with 8, so a process's run time
  grows with P); P > 8: P = 8's x P/8. K is --workers-per-gpu, else {AUTO_PER_GPU} (scaler's own
  choice on the H200: min(8, 16 cores, what fits in 80 % of its memory)).
  Start: {PHASE_START_S:g} s a phase (the summary's sweep: 130.2 s - 2 seeds x 48 s = 34 s
  in each worker besides its runs). These are the only H200 numbers there are; a finished
  check replaces them.
"""
)


# ---------------------------------------------------------------------------------------------
# the plan: each phase's command, its runs counted by scaler, its estimate and its budget
# ---------------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One phase of the check as planned: command, runs, estimate (s), budget (s), arithmetic."""

    name: str
    argv: list[str]
    runs: int
    workers: int
    estimate: float
    lines: list[str]
    budget: float = 0.0


def rate(k: int) -> float:
    """Seconds per training image of a 16-layer network with ``k`` processes on the card."""
    lo, hi = (RATES[n].seconds / RATES[n].images for n in (2, 8))
    if k <= 2:
        return lo
    if k <= 8:  # between the two measurements: linear (the card is near saturation at K = 2)
        return lo + (hi - lo) * (k - 2) / 6
    return hi * k / 8


def run_seconds(k: int, images: int, layers: int) -> float:
    """Estimated seconds of one run on the H200 (RATES, layers/16, per-run overhead)."""
    return rate(k) * images * max(1.0, layers / RATE_LAYERS) + RUN_OVERHEAD_S


def makespan(durations: list[float], k: int) -> float:
    """Trials placed in queue order, each on the first worker free (as the runner claims)."""
    free = [0.0] * max(1, k)
    for d in durations:
        i = free.index(min(free))
        free[i] += d
    return max(free) if durations else 0.0


def _stage(
    label: str, trials: list[tuple[str, int, int]], k: int, images: int
) -> tuple[float, str]:
    """(makespan, its arithmetic) of trials given as (name, seeds, layers) on ``k`` workers.

    The card is priced at the processes that train at once: min(k, trials)."""
    active = max(1, min(k, len(trials)))
    each = [(name, n, run_seconds(active, images, layers)) for name, n, layers in trials]
    durations = [n * sec for _, n, sec in each]
    span = makespan(durations, k)
    runs = sum(n for _, n, _ in each)
    work = sum(durations)
    longest = max(each, key=lambda t: t[1] * t[2]) if each else ("-", 0, 0.0)
    return span, (
        f"{label}: {runs} runs in {len(trials)} trials at the rate of {active} "
        f"process{'es' if active > 1 else ''} ({rate(active) * images:.1f} s a 16-layer run "
        f"+ {RUN_OVERHEAD_S:g} s); {work:.0f} s of runs / {k} = {work / max(1, k):.0f} s; "
        f"longest trial {longest[0]} {longest[1]} x {longest[2]:.1f} s; "
        f"in queue order on {k} worker{'s' if k > 1 else ''}: {span:.0f} s"
    )


@dataclass(frozen=True)
class Settings:
    device: str = "cuda"
    tiny: bool = False
    workers_per_gpu: int | None = None
    out: Path = Path("OUT")

    @property
    def preset(self) -> str:
        return TINY_PRESET if self.tiny else "standard"

    @property
    def overrides(self) -> dict:
        return {**(TINY_OVERRIDES if self.tiny else {}), "device": self.device}

    @property
    def workers(self) -> int:
        """K: the workers of a search, sweep or calibration on the card (1 on a CPU: scaler's
        default)."""
        if self.device != "cuda":
            return 1
        return self.workers_per_gpu or AUTO_PER_GPU


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def proxy_argv(s: Settings) -> list[str]:
    argv = ["--device", s.device]
    if s.tiny:
        argv += ["--proxy", s.preset]
        for k, v in TINY_OVERRIDES.items():
            argv += [_flag(k), str(v)]
    return argv


def commands(s: Settings) -> dict[str, list[str]]:
    """The command of each phase (scaler's arguments)."""
    out = s.out
    storage = ["--storage", f"sqlite:///{out / 'studies.db'}"]
    per_gpu = (
        ["--workers-per-gpu", str(s.workers_per_gpu)]
        if s.workers_per_gpu and s.device == "cuda"
        else []
    )
    bench = [
        "bench",
        "--device",
        s.device,
        "--json",
        "--rounds",
        str(1 if s.tiny else BENCH_ROUNDS),
    ]
    bench += ["--images", "64", "--base-pixels", "16"] if s.tiny else []
    search = ["search", "--budget", "2x", *proxy_argv(s), *storage, "--study", "gpu-search"]
    # Fixed confirmation seeds: a race (the default) trains as many rounds as the runs need,
    # which no plan can time; 2 seeds is its first round, as planned below.
    search += ["--confirm-seeds", str(CONFIRM_SEEDS)]
    if s.tiny:
        (a0, a1), (b0, b1) = TINY_SEARCH["alpha_range"], TINY_SEARCH["beta_range"]
        search += ["--alpha-range", f"{a0:g}:{a1:g}", "--beta-range", f"{b0:g}:{b1:g}"]
        search += ["--proxy-tolerance", f"{TINY_SEARCH['proxy_tolerance']:.0%}"]
    sweep = ["sweep", "width-by-baseline", "--seeds", str(SWEEP_SEEDS), *proxy_argv(s), *storage]
    sweep += ["--study", "gpu-sweep"]
    sweep += ["--widths", ",".join(f"{w:g}" for w in TINY_SWEEP_WIDTHS)] if s.tiny else []
    calibrate = ["calibrate", *proxy_argv(s), *storage, "--study", "gpu-calibrate"]
    calibrate += ["--out", str(out / "calibration")]
    if s.tiny:
        calibrate += ["--seeds", str(TINY_CALIBRATE["seeds"])]
        calibrate += ["--members", ",".join(TINY_CALIBRATE["members"])]
    return {
        "bench": bench,
        "search": search + per_gpu,
        "sweep": sweep + per_gpu,
        "calibrate": calibrate + per_gpu,
    }


def _source():
    from scaler.data import parse_data

    return parse_data("embedded")


def _images(proxy, source) -> int:
    """Training images one run of ``proxy`` sees (scaler.confirm's count: last batch dropped)."""
    from scaler import confirm

    return confirm._length(proxy, len(source.load("train", proxy.base_pixels)))


def plan_bench(s: Settings, source) -> Phase:
    from scaler.proxy import resolve_proxy

    proxy = resolve_proxy(
        "standard", {"device": s.device, **({"base_pixels": 16} if s.tiny else {})}
    )
    n_train = len(source.load("train", proxy.base_pixels))
    batch = min(proxy.batch_size, n_train)
    images = max(1, (64 if s.tiny else 32 * batch) // batch) * batch  # scaler.bench's count
    rounds = 1 if s.tiny else BENCH_ROUNDS
    ours = run_seconds(1, images, RATE_LAYERS)
    theirs = BENCH_REFERENCE_FACTOR * (ours - RUN_OVERHEAD_S) + RUN_OVERHEAD_S
    total = PHASE_START_S + BENCH_PNG_S + rounds * (ours + theirs)
    lines = [
        f"{rounds} round{'s' if rounds > 1 else ''} x (trainer {images:,} images {ours:.1f} s "
        f"+ reference loop {theirs:.1f} s) + {BENCH_PNG_S:g} s PNGs + {PHASE_START_S:g} s start "
        f"= {total:.0f} s"
    ]
    return Phase("bench", [], 2 * rounds, 1, total, lines)


def plan_search(s: Settings, source) -> Phase:
    from scaler import candidates, confirm, searches
    from scaler.records import CANDIDATE_ROLES

    extra = TINY_SEARCH if s.tiny else {}
    cfg = searches.SearchConfig(
        budget=2.0,
        proxy=s.preset,
        proxy_overrides=tuple(sorted(s.overrides.items())),
        confirm_seeds=CONFIRM_SEEDS,
        **extra,
    )
    k = s.workers
    proxy = cfg.proxy_config()
    images = _images(proxy, source)
    trials: list[tuple[str, str, int, int]] = []  # (role, name, seeds, layers), trained ones
    trained: dict[str, int] = {}  # network key -> seeds: a later twin is reused, not trained
    infeasible = reused = 0
    for q in searches.queued_points(cfg):
        a = q.attrs
        c = candidates.realize_candidate(  # a plan times nothing: its device may be absent
            cfg,
            a["role"],
            a["alpha"],
            a["beta"],
            source.num_classes,
            source.max_pixels,
            timed=False,
        )
        seeds = cfg.base_seeds if a["role"] == "base" else cfg.seeds
        if c.infeasible:
            infeasible += 1
        elif trained.get(c.network_key, 0) >= seeds:
            reused += 1
        else:
            trained[c.network_key] = seeds
            name = f"{a['role']} ({a['alpha']:g}, {a['beta']:g})"
            trials.append((a["role"], name, seeds, c.layers))
    search_stage = [(n, seeds, layers) for _, n, seeds, layers in trials]
    span1, line1 = _stage(f"search, {images:,} images a run", search_stage, k, images)
    # The confirmation: scaler.confirm's own settings for this proxy (DEFAULTS, SMOKE).
    top, seeds, _, cproxy = confirm._resolve(
        cfg.confirm_config(),
        {"preset": cfg.proxy, "settings": proxy},
        len(source.load("train", proxy.base_pixels)),
    )
    cimages = _images(cproxy, source)
    anchors = confirm.SMOKE.get(cfg.proxy, confirm.DEFAULTS)["anchors"]
    slow_first = sorted(trials, key=lambda t: -t[3])  # the slowest are assumed to be the top
    chosen = [t for t in slow_first if t[0] in CANDIDATE_ROLES and t[0] not in anchors][:top]
    chosen += [t for t in slow_first if t[0] in CANDIDATE_ROLES and t not in chosen][
        : top - len(chosen)
    ]
    for role in anchors:
        chosen += [t for t in trials if t[0] == role and t not in chosen][:1]
    confirm_stage = [(n, seeds, layers) for _, n, _, layers in chosen]
    span2, line2 = _stage(
        f"confirmation, top {top} + {' + '.join(anchors)}, {seeds} seeds, {cimages:,} images a run",
        confirm_stage,
        k,
        cimages,
    )
    runs = sum(t[1] for t in search_stage) + sum(t[1] for t in confirm_stage)
    total = PHASE_START_S + span1 + span2
    lines = [
        f"{len(trials) + infeasible + reused} queued points: {len(trials)} trained, "
        f"{infeasible} infeasible, {reused} twins reused",
        line1,
        line2,
        f"{PHASE_START_S:g} s start + {span1:.0f} s + {span2:.0f} s = {total:.0f} s",
    ]
    return Phase("search", [], runs, k, total, lines)


def plan_sweep(s: Settings, source) -> Phase:
    from scaler import sweep_points, sweeps

    cfg = sweeps.SweepConfig(
        kind="width-by-baseline",
        seeds=SWEEP_SEEDS,
        proxy=s.preset,
        proxy_overrides=tuple(sorted(s.overrides.items())),
        widths=TINY_SWEEP_WIDTHS if s.tiny else None,
    )
    k = s.workers
    images = _images(cfg.proxy_config(), source)
    points = sweep_points.sweep_points(cfg, source.num_classes, source.max_pixels)
    seen: set[str] = set()
    trials = []
    for p in points:
        if p.skip or p.network_key in seen:
            continue
        seen.add(p.network_key)
        name = f"d={p.depth:g} w={p.width:g} r={p.resolution:g}"
        trials.append((name, cfg.seeds, p.layers))
    span, line = _stage(f"{len(points)} points, {images:,} images a run", trials, k, images)
    total = PHASE_START_S + span
    lines = [line, f"{PHASE_START_S:g} s start + {span:.0f} s = {total:.0f} s"]
    return Phase("sweep", [], sum(t[1] for t in trials), k, total, lines)


def plan_calibrate(s: Settings, source) -> Phase:
    from scaler import calibrate

    cfg = calibrate.CalibrationConfig(
        proxy=s.preset,
        proxy_overrides=tuple(sorted(s.overrides.items())),
        **(TINY_CALIBRATE if s.tiny else {}),
    )
    images = _images(cfg.proxy_config(), source)
    k = s.workers  # a calibration is a study: one trial per (member, seed), K workers on CUDA
    trials = [
        (f"{m} seed {i}", 1, spec.layers)
        for m, spec in calibrate.member_specs(cfg, source)  # member by member, as calibrate queues
        for i in range(cfg.seeds)
    ]
    span, line = _stage(
        f"{len(cfg.members)} members x {cfg.seeds} seeds, {images:,} images a run",
        trials,
        k,
        images,
    )
    total = PHASE_START_S + span
    lines = [line, f"{PHASE_START_S:g} s start + {span:.0f} s = {total:.0f} s"]
    return Phase("calibrate", [], len(trials), k, total, lines)


PLANNERS = {
    "bench": plan_bench,
    "search": plan_search,
    "sweep": plan_sweep,
    "calibrate": plan_calibrate,
}


def make_plan(s: Settings, phases: list[str], limit: float) -> list[Phase]:
    """Each phase planned and given its budget: its estimate x limit / the estimates' sum."""
    source = _source()
    argv = commands(s)
    plan = []
    for name in phases:
        p = PLANNERS[name](s, source)
        p.argv = argv[name]
        plan.append(p)
    total = sum(p.estimate for p in plan)
    for p in plan:
        p.budget = p.estimate * limit / total if total > 0 else limit / len(plan)
    return plan


def plan_text(s: Settings, plan: list[Phase], limit: float) -> str:
    total = sum(p.estimate for p in plan)
    where = "the CPU (the estimates are the H200's)" if s.device == "cpu" else "one H200"
    if s.device != "cuda":
        who = "1 worker a phase (scaler's default on a CPU)"
    else:
        why = "--workers-per-gpu" if s.workers_per_gpu else "scaler's automatic choice on an H200"
        who = f"K = {s.workers} workers on the card for search, sweep and calibrate ({why})"
    out = [
        f"GPU check plan on {where}: {'tiny' if s.tiny else 'full-size'} phases, {who}",
        "",
    ]
    for i, p in enumerate(plan, 1):
        out.append(f"{i}. {p.name}: scaler {' '.join(p.argv)}")
        out.append(f"   runs: {p.runs} on {p.workers} worker{'s' if p.workers > 1 else ''}")
        out += [f"   {line}" for line in p.lines]
        out.append(
            f"   estimate {p.estimate:.0f} s ({p.estimate / 60:.1f} min); budget "
            f"{p.estimate:.0f} x {limit:g} / {total:.0f} = {p.budget:.0f} s"
        )
    fits = total <= limit
    out += [
        "",
        f"total: {' + '.join(f'{p.estimate:.0f}' for p in plan)} = {total:.0f} s "
        f"({total / 60:.1f} min) against --time-limit {limit:g} s ({limit / 60:.1f} min): "
        + (
            f"fits, {limit - total:.0f} s to spare"
            if fits
            else f"does NOT fit, {total - limit:.0f} s over"
        ),
    ]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# running the phases
# ---------------------------------------------------------------------------------------------


class GpuSampler:
    """Samples nvidia-smi in the background; busy % and memory per phase."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []  # time, util %, memory MiB
        self._proc = None
        if shutil.which("nvidia-smi"):
            self._proc = subprocess.Popen(
                [
                    "nvidia-smi",
                    "--query-gpu=utilization.gpu,memory.used",
                    "--format=csv,noheader,nounits",
                    "-lms",
                    "200",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                util, mem = (float(x) for x in line.split(",")[:2])
            except ValueError:
                continue
            self.samples.append((time.time(), util, mem))

    def window(self, start: float, end: float) -> dict:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if not inside:
            return {"gpu_busy_mean": None, "gpu_memory_peak_mib": None, "samples": 0}
        return {
            "gpu_busy_mean": round(sum(s[1] for s in inside) / len(inside), 1),
            "gpu_memory_peak_mib": max(s[2] for s in inside),
            "samples": len(inside),
        }

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()


def environment() -> dict:
    import torch

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cpus": os.cpu_count(),
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env.update(card=p.name, memory_gib=round(p.total_memory / 2**30, 1))
    if shutil.which("nvidia-smi"):
        q = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        env["nvidia_smi"] = q.stdout.strip()
    return env


def phase_state(rc) -> str:
    """finished (exit 0), cut (stopped at its budget), skipped (never started) or failed."""
    if rc is None:
        return "skipped"
    if rc == 0:
        return "finished"
    if rc == "timed out":
        return "cut"
    return "failed"


def exit_code(rows: dict) -> int:
    """1 when a phase failed; a cut phase is a measurement, not a failure."""
    return 1 if any(r.get("state") == "failed" for r in rows.values()) else 0


def study_runs(storage: str, study: str) -> dict[str, int] | None:
    """Runs trained per role in ``study`` (finished trials that trained, not reused); None
    when the study is not there."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        st = optuna.load_study(study_name=study, storage=storage)
    except Exception:
        return None
    runs: dict[str, int] = {}
    for t in st.get_trials(deepcopy=False):
        if t.state.name != "COMPLETE" or t.user_attrs.get("status") != "trained":
            continue
        role = str(t.user_attrs.get("role", "?"))
        runs[role] = runs.get(role, 0) + len(t.user_attrs.get("top1_seeds", []))
    return runs


CALIBRATE_LINE = re.compile(r"\bb\d seed \d+: top-1")


def runs_finished(name: str, row: dict, out: Path) -> tuple[int | None, dict]:
    """(runs the phase finished, detail): from its study, its output files or its log."""
    storage = f"sqlite:///{out / 'studies.db'}"
    if name == "bench":
        rounds = len(row.get("result", {}).get("scaler_rounds", ()))
        return 2 * rounds, {"rounds": rounds}
    by_role = study_runs(storage, f"gpu-{name}")
    if by_role is not None:
        return sum(by_role.values()), {"by_role": by_role}
    if name in ("search", "sweep"):
        return 0, {"study": "not created"}
    runs_csv = out / "calibration" / "runs.csv"
    if runs_csv.exists():
        lines = [x for x in runs_csv.read_text().splitlines()[1:] if x.strip()]
        return len(lines), {"from": "calibration/runs.csv"}
    log = out / "calibrate.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return len(CALIBRATE_LINE.findall(text)), {"from": "calibrate.log"}


def run_phase(phase: Phase, limit: float, out: Path, sampler: GpuSampler) -> dict:
    """Run one phase under ``limit`` seconds; its output goes to OUT/NAME.log."""
    cmd = [sys.executable, "-m", "scaler", *phase.argv]
    start = time.time()
    with open(out / f"{phase.name}.log", "w") as log:
        # A session of its own, so a timeout also stops the phase's worker processes.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=max(1.0, limit))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = "timed out"
    end = time.time()
    row = {
        "state": phase_state(rc),
        "command": "scaler " + " ".join(phase.argv),
        "rc": rc,
        "seconds": round(end - start, 1),
        "estimate_s": round(phase.estimate, 1),
        "budget_s": round(phase.budget, 1),
        "allowed_s": round(limit, 1),  # its budget + what earlier phases left, within the limit
        "runs_planned": phase.runs,
    }
    if phase.name == "bench" and rc == 0:
        text = (out / "bench.log").read_text()
        try:
            row["result"] = json.loads(text[text.index("{") :])
        except ValueError:
            row["result"] = {}
    row["runs_finished"], row["runs_detail"] = runs_finished(phase.name, row, out)
    row.update(sampler.window(start, end))
    return row


def skipped_row(phase: Phase, why: str) -> dict:
    return {
        "state": "skipped",
        "command": "scaler " + " ".join(phase.argv),
        "rc": None,
        "why": why,
        "seconds": 0.0,
        "budget_s": round(phase.budget, 1),
        "estimate_s": round(phase.estimate, 1),
        "runs_planned": phase.runs,
        "runs_finished": 0,
    }


def parse_args(argv: list[str] | None):
    ap = argparse.ArgumentParser(
        description=__doc__,
        epilog=PLAN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("out", type=Path)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--tiny", action="store_true", help="CI's CPU smoke settings")
    ap.add_argument("--time-limit", type=float, default=480.0, help="seconds for all phases")
    ap.add_argument(
        "--workers-per-gpu", type=int, default=None, help="K for search, sweep and calibrate"
    )
    ap.add_argument("--phases", default=",".join(PHASES), help="comma-separated, in this order")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    phases = [p for p in args.phases.split(",") if p]
    unknown = [p for p in phases if p not in PHASES]
    if unknown or not phases:
        bad = unknown[0] if unknown else args.phases
        print(f"--phases {bad!r} is unknown; valid: {', '.join(PHASES)}", file=sys.stderr)
        return 2
    if not args.time_limit > 0:
        print(f"--time-limit {args.time_limit:g} is invalid: it must be > 0", file=sys.stderr)
        return 2
    out = args.out.resolve()
    s = Settings(args.device, args.tiny, args.workers_per_gpu, out)
    plan = make_plan(s, phases, args.time_limit)
    if args.dry_run:
        print(plan_text(s, plan, args.time_limit))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + args.time_limit
    sampler = GpuSampler()
    summary = {"environment": environment(), "device": args.device, "tiny": args.tiny}
    summary["time_limit_s"] = args.time_limit
    summary["plan"] = {
        "workers_per_gpu": s.workers,
        "estimate_s": round(sum(p.estimate for p in plan), 1),
        "text": plan_text(s, plan, args.time_limit).splitlines(),
    }
    summary["phases"] = {}
    carry = 0.0  # budget earlier phases left unused
    for phase in plan:
        left = deadline - time.time()
        if left < 5:
            summary["phases"][phase.name] = skipped_row(phase, "no time left")
            continue
        limit = min(left, phase.budget + carry)
        row = run_phase(phase, limit, out, sampler)
        carry = max(0.0, limit - row["seconds"])
        summary["phases"][phase.name] = row
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    sampler.stop()
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return exit_code(summary["phases"])


if __name__ == "__main__":
    sys.exit(main())
