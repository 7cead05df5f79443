"""``scaler search``, ``scaler export`` and ``scaler studies``."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from scaler.cli.common import (
    DATA_DEFAULT,
    SEARCH_TIME,
    STUDY_PROXY,
    BaseOpt,
    DataOpt,
    DryRunOpt,
    JsonOpt,
    PerGpuOpt,
    ProxyOpt,
    SearchTimeOpt,
    StorageOpt,
    StudyOpt,
    TimeOpt,
    UpsampleOpt,
    WorkersOpt,
    base_option,
    next_steps,
    out,
    print_json,
    proxy_options,
    run_kind,
)
from scaler.cli.latency import DeviceOpt, MeasureLatencyOpt, latency_settings

ToleranceOpt = Annotated[str, typer.Option(help="Largest miss of the measured budget: 5% or 0.05.")]
ProxyToleranceOpt = Annotated[
    Optional[str],
    typer.Option(
        help="Largest miss of the budget at the proxy's own input size (default 10%; "
        "--proxy quick, a smoke run, does not check it)."
    ),
]
CostPixelsOpt = Annotated[
    Optional[int],
    typer.Option(help="Input size where the budget is measured (default: the base's, 224 px)."),
]
ConfirmOpt = Annotated[
    bool, typer.Option(help="Then confirm the leaders with a longer proxy (scaler confirm).")
]
ConfirmTopOpt = Annotated[
    Optional[int], typer.Option(help="Networks confirmed (default 3; 1 for --proxy quick).")
]
ConfirmSeedsOpt = Annotated[
    Optional[str],
    typer.Option(
        help="Paired runs of each: auto (default: 2, then more where they decide) or a number."
    ),
]
ConstraintOpt = Annotated[
    str, typer.Option(help="measured (fvcore) | nominal (formula) | latency (timed, --latency).")
]
LatencyOpt = Annotated[
    Optional[str],
    typer.Option(
        help="What a latency times, recorded for every candidate: batch1 | batchN | train-step "
        "| off (default $SCALER_LATENCY, else batch1).",
    ),
]
MetricOpt = Annotated[
    str,
    typer.Option(
        help="What ranks the candidates, picks the confirmed ones and the export: top1 | "
        "balanced (mean per-class recall on val, for imbalanced classes)."
    ),
]
ConfirmMaxSeedsOpt = Annotated[
    Optional[int], typer.Option(help="With auto: seeds a network gets at most (default 8).")
]
BaseCheckOpt = Annotated[
    Optional[str],
    typer.Option(
        help="stop (default; off for --proxy quick): train the base first and stop, exit code "
        "4, unless its val top-1 is clearly above the majority-class rate; off: do not check."
    ),
]


@proxy_options(*STUDY_PROXY, "min_steps")
def search(
    budget: Annotated[str, typer.Option(help="FLOPs budget: 2x, 4x, 0.5x ...")] = "2x",
    data: DataOpt = DATA_DEFAULT,
    upsample: UpsampleOpt = None,
    proxy: ProxyOpt = "standard",
    sampler: Annotated[str, typer.Option(help="grid (paper-style) | tpe | random.")] = "grid",
    trials: Annotated[Optional[int], typer.Option(help="Cap on candidate trials.")] = None,
    seeds: Annotated[int, typer.Option(help="Proxy runs per candidate (mean is ranked).")] = 1,
    base_seeds: Annotated[int, typer.Option(help="Runs of the base (>= 2): noise floor.")] = 2,
    constraint: ConstraintOpt = "measured",
    latency: LatencyOpt = None,
    tolerance: ToleranceOpt = "5%",
    proxy_tolerance: ProxyToleranceOpt = None,
    cost_pixels: CostPixelsOpt = None,
    alpha_range: Annotated[Optional[str], typer.Option(help="α range MIN:MAX.")] = None,
    beta_range: Annotated[Optional[str], typer.Option(help="β range MIN:MAX.")] = None,
    alpha_step: Annotated[Optional[float], typer.Option(help="α grid/sampling step.")] = None,
    beta_step: Annotated[Optional[float], typer.Option(help="β grid/sampling step.")] = None,
    pruner: Annotated[str, typer.Option(help="none | median | hyperband.")] = "none",
    metric: MetricOpt = "top1",
    base_check: BaseCheckOpt = None,
    confirm: ConfirmOpt = True,
    confirm_top: ConfirmTopOpt = None,
    confirm_seeds: ConfirmSeedsOpt = None,
    confirm_max_seeds: ConfirmMaxSeedsOpt = None,
    study: StudyOpt = None,
    storage: StorageOpt = None,
    workers: WorkersOpt = None,
    workers_per_gpu: PerGpuOpt = None,
    base: BaseOpt = None,
    time_budget: SearchTimeOpt = SEARCH_TIME,
    dry_run: DryRunOpt = False,
    *,
    overrides: tuple = (),
) -> None:
    """Search α, β (γ from the budget) with proxy training, then confirm the leaders.

    The same command again resumes (and trains what --time, 20m unless given, skipped).

    Examples:

      scaler search --budget 2x --proxy quick

      scaler search --base mobilenetv2 --budget 4x --time 1h --dry-run
    """
    options = dict(locals())  # first: the options as given
    from scaler import searches as S
    from scaler.workers import check_workers

    check_workers(workers, workers_per_gpu)  # bad values fail before any file is written
    workers = latency_workers(constraint, workers, workers_per_gpu)
    started = time.time()
    prepared = S.prepare(search_config(options), study, storage)  # every check, first
    warn = functools.partial(first_lines, prepared)  # after the data's first line
    res = run_kind(
        S, prepared, workers, workers_per_gpu, time_budget=time_budget, dry_run=dry_run, warn=warn
    )
    finish_search(res, started, storage)


def finish_search(res, started: float, storage: str | None) -> None:
    """The board, where the study is and the next command; exit code 4 when the base check
    stopped the search (scaler.base_check)."""
    from scaler.base_check import EXIT_CODE, Outcome

    print_board(res)
    took = f"{len(res.frame)} trials · {time.time() - started:.0f} s"
    out.print(f"study {res.study_name} in {res.storage} · {took}")
    if res.base_check is not None and res.base_check.outcome == Outcome.STOPPED:
        raise typer.Exit(EXIT_CODE)
    next_steps(res.study_name, storage, res.storage, "export")


def latency_workers(constraint: str, workers: int | None, per_gpu: int | None) -> int | None:
    """One worker under the latency constraint: what is timed must have the device to itself."""
    if constraint != "latency":
        return workers
    if (workers or 1) > 1 or per_gpu is not None:
        given = f"--workers {workers}" if per_gpu is None else f"--workers-per-gpu {per_gpu}"
        raise ValueError(
            f"{given} is invalid with --constraint latency: latency is timed with the device to "
            "itself, so give --workers 1 (or leave it out)"
        )
    return 1


def search_config(options: dict):
    """The :class:`scaler.search_config.SearchConfig` of ``scaler search``'s options."""
    from scaler import search_config as S
    from scaler.confirm import parse_seeds
    from scaler.scaling import parse_budget

    drop = ("study", "storage", "workers", "time_budget", "dry_run")  # not the study's identity
    o = {k: v for k, v in options.items() if k not in drop}
    o["confirm_seeds"] = parse_seeds(o["confirm_seeds"], "--confirm-seeds")
    o.pop("workers_per_gpu")
    net = base_option(o.pop("base")) or S.SearchConfig.base
    cost_pixels, proxy_tolerance = o.pop("cost_pixels"), o.pop("proxy_tolerance")
    return S.SearchConfig(
        budget=parse_budget(o.pop("budget")),
        proxy_overrides=o.pop("overrides"),
        tolerance=S.parse_tolerance(o.pop("tolerance")),
        proxy_tolerance=(
            None
            if proxy_tolerance is None
            else S.parse_tolerance(proxy_tolerance, "--proxy-tolerance")
        ),
        cost_pixels=net.pixels if cost_pixels is None else cost_pixels,
        alpha_range=S.parse_range("--alpha-range", o.pop("alpha_range")),
        beta_range=S.parse_range("--beta-range", o.pop("beta_range")),
        base=net,
        **o,
    )


