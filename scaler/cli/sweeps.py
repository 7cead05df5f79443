"""``scaler sweep width-by-baseline | single | compound | compare``: the paper's scaling curves,
and its Tables 3 and 7 (compound against single dimensions at equal measured FLOPs)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from scaler.cli.common import (
    DATA_DEFAULT,
    SHARED_OPTIONS,
    BaseOpt,
    DryRunOpt,
    TimeOpt,
    base_option,
    extend,
    new_app,
    next_steps,
    out,
    proxy_options,
    run_kind,
)
from scaler.cli.studies import status_cell, top1_cell

app = new_app()


@app.callback()
def _sweep_root() -> None:
    """Scaling curves: train fixed networks (the paper's Figures 3 and 4) in an optuna study.

    Each sweep is a resumable study; --max-flops skips the points a CPU cannot afford.

    Examples:

      scaler sweep width-by-baseline --proxy quick --max-flops 100M

      scaler sweep single --dim all --proxy quick --max-flops 100M

      scaler sweep compound --coefficients coefficients.json --phi-max 3

      scaler sweep compare --base mobilenetv2 --budget 4x --seeds 3
    """


WidthsOpt = Annotated[
    Optional[str], typer.Option(help="Widths w, comma-separated (e.g. 1,1.4,1.8).")
]


@dataclass(frozen=True)
class SweepArgs:
    """The options every sweep command takes."""

    max_flops: Optional[str]
    data: str
    upsample: Optional[str]
    proxy: str
    seeds: int
    study: Optional[str]
    storage: Optional[str]
    workers: Optional[int]
    workers_per_gpu: Optional[int]
    base: Optional[str]
    time: Optional[str]  # --time: the study's identity does not include it
    dry_run: bool

    def config(self, kind: str, overrides: tuple, **fields):
        """The sweep's configuration: these options, the proxy overrides and ``fields``."""
        from scaler import sweep_config as W

        max_flops, at = W.parse_flops(self.max_flops)
        if "base" not in fields:
            fields["base"] = base_option(self.base) or W.SweepConfig.base
        return W.SweepConfig(
            kind=kind,
            max_flops=max_flops,
            max_flops_at=at,
            data=self.data,
            upsample=self.upsample,
            proxy=self.proxy,
            proxy_overrides=overrides,
            seeds=self.seeds,
            **fields,
        )


SWEEP_OPTIONS = {
    "max_flops": (
        Optional[str],
        typer.Option(
            help="Skip points above this many fvcore FLOPs: 50M (at the proxy's pixels) or "
            "400M@cost (at the 224 px the budget is measured at)."
        ),
        None,
    ),
    "data": (*SHARED_OPTIONS["data"], DATA_DEFAULT),
    "upsample": (*SHARED_OPTIONS["upsample"], None),
    "proxy": (*SHARED_OPTIONS["proxy"], "standard"),
    "seeds": (int, typer.Option(help="Proxy runs per point (>= 2: error bars)."), 1),
    **{
        name: (*SHARED_OPTIONS[name], None)
        for name in ("study", "storage", "workers", "workers_per_gpu")
    },
    "base": (Optional[str], BaseOpt.__metadata__[0], None),
    "time": (Optional[str], TimeOpt.__metadata__[0], None),
    "dry_run": (bool, DryRunOpt.__metadata__[0], False),
}


def sweep_options(fn):
    """Give a sweep command the options of :class:`SweepArgs` (as ``args``) and the proxy's."""

    def combine(values, kwargs):
        return {**kwargs, "args": SweepArgs(**values)}

    return proxy_options()(extend(fn, SWEEP_OPTIONS, combine, hide=("args",)))


def describe_point(event) -> str:
    """The sweep point a trial_start event names."""
    info = event.info
    return (
        f"#{event.trial} {info['label']}: d={info['depth']:.3g} w={info['width']:.3g} "
        f"r={info['resolution']:.3g} {info['pixels']}px {info['flops'] / 1e6:,.1f} MFLOPs"
    )


def run(cfg, args: SweepArgs) -> None:
    """Run a sweep with a progress display (one worker) and print its table."""
    from scaler import sweeps as W
    from scaler.findings_sweeps import compare_verdicts
    from scaler.workers import check_workers

    check_workers(args.workers, args.workers_per_gpu)  # fails before any file is written
    started = time.time()
    # Validate, create or check the study before the display starts: errors stay one line.
    prepared = W.prepare(cfg, args.study, args.storage)
    res = run_kind(
        W,
        prepared,
        args.workers,
        args.workers_per_gpu,
        describe_point,
        time_budget=args.time,
        dry_run=args.dry_run,
    )
    print_sweep(res)
    for line in compare_verdicts(res.frame) if cfg.kind == "compare" else ():
        out.print(line.describe(), markup=False)
    out.print(
        f"study {res.study_name} in {res.storage} · {len(res.frame)} trials · "
        f"{time.time() - started:.0f} s"
    )
    next_steps(res.study_name, args.storage, res.storage, "plot", "report")


SWEEP_COLUMNS = ("#", "series", "point", "d", "w", "r", "px", "layers", "params (M)")
SWEEP_COLUMNS += ("MFLOPs*", "top-1 %", "time (s)", "status")


def print_sweep(res) -> None:
    """A sweep's finished points, then those without a result and the noise floor."""
    table = Table(title=f"{res.study_name}: top-1 on the held-out split")
    for c in SWEEP_COLUMNS:
        table.add_column(c, justify="left" if c in ("series", "status") else "right")
    for _, r in res.points.iterrows():
        table.add_row(
            str(r["number"]),
            str(r["label"]),
            f"{r['value_name']}={r['point_value']:g}",
            f"{r['depth']:.3g}",
            f"{r['width']:.3g}",
            f"{r['resolution']:.3g}",
            str(int(r["pixels"])),
            str(int(r["layers"])),
            f"{r['params'] / 1e6:.2f}",
            f"{r['flops'] / 1e6:,.1f}",
            top1_cell(r),
            f"{(r['wall_time'] or 0):.0f}",
            status_cell(r),
        )
    out.print(table)
    rest = res.frame[~res.frame["number"].isin(res.points["number"])]
    for _, r in rest.iterrows():
        # A skipped point's reason states its FLOPs or pixels already.
        size = f"{int(r['pixels'])} px" + (
            f", {r['flops'] / 1e6:,.1f} MFLOPs*" if r["status"] != "skipped" else ""
        )
        out.print(
            f"  {r['status']}: {r['label']} {r['value_name']}={r['point_value']:g} "
            f"({size}): {r['reason']}"
        )
    sigma = res.noise.sigma
    noise = f"σ = {sigma:.2f} points from {res.noise.runs} runs" if sigma == sigma else "none"
    out.print(
        f"noise floor: {noise}. * fvcore FLOPs (1 multiply-add = 1 flop) at the proxy's pixels."
    )


@app.command("width-by-baseline")
@sweep_options
def width_by_baseline(
    widths: WidthsOpt = None,
    baselines: Annotated[
        Optional[str],
        typer.Option(help="Baselines D:R, comma-separated (default 1:1,1:1.3,2:1,2:1.3)."),
    ] = None,
    *,
    args: SweepArgs,
    overrides: tuple = (),
) -> None:
    """Figure 1 (the paper's Figure 4): widths w for each baseline depth d and resolution r.

    One series per baseline (d, r), labelled "d=2.0, r=1.3"; defaults w = 1.0 ... 2.6 and
    (d, r) in (1, 1), (1, 1.3), (2, 1), (2, 1.3). r multiplies the proxy's base pixels. Running
    the same command again resumes; a higher --max-flops trains the points it now allows.

    Examples:

      scaler sweep width-by-baseline --proxy quick --max-flops 40M

      scaler sweep width-by-baseline --widths 1,1.8,2.6 --baselines 1:1,2:1.3 --seeds 2

      scaler sweep width-by-baseline --proxy quick --max-flops 40M --workers 2
    """
    from scaler import sweep_config as W

    cfg = args.config(
        "width-by-baseline",
        overrides,
        widths=W.parse_values("--widths", widths),
        baselines=W.parse_baselines(baselines),
    )
    run(cfg, args)


@app.command("single")
@sweep_options
def single(
    dim: Annotated[str, typer.Option(help="width | depth | resolution, comma-separated, or all.")],
    widths: WidthsOpt = None,
    depths: Annotated[
        Optional[str], typer.Option(help="Depths d, comma-separated (default 1,2,3,4,6,8).")
    ] = None,
    resolutions: Annotated[
        Optional[str],
        typer.Option(help="Resolutions r (× base pixels), comma-separated (default 1 ... 2.5)."),
    ] = None,
    *,
    args: SweepArgs,
    overrides: tuple = (),
) -> None:
    """The paper's Figure 3: scale one dimension, the other two at 1; one series per --dim.

    Defaults: w = 1.0, 1.4, 1.8, 2.6, 3.8, 5.0; d = 1, 2, 3, 4, 6, 8; r = 1.0, 1.3, 1.5, 1.7,
    1.9, 2.2, 2.5 (× the proxy's base pixels). Several dimensions in one study train their
    shared (1, 1, 1) point once.

    Examples:

      scaler sweep single --dim width --proxy quick --max-flops 40M

      scaler sweep single --dim all --proxy quick --max-flops 40M

      scaler sweep single --dim depth --depths 1,2,4 --seeds 2
    """
    from scaler import sweep_config as W

    cfg = args.config(
        "single",
        overrides,
        dims=W.parse_dims(dim),
        widths=W.parse_values("--widths", widths),
        depths=W.parse_values("--depths", depths),
        resolutions=W.parse_values("--resolutions", resolutions),
    )
    run(cfg, args)


@app.command("compound")
@sweep_options
def compound(
    coefficients: Annotated[
        Path, typer.Option(help="Coefficients file written by `scaler export`.")
    ],
    phi_max: Annotated[int, typer.Option(help="Largest φ of the family (0..12).")] = 3,
    *,
    args: SweepArgs,
    overrides: tuple = (),
) -> None:
    """The compound family φ = 0..K of exported coefficients: d = α^φ, w = β^φ, r = γ^φ.

    r multiplies the proxy's base pixels, as in the search, so the line can be drawn with the
    single-dimension curves (`scaler plot COMPOUND SINGLE`).

    Examples:

      scaler sweep compound --coefficients coefficients.json --phi-max 3 --proxy quick

      scaler plot sweep-compound-embedded-quick-1a2b3c sweep-single-all-embedded-quick-4d5e6f
    """

    from scaler.exports import choose_base

    base = choose_base(base_option(args.base), coefficients)  # the export's base
    cfg = args.config(
        "compound", overrides, coefficients=str(coefficients), phi_max=phi_max, base=base
    )
    run(cfg, args)


@app.command("compare")
@sweep_options
def compare(
    budget: Annotated[
        str, typer.Option(help="Measured FLOPs budget, a multiple of the base's: 4x, 4.5x ...")
    ],
    compound: Annotated[
        Optional[str],
        typer.Option(help="The compound network's D:W (γ is solved); default (1.2, 1.1)^φ."),
    ] = None,
    *,
    args: SweepArgs,
    overrides: tuple = (),
) -> None:
    """The paper's Table 3 (Table 7 for B0): compound against depth-, width- and resolution-only.

    At one budget, every network is solved to the same measured FLOPs (B × the base's at its
    cost pixels): the compound one (d, w given, r solved) and each dimension alone. All train
    with the same seeds; compound is tested against each dimension by a paired t-test over the
    seeds (give --seeds 3 or more), with a Bonferroni-corrected 95 % interval and a verdict.

    Examples:

      scaler sweep compare --base mobilenetv2 --budget 4x --seeds 3

      scaler sweep compare --budget 4.5x --compound 1.4:1.2 --seeds 3

      scaler sweep compare --base resnet18 --budget 2x --proxy quick --seeds 2
    """
    from scaler import sweep_config as W
    from scaler.scaling import parse_budget

    cfg = args.config(
        "compare", overrides, budget=parse_budget(budget), compound=W.parse_compound(compound)
    )
    run(cfg, args)