BOARD_COLUMNS = ("#", "role", "α", "β", "γ", "px", "measured ×", "latency ×", "top-1 %")
BOARD_COLUMNS += ("95 % set",)
BOARD_COLUMNS += ("params (M)", "time (s)", "status")


def first_lines(prepared) -> None:
    """What a search says before its plan: small classes, then the proxy run's length on the
    data in epochs, SGD steps and images (and whether the minimum of steps raised it)."""
    warn_small_classes(prepared.source)
    if prepared.length is not None:
        out.print(prepared.length.announce(), markup=False, soft_wrap=True)


def warn_small_classes(source) -> None:
    """One line naming the classes with too few held-out images to score well (none: quiet)."""
    from scaler.data.rates import class_rates, small_class_warnings

    line = small_class_warnings(class_rates(source))
    if line:
        out.print(line, markup=False)


def rates_line(res) -> str:
    """Chance and the majority-class rate of each held-out split, or that they are unknown."""
    if not res.rates:
        return "chance and majority-class rate: unknown (not stored on this study)"
    return "; ".join(r.describe() for r in res.rates.values())


def metric_cell(r) -> str:
    """A row's balanced accuracy (the ranked metric when --metric balanced)."""
    value = r.get("balanced_mean")
    return "" if value is None or value != value else f"{value:.2f}"


def margin_cell(r, res) -> str:
    """Top-1 minus the majority-class rate on val: what a network adds over the biggest class."""
    val = (res.rates or {}).get("val")
    return "" if val is None else f"{r['top1_mean'] - val.majority:+.2f}"


def ratio_cell(value) -> str:
    """A ratio to 3 decimals ("" when not measured)."""
    return "" if value is None or value != value else f"{value:.3f}"


def status_cell(r) -> str:
    """A row's status, with the trial it reused."""
    return r["status"] + (f" #{int(r['reused_from'])}" if r["status"] == "reused" else "")


def top1_cell(r) -> str:
    std = f" ± {r['top1_std']:.2f}" if (r["seeds"] or 1) > 1 else ""
    return f"{r['top1_mean']:.2f}{std}"


def print_board(res) -> None:
    """The leaderboard of a search, then its trials without a result and the noise floor."""
    from scaler.records import METRIC_NAMES
    from scaler.results import confirmed, set_cell

    ranked = METRIC_NAMES[res.metric]
    table = Table(title=f"{res.study_name}: leaderboard (ranked by {ranked} on val)")
    columns = (*BOARD_COLUMNS[:9], "balanced %", "− majority", *BOARD_COLUMNS[9:])
    for c in columns:
        table.add_column(c, justify="right")
    for _, r in res.board.iterrows():
        table.add_row(
            str(r["number"]),
            r["role"],
            f"{r['alpha']:.3f}",
            f"{r['beta']:.3f}",
            f"{r['gamma']:.3f}",
            f"{int(r['pixels'])}/{int(r['cost_pixels'])}",
            f"{r['cost_ratio']:.3f}",
            ""
            if r.get("latency_ratio") is None or r["latency_ratio"] != r["latency_ratio"]
            else f"{r['latency_ratio']:.3f}",
            top1_cell(r),
            metric_cell(r),
            margin_cell(r, res),
            set_cell(r, res.noise.usable),
            f"{r['params'] / 1e6:.2f}",
            f"{(r['wall_time'] or 0):.0f}",
            status_cell(r),
        )
    out.print(table)
    other = res.frame[~res.frame["number"].isin(res.board["number"])]
    other = other[~other["number"].isin(confirmed(res.frame)["number"])]
    for _, r in other.iterrows():
        out.print(
            f"  trial {r['number']} ({r['role']}, α={r['alpha']:.3f}, β={r['beta']:.3f}): "
            f"{r['status']} {r['reason']}"
        )
    nz = res.noise
    rule = nz.rule if nz.usable else "no candidate is declared possibly best or ruled out"
    out.print(
        f"noise floor ({ranked}): {nz.describe()}; {rule}. px = proxy/cost pixels; measured × "
        "= fvcore FLOPs ÷ base at the cost pixels; latency × = time ÷ the base's there; "
        "− majority = top-1 minus the majority class's share of val."
    )
    out.print(rates_line(res), markup=False)
    if res.base_check is not None:
        out.print(res.base_check.describe(), markup=False, soft_wrap=True)
    if res.surface is not None:
        out.print(f"surface: {res.surface.describe()}", markup=False)
    if res.confirmation is not None:
        print_confirmation(res.study_name, res.confirmation)


CONFIRM_COLUMNS = ("search #", "role", "α", "β", "γ", "search top-1 %", "confirm top-1 %")
CONFIRM_COLUMNS += ("P(best)", "95 % set", "test top-1 %")


def print_confirmation(name: str, c) -> None:
    """The confirmation table of a search and its sentences."""
    from scaler.findings_confirm import sentences

    if c.rows:
        table = Table(title=f"{name}: confirmation ({c.state}, top-1 on val; test never chosen on)")
        for col in CONFIRM_COLUMNS:
            table.add_column(col, justify="right")
        for r in c.rows:
            std = f" ± {r.std:.2f}" if r.std is not None else ""
            keep = "" if r.possibly_best is None else ("possibly" if r.possibly_best else "")
            keep = f"out after round {r.out_after}" if r.out_after else keep
            table.add_row(
                str(r.trial),
                r.role,
                f"{r.alpha:.3f}",
                f"{r.beta:.3f}",
                f"{r.gamma:.3f}",
                f"{r.search_top1:.2f} ({r.search_runs})",
                f"{r.top1:.2f}{std} ({r.runs})",
                "" if r.p_best is None else f"{r.p_best:.2f}",
                keep,
                "" if r.test_top1 is None else f"{r.test_top1:.2f}",
            )
        out.print(table)
    for line in sentences(c):
        out.print(line, markup=False)


@proxy_options("epochs", "images", "threads", "device")
def confirm(
    study: Annotated[str, typer.Argument(help="Study name (a search).")],
    top: Annotated[
        Optional[int], typer.Option(help="Networks confirmed, best first (default 3).")
    ] = None,
    seeds: Annotated[
        Optional[str],
        typer.Option(
            help="Paired runs of each network: auto (default: 2, then one more a round for "
            "those still possibly best) or a number."
        ),
    ] = None,
    max_seeds: Annotated[
        Optional[int], typer.Option(help="With --seeds auto: seeds a network gets at most (8).")
    ] = None,
    proxy: Annotated[
        Optional[str],
        typer.Option(help="Preset (e.g. long); default: the search's proxy, 1.5x as long."),
    ] = None,
    storage: StorageOpt = None,
    time_budget: TimeOpt = None,
    dry_run: DryRunOpt = False,
    *,
    overrides: tuple = (),
) -> None:
    """Train a search's leaders, the base and the paper's point again, longer and with paired
    seeds: proxy fidelity (Kendall τ), the candidates that could be the best, and the chosen
    one on the test split. Resumable; the trials join the study.

    Examples:

      scaler confirm search-embedded-2x-standard-1a2b3c

      scaler confirm search-embedded-2x-standard-1a2b3c --top 4 --seeds 4 --proxy long

      scaler confirm search-embedded-2x-standard-1a2b3c --seeds auto --max-seeds 6
    """
    from scaler import confirm as C
    from scaler.studies import mask_url

    cfg = C.ConfirmConfig(
        top=top,
        seeds=C.parse_seeds(seeds),
        max_seeds=max_seeds,
        proxy=proxy,
        proxy_overrides=overrides,
    )
    prepared = C.prepare(cfg, study, storage)
    res = run_kind(C, prepared, workers=1, time_budget=time_budget, dry_run=dry_run)
    print_confirmation(study, res)
    next_steps(study, storage, mask_url(prepared.storage_url), "export", "report")


def export(
    study: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOpt = None,
    out_file: Annotated[
        Optional[Path],
        typer.Option("--out", help="Output file (default ./STUDY.coefficients.json)."),
    ] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="json | yaml.")] = None,
    base: Annotated[
        Optional[str],
        typer.Option(help="Check that the study scales this base (it stores its own)."),
    ] = None,
    measure_latency: MeasureLatencyOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Write the best candidate's coefficients, provenance and family φ = 0..7.

    Examples:

      scaler export search-embedded-2x-standard-1a2b3c --out coefficients.json

      scaler export STUDY --measure-latency batch1 --device cuda

      scaler family --coefficients coefficients.json
    """
    from scaler.searches import export as export_fn

    timing = latency_settings(measure_latency, device)
    path = export_fn(study, storage, out_file, fmt, base=base_option(base), latency=timing)
    out.print(f"wrote {path}")


def studies(
    storage: Annotated[
        Optional[str],
        typer.Option(help="optuna storage URL (default: $SCALER_STORAGE, else studies/*.db)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the studies in a storage with their state.

    Examples:

      scaler studies

      scaler studies --storage postgresql://USER@HOST/DB --json
    """
    from scaler.results import list_studies

    rows = list_studies(storage)
    if as_json:
        print_json(rows)
        return
    table = Table(title="studies")
    columns = ("study", "kind", "data", "budget", "trials", "states", "state", "best top-1")
    for c in (*columns, "chance / majority"):
        table.add_column(c)
    for r in rows:
        table.add_row(
            r["study"],
            r["kind"],
            str(r["data"]),
            str(r["budget"]),
            str(r["trials"]),
            " ".join(f"{k}={v}" for k, v in r["states"].items()),
            r["state"],
            "" if r["best_top1"] is None else f"{r['best_top1']:.2f}",
            "?" if r["majority"] is None else f"{r['chance']:.1f} / {r['majority']:.1f} %",
        )
    out.print(table)
    if not rows:
        out.print("no studies found")
