"""The ``scaler`` command line: thin typer commands over the library.

Every command calls one library function and formats its result (rich tables, or JSON with
``--json``). Bad input raises ``ValueError`` in the library; :func:`main` turns it, and click's
own usage errors, into one line on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from scaler import __version__

app = typer.Typer(
    name="scaler",
    help="Compound model scaling (EfficientNet): build, count, search, plot, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
# Piped output keeps full-width tables instead of rich's 80-column fallback.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


class UserError(ValueError):
    """Bad input found by the CLI layer itself."""


def _version(value: bool) -> None:
    if value:
        print(f"scaler {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """Compound model scaling (Tan & Le, EfficientNet, 2019): build, count, search, export."""


def _print_json(payload: object) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=_jsonable) + "\n")


def _jsonable(value: object):
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _m(flops: float) -> str:
    return f"{flops / 1e6:,.1f}"


# --------------------------------------------------------------------------------------------
# info / family
# --------------------------------------------------------------------------------------------


def _spec_from_options(preset, depth, width, resolution, base_resolution, coefficients, phi):
    from scaler import spec as S
    from scaler.scaling import load_coefficients

    given = [x is not None for x in (depth, width, resolution)]
    if coefficients is not None:
        if preset is not None or any(given):
            raise UserError("--coefficients cannot be combined with --preset/--depth/--width")
        coeffs, base = load_coefficients(coefficients)
        return coeffs.spec(phi, base_resolution or base)
    if preset is not None:
        if any(given):
            raise UserError("--preset cannot be combined with --depth/--width/--resolution")
        return S.preset(preset, base_resolution or S.B0_RESOLUTION)
    base = S.B0_RESOLUTION if base_resolution is None else base_resolution
    return S.scale(
        1.0 if depth is None else depth,
        1.0 if width is None else width,
        base_resolution=base,
        pixels=base if resolution is None else resolution,
    )


@app.command()
def info(
    preset: Annotated[Optional[str], typer.Option(help="Official member b0..b7.")] = None,
    depth: Annotated[Optional[float], typer.Option(help="Depth multiplier d (> 0).")] = None,
    width: Annotated[Optional[float], typer.Option(help="Width multiplier w (> 0).")] = None,
    resolution: Annotated[
        Optional[int],
        typer.Option(help="Input size in pixels (8..2048); default: the base."),
    ] = None,
    base_resolution: Annotated[
        Optional[int],
        typer.Option(help="Pixels of the unscaled network (default 224)."),
    ] = None,
    coefficients: Annotated[
        Optional[Path],
        typer.Option(help="Coefficients file written by `scaler export`."),
    ] = None,
    phi: Annotated[float, typer.Option(help="φ to apply to --coefficients.")] = 1.0,
    classes: Annotated[int, typer.Option(help="Classifier outputs (>= 1).")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the per-stage table of a scaled network (the paper's Table 1) with its cost.

    FLOPs are fvcore's: one multiply-add counts as one flop.

    Examples:

      scaler info --preset b0

      scaler info --depth 1.2 --width 1.1 --resolution 258

      scaler info --coefficients coefficients.json --phi 3 --json
    """
    from scaler.complexity import breakdown, count

    spec = _spec_from_options(preset, depth, width, resolution, base_resolution, coefficients, phi)
    if classes < 1:
        raise UserError(f"--classes {classes} is invalid: it must be >= 1")
    rows = breakdown(spec, classes)
    total = count(spec, classes)
    if as_json:
        _print_json(
            {
                "depth": spec.depth,
                "width": spec.width,
                "resolution": spec.resolution,
                "base_resolution": spec.base_resolution,
                "pixels": spec.pixels,
                "layers": spec.layers,
                "params": total.params,
                "flops": total.flops,
                "flops_unit": "fvcore: one multiply-add = one flop",
                "activations": total.activations,
                "stages": rows,
            }
        )
        return
    table = Table(title=f"EfficientNet {spec.describe()}, {spec.layers} blocks")
    for name in ("stage", "operator", "resolution", "channels", "layers"):
        table.add_column(name, justify="left" if name == "operator" else "right")
    for name in ("params", "MFLOPs*", "activations"):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(
            str(r.stage),
            r.operator,
            f"{r.resolution}x{r.resolution}",
            str(r.channels),
            str(r.layers),
            f"{r.params:,}",
            _m(r.flops),
            f"{r.activations:,}",
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        "",
        str(spec.layers),
        f"{total.params:,}",
        _m(total.flops),
        f"{total.activations:,}",
    )
    out.print(table)
    out.print(
        f"params {total.params / 1e6:.2f} M · FLOPs {total.gflops:.3f} G* · "
        f"activations {total.activations / 1e6:.2f} M"
    )
    out.print("* fvcore: one multiply-add = one flop; silu, sigmoid, mul and add are not counted.")


@app.command()
def family(
    alpha: Annotated[Optional[float], typer.Option(help="Depth coefficient α (> 0).")] = None,
    beta: Annotated[Optional[float], typer.Option(help="Width coefficient β (> 0).")] = None,
    gamma: Annotated[Optional[float], typer.Option(help="Resolution coefficient γ (> 0).")] = None,
    coefficients: Annotated[
        Optional[Path],
        typer.Option(help="Coefficients file written by `scaler export`."),
    ] = None,
    phi_max: Annotated[int, typer.Option(help="Largest φ (0..12).")] = 7,
    base_resolution: Annotated[
        Optional[int],
        typer.Option(help="Pixels of the unscaled network (default 224)."),
    ] = None,
    compare_official: Annotated[
        bool, typer.Option(help="Show the official B1..B7 next to each φ.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the family φ = 0..N of compound coefficients: nominal and measured cost.

    Nominal cost is (α·β²·γ²)^φ; measured cost is fvcore FLOPs ÷ the base's, for the real,
    rounded network. The paper's (1.2, 1.1, 1.15) at φ = 1 is nominally 1.92× but measures
    about 2.55× at 224 px, because ceil rounding turns 16 blocks into 23.

    Examples:

      scaler family --alpha 1.2 --beta 1.1 --gamma 1.15 --phi-max 7

      scaler family --coefficients coefficients.json --compare-official --json
    """
    from scaler import scaling
    from scaler.spec import B0_RESOLUTION, check_pixels

    if coefficients is not None:
        if any(v is not None for v in (alpha, beta, gamma)):
            raise UserError("--coefficients cannot be combined with --alpha/--beta/--gamma")
        coeffs, base = scaling.load_coefficients(coefficients)
    else:
        missing = [n for n, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)) if v is None]
        if missing:
            raise UserError(
                f"--{missing[0]} is missing: give --alpha, --beta and --gamma, "
                "or --coefficients FILE"
            )
        for name, value in (("--alpha", alpha), ("--beta", beta), ("--gamma", gamma)):
            if not (value > 0 and value < 100):
                raise UserError(f"{name} {value} is invalid: it must be a number in (0, 100)")
        coeffs, base = scaling.Coefficients(alpha, beta, gamma), B0_RESOLUTION
    if not 0 <= phi_max <= 12:
        raise UserError(f"--phi-max {phi_max} is invalid: it must be an integer in 0..12")
    base = check_pixels(base_resolution or base, "--base-resolution")
    rows = scaling.family(coeffs, phi_max, base)
    official = scaling.official_family(base) if compare_official else {}
    if as_json:
        payload = {
            "coefficients": dataclasses.asdict(coeffs),
            "base_resolution": base,
            "flops_unit": "fvcore: one multiply-add = one flop",
            "rows": rows,
        }
        if compare_official:
            payload["official"] = official
        _print_json(payload)
        return
    table = Table(
        title=f"Family of α={coeffs.alpha:.4g}, β={coeffs.beta:.4g}, γ={coeffs.gamma:.4g} "
        f"(α·β²·γ² = {coeffs.product:.3f}), base {base} px"
    )
    cols = [
        "φ",
        "d",
        "w",
        "r",
        "pixels",
        "layers",
        "params (M)",
        "GFLOPs*",
        "nominal ×",
        "measured ×",
    ]
    if compare_official:
        cols += ["official", "off. pixels", "off. params (M)", "off. measured ×"]
    for c in cols:
        table.add_column(c, justify="right")
    for r in rows:
        cells = [
            str(r.phi),
            f"{r.depth:.3f}",
            f"{r.width:.3f}",
            f"{r.resolution:.3f}",
            str(r.pixels),
            str(r.layers),
            f"{r.params / 1e6:.2f}",
            f"{r.flops / 1e9:.3f}",
            f"{r.nominal_cost:.2f}",
            f"{r.measured_cost:.2f}",
        ]
        if compare_official:
            o = official.get(f"b{r.phi}")
            cells += (
                [
                    f"B{r.phi}",
                    str(o.pixels),
                    f"{o.params / 1e6:.2f}",
                    f"{o.measured_cost:.2f}",
                ]
                if o
                else ["", "", "", ""]
            )
        table.add_row(*cells)
    out.print(table)
    out.print("* fvcore: one multiply-add = one flop. measured × = FLOPs ÷ base FLOPs.")


# --------------------------------------------------------------------------------------------
# proxy options shared by train, bench, search and sweeps
# --------------------------------------------------------------------------------------------

ProxyOpt = Annotated[str, typer.Option(help="Proxy preset: quick | standard | long.")]
DataOpt = Annotated[
    str,
    typer.Option(help="Data: embedded (default), imagefolder:PATH, cifar10:PATH, cifar100:PATH."),
]
EpochsOpt = Annotated[Optional[int], typer.Option(help="Override: training epochs.")]
ImagesOpt = Annotated[Optional[int], typer.Option(help="Override: training images seen.")]
BatchOpt = Annotated[Optional[int], typer.Option(help="Override: batch size.")]
LrOpt = Annotated[Optional[float], typer.Option(help="Override: peak learning rate.")]
OptimizerOpt = Annotated[Optional[str], typer.Option(help="Override: sgd | adamw | rmsprop.")]
BasePixelsOpt = Annotated[
    Optional[int], typer.Option(help="Override: the proxy's input size for the base (B0).")
]
ThreadsOpt = Annotated[Optional[int], typer.Option(help="CPU threads (default: torch's).")]
DeviceOpt = Annotated[Optional[str], typer.Option(help="auto | cpu | cuda | cuda:N | mps.")]
CompileOpt = Annotated[bool, typer.Option("--compile", help="Use torch.compile.")]
SeedOpt = Annotated[Optional[int], typer.Option(help="Override: the proxy's first seed.")]


def _overrides(**values) -> tuple[tuple[str, object], ...]:
    names = {"base_pixels": "base_pixels"}
    out = []
    for key, value in values.items():
        if value is None or value is False:
            continue
        out.append((names.get(key, key), value))
    return tuple(out)


def _proxy(name: str, overrides: tuple[tuple[str, object], ...]):
    from scaler.train import proxy_config

    return proxy_config(name, **dict(overrides))


# --------------------------------------------------------------------------------------------
# train / bench
# --------------------------------------------------------------------------------------------


@app.command()
def train(
    preset: Annotated[Optional[str], typer.Option(help="Official member b0..b7.")] = None,
    depth: Annotated[Optional[float], typer.Option(help="Depth multiplier d (> 0).")] = None,
    width: Annotated[Optional[float], typer.Option(help="Width multiplier w (> 0).")] = None,
    resolution: Annotated[
        Optional[int], typer.Option(help="Input size in pixels; default: the proxy base size.")
    ] = None,
    data: DataOpt = "embedded",
    proxy: ProxyOpt = "standard",
    epochs: EpochsOpt = None,
    images: ImagesOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    optimizer: OptimizerOpt = None,
    base_pixels: BasePixelsOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    compile: CompileOpt = False,
    seed: SeedOpt = None,
    json_out: Annotated[
        Optional[Path], typer.Option("--json", help="Also write the metrics to this JSON file.")
    ] = None,
) -> None:
    """Train one network on a short proxy run and print held-out top-1/top-5.

    --resolution is in pixels; presets scale the proxy's base size by their official
    resolution multiplier (b1: 240/224 of it).

    Examples:

      scaler train --preset b0

      scaler train --depth 1.2 --width 1.1 --resolution 37 --proxy quick --json run.json

      scaler train --preset b0 --data imagefolder:photos/ --base-pixels 64
    """
    from scaler.complexity import count
    from scaler.data import parse_data
    from scaler.train import train as train_fn

    cfg = _proxy(
        proxy,
        _overrides(
            epochs=epochs,
            images=images,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            base_pixels=base_pixels,
            threads=threads,
            device=device,
            compile=compile,
            seed=seed,
        ),
    )
    if json_out is not None and json_out.is_dir():
        raise UserError(f"--json {str(json_out)!r} is a directory: give a file path")
    spec = _spec_from_options(preset, depth, width, resolution, cfg.base_pixels, None, 1.0)
    source = parse_data(data)
    cost = count(spec, source.num_classes)
    out.print(
        f"training {spec.describe()} on {source.name} ({source.num_classes} classes), "
        f"{cost.params / 1e6:.2f} M params, {cost.flops / 1e6:.1f} MFLOPs*"
    )
    with _epoch_bar() as bar:
        result = train_fn(spec, source, cfg, progress=bar.update)
    metrics = {
        "top1": result.top1,
        "top5": result.top5,
        "wall_time": result.wall_time,
        "images_per_s": result.images_per_s,
        "params": cost.params,
        "flops": cost.flops,
        "activations": cost.activations,
        "pixels": spec.pixels,
        "depth": spec.depth,
        "width": spec.width,
        "data": source.name,
        "device": result.device,
        "threads": result.threads,
        "seed": result.seed,
        "loss_curve": list(result.loss_curve),
        "proxy": dataclasses.asdict(cfg),
    }
    out.print(
        f"top-1 {result.top1:.2f} % · top-5 {result.top5:.2f} % · "
        f"{result.images_per_s:,.0f} img/s · {result.wall_time:.1f} s on {result.device}"
    )
    out.print("* fvcore: one multiply-add = one flop")
    if json_out is not None:
        _write_json(json_out, metrics)
        out.print(f"wrote {json_out}")


def _write_json(path: Path, payload: object) -> None:
    import os

    if not path.parent.exists():
        raise UserError(f"folder {str(path.parent)!r} does not exist")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)


class _EpochBar:
    """A rich progress bar fed by the trainer's progress hook."""

    def __init__(self):
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        self.task = self.progress.add_task("epoch", total=None, info="")
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def update(self, epoch, epochs, loss, images_per_s):
        self.progress.update(
            self.task,
            completed=epoch,
            total=epochs,
            description=f"epoch {epoch}/{epochs}",
            info=f"loss {loss:.3f} · {images_per_s:,.0f} img/s",
        )


def _epoch_bar() -> _EpochBar:
    return _EpochBar()


@app.command()
def bench(
    preset: Annotated[str, typer.Option(help="Model preset b0..b7.")] = "b0",
    data: DataOpt = "embedded",
    proxy: ProxyOpt = "standard",
    rounds: Annotated[int, typer.Option(help="Alternating rounds of each loop (1..20).")] = 3,
    images: Annotated[
        Optional[int], typer.Option(help="Timed images per round (default: the trainer's).")
    ] = None,
    batch_size: BatchOpt = None,
    base_pixels: BasePixelsOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    workers: Annotated[
        Optional[int], typer.Option(help="DataLoader workers of the reference loop.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Trainer speed against a naive PyTorch-ImageNet-example loop, side by side in one run.

    The reference decodes each PNG with Pillow in a DataLoader, augments per sample and trains
    in fp32 NCHW; scaler's trainer uses pre-resized uint8 tensors, batched on-device
    augmentation and channels_last (bf16 autocast on CUDA). Rounds alternate so that load on
    a shared machine hits both alike.

    Examples:

      scaler bench

      scaler bench --preset b0 --rounds 5 --device cuda --json
    """
    from scaler.data import parse_data
    from scaler.spec import preset as preset_fn
    from scaler.train import bench as bench_fn

    if not 1 <= rounds <= 20:
        raise UserError(f"--rounds {rounds} is invalid: it must be in 1..20")
    cfg = _proxy(
        proxy,
        _overrides(batch_size=batch_size, base_pixels=base_pixels, threads=threads, device=device),
    )
    spec = preset_fn(preset, cfg.base_pixels)
    source = parse_data(data)
    with err.status("benchmarking ..."):
        r = bench_fn(spec, source, cfg, rounds, images=images, workers=workers)
    if as_json:
        _print_json(r)
        return
    table = Table(
        title=f"scaler bench: {r.model}, {r.pixels} px, batch {r.batch_size}, "
        f"{r.device}, {r.threads} threads"
    )
    for c in ("loop", "img/s (median)", "rounds"):
        table.add_column(c, justify="right")
    table.add_row(
        "scaler", f"{r.scaler_images_per_s:,.0f}", " ".join(f"{x:,.0f}" for x in r.scaler_rounds)
    )
    table.add_row(
        f"reference ({r.workers} workers)",
        f"{r.reference_images_per_s:,.0f}",
        " ".join(f"{x:,.0f}" for x in r.reference_rounds),
    )
    out.print(table)
    out.print(f"ratio {r.ratio:.2f}x")


# --------------------------------------------------------------------------------------------
# search / export / studies
# --------------------------------------------------------------------------------------------


def _range(option: str, text: Optional[str]) -> Optional[tuple[float, float]]:
    if text is None:
        return None
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise UserError(f"{option} {text!r} is invalid: use MIN:MAX, e.g. 1.0:1.4") from None
    return lo, hi


class _SearchDisplay:
    """Progress of a search: trial k of N, the current point, images/s, ETA."""

    def __init__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("trial"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        self.task = None
        self.point = ""

    def __enter__(self):
        self.progress.__enter__()
        self.task = self.progress.add_task("search", total=None, info="starting")
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def __call__(self, event) -> None:
        info = event.info
        if event.kind == "trial_start":
            self.point = (
                f"#{event.trial} {info['role']} α={info['alpha']:.3f} "
                f"β={info['beta']:.3f} γ={info['gamma']:.3f} {info['pixels']}px"
            )
            self.progress.update(
                self.task, completed=event.done, total=event.total, info=self.point
            )
        elif event.kind == "epoch":
            self.progress.update(
                self.task,
                completed=event.done,
                total=event.total,
                info=f"{self.point} · seed {info['seed'] + 1}/{info['seeds']} · epoch "
                f"{info['epoch']}/{info['epochs']} · {info['images_per_s']:,.0f} img/s",
            )
        elif event.kind == "trial_end":
            self.progress.update(self.task, completed=event.done + 1, total=event.total)


def _print_board(res) -> None:
    table = Table(title=f"{res.study_name}: leaderboard (top-1 on the held-out split)")
    for c in (
        "#",
        "role",
        "α",
        "β",
        "γ",
        "px",
        "measured ×",
        "top-1 %",
        "tied",
        "params (M)",
        "time (s)",
        "status",
    ):
        table.add_column(c, justify="right")
    for _, r in res.board.iterrows():
        std = f" ± {r['top1_std']:.2f}" if (r["seeds"] or 1) > 1 else ""
        mark = "best" if r["best"] else ("≈" if r["tied"] else "")
        table.add_row(
            str(r["number"]),
            r["role"],
            f"{r['alpha']:.3f}",
            f"{r['beta']:.3f}",
            f"{r['gamma']:.3f}",
            f"{int(r['pixels'])}/{int(r['cost_pixels'])}",
            f"{r['cost_ratio']:.3f}",
            f"{r['top1_mean']:.2f}{std}",
            mark,
            f"{r['params'] / 1e6:.2f}",
            f"{(r['wall_time'] or 0):.0f}",
            r["status"] + (f" #{int(r['reused_from'])}" if r["status"] == "reused" else ""),
        )
    out.print(table)
    other = res.frame[~res.frame["number"].isin(res.board["number"])]
    for _, r in other.iterrows():
        out.print(
            f"  trial {r['number']} ({r['role']}, α={r['alpha']:.3f}, β={r['beta']:.3f}): "
            f"{r['status']} {r['reason']}"
        )
    sigma = res.noise.sigma
    out.print(
        f"noise floor: σ = {sigma:.2f} points from {res.noise.runs} repeated runs; "
        f"{res.noise.rule}. px = proxy/cost pixels; measured × = fvcore FLOPs ÷ base at "
        f"the cost resolution."
    )


@app.command()
def search(
    budget: Annotated[str, typer.Option(help="FLOPs budget: 2x, 4x, 0.5x ...")] = "2x",
    data: DataOpt = "embedded",
    proxy: ProxyOpt = "standard",
    sampler: Annotated[str, typer.Option(help="grid (paper-style) | tpe | random.")] = "grid",
    trials: Annotated[Optional[int], typer.Option(help="Cap on candidate trials.")] = None,
    seeds: Annotated[int, typer.Option(help="Proxy runs per candidate (mean is ranked).")] = 1,
    base_seeds: Annotated[int, typer.Option(help="Runs of the base (>= 2): noise floor.")] = 2,
    constraint: Annotated[str, typer.Option(help="measured (fvcore) | nominal (formula).")] = (
        "measured"
    ),
    tolerance: Annotated[float, typer.Option(help="Measured-budget tolerance.")] = 0.05,
    cost_resolution: Annotated[
        int, typer.Option(help="Base input size at which the budget is measured.")
    ] = 224,
    alpha_range: Annotated[Optional[str], typer.Option(help="α range MIN:MAX.")] = None,
    beta_range: Annotated[Optional[str], typer.Option(help="β range MIN:MAX.")] = None,
    alpha_step: Annotated[Optional[float], typer.Option(help="α grid/sampling step.")] = None,
    beta_step: Annotated[Optional[float], typer.Option(help="β grid/sampling step.")] = None,
    pruner: Annotated[str, typer.Option(help="none | median | hyperband.")] = "none",
    study: Annotated[Optional[str], typer.Option(help="Study name (default: derived).")] = None,
    storage: Annotated[
        Optional[str], typer.Option(help="optuna storage URL (default sqlite:///studies/NAME.db).")
    ] = None,
    workers: Annotated[
        Optional[int],
        typer.Option(help="Worker processes here (default: one per CUDA GPU, else 1)."),
    ] = None,
    epochs: EpochsOpt = None,
    images: ImagesOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    base_pixels: BasePixelsOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Search α, β (γ from the budget) with proxy training; resumable; stored in optuna.

    Running the same command again resumes the study. The budget is enforced on the measured
    fvcore FLOPs of the real, rounded network (--constraint nominal: the paper's formula).

    Examples:

      scaler search --budget 2x --proxy quick

      scaler search --budget 2x

      scaler search --budget 4x --sampler tpe --trials 20 --seeds 2

      scaler search --storage postgresql://USER:PASSWORD@HOST/DB --workers 2
    """
    from scaler import search as S
    from scaler.scaling import parse_budget

    if workers is not None and not 1 <= workers <= 64:
        raise UserError(f"--workers {workers} is invalid: it must be in 1..64")
    if workers is None:
        from scaler.workers import default_workers

        workers = default_workers()
    cfg = S.SearchConfig(
        budget=parse_budget(budget),
        data=data,
        proxy=proxy,
        proxy_overrides=_overrides(
            epochs=epochs,
            images=images,
            batch_size=batch_size,
            lr=lr,
            base_pixels=base_pixels,
            threads=threads,
            device=device,
        ),
        sampler=sampler,
        trials=trials,
        seeds=seeds,
        base_seeds=base_seeds,
        constraint=constraint,
        tolerance=tolerance,
        cost_resolution=cost_resolution,
        alpha_range=_range("--alpha-range", alpha_range),
        beta_range=_range("--beta-range", beta_range),
        alpha_step=alpha_step,
        beta_step=beta_step,
        pruner=pruner,
    )
    started = __import__("time").time()
    prepared = S.prepare(cfg, study, storage)  # every check before the display starts
    if workers > 1:
        res = S.run_prepared(prepared, workers=workers)
    else:
        with _SearchDisplay() as display:
            res = S.run_prepared(prepared, progress=display)
    _print_board(res)
    out.print(
        f"study {res.study_name} in {res.storage} · {len(res.frame)} trials · "
        f"{__import__('time').time() - started:.0f} s"
    )
    out.print(
        f"next: scaler export {res.study_name}" + (f" --storage '{res.storage}'" if storage else "")
    )


@app.command()
def export(
    study: Annotated[str, typer.Argument(help="Study name.")],
    storage: Annotated[Optional[str], typer.Option(help="optuna storage URL.")] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Output file.")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="json | yaml.")] = None,
) -> None:
    """Write the best candidate's coefficients, provenance and family φ = 0..7.

    Examples:

      scaler export search-embedded-2x-standard-1a2b3c --out coefficients.json

      scaler family --coefficients coefficients.json
    """
    from scaler import search as S

    path = S.export(study, storage, out_file, fmt)
    out.print(f"wrote {path}")


@app.command()
def studies(
    storage: Annotated[
        Optional[str], typer.Option(help="optuna storage URL (default: studies/*.db).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the studies in a storage with their state.

    Examples:

      scaler studies

      scaler studies --storage postgresql://USER:PASSWORD@HOST/DB --json
    """
    from scaler import search as S

    rows = S.list_studies(storage)
    if as_json:
        _print_json(rows)
        return
    table = Table(title="studies")
    for c in ("study", "kind", "data", "budget", "trials", "states", "state", "best top-1"):
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
        )
    out.print(table)
    if not rows:
        out.print("no studies found")


# --------------------------------------------------------------------------------------------
# sweeps / plot / report
# --------------------------------------------------------------------------------------------

sweep_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(sweep_app, name="sweep")


@sweep_app.callback()
def _sweep_root() -> None:
    """Scaling curves: train fixed networks (the paper's Figures 3 and 4) in an optuna study.

    Each sweep is a resumable study; --max-flops skips the points a CPU cannot afford.

    Examples:

      scaler sweep width-by-baseline --proxy quick --max-flops 100M

      scaler sweep single --dim all --proxy quick --max-flops 100M

      scaler sweep compound --coefficients coefficients.json --phi-max 3
    """


WidthsOpt = Annotated[
    Optional[str], typer.Option(help="Widths w, comma-separated (e.g. 1,1.4,1.8).")
]
MaxFlopsOpt = Annotated[
    Optional[str],
    typer.Option(help="Skip points above this many fvcore FLOPs at the proxy size: 50M, 1.2G."),
]
SweepSeedsOpt = Annotated[int, typer.Option(help="Proxy runs per point (>= 2: error bars).")]
StudyOpt = Annotated[Optional[str], typer.Option(help="Study name (default: derived).")]
StorageOpt = Annotated[
    Optional[str], typer.Option(help="optuna storage URL (default sqlite:///studies/NAME.db).")
]


class _SweepDisplay(_SearchDisplay):
    """Progress of a sweep: point k of N, the current network, images/s, ETA."""

    def __call__(self, event) -> None:
        if event.kind == "trial_start":
            info = event.info
            self.point = (
                f"#{event.trial} {info['label']}: d={info['depth']:.3g} w={info['width']:.3g} "
                f"r={info['resolution']:.3g} {info['pixels']}px {info['flops'] / 1e6:,.1f} MFLOPs"
            )
            self.progress.update(
                self.task, completed=event.done, total=event.total, info=self.point
            )
        else:
            super().__call__(event)


def _run_sweep(cfg, study: Optional[str], storage: Optional[str]) -> None:
    import time

    from scaler import sweeps as W

    started = time.time()
    # Validate, create or check the study before the display starts: errors stay one line.
    prepared = W.prepare(cfg, study, storage)
    W.open_sweep_study(prepared)
    with _SweepDisplay() as display:
        st = W.run_worker(prepared, display)
    res = W.sweep_result(st, prepared.storage_url)
    _print_sweep(res)
    out.print(
        f"study {res.study_name} in {res.storage} · {len(res.frame)} trials · "
        f"{time.time() - started:.0f} s"
    )
    store = f" --storage '{res.storage}'" if storage else ""
    out.print(f"next: scaler plot {res.study_name}{store}")
    out.print(f"      scaler report {res.study_name}{store}")


def _print_sweep(res) -> None:
    table = Table(title=f"{res.study_name}: top-1 on the held-out split")
    for c in (
        "#",
        "series",
        "point",
        "d",
        "w",
        "r",
        "px",
        "layers",
        "params (M)",
        "MFLOPs*",
        "top-1 %",
        "time (s)",
        "status",
    ):
        table.add_column(c, justify="left" if c in ("series", "status") else "right")
    for _, r in res.points.iterrows():
        std = f" ± {r['top1_std']:.2f}" if (r["seeds"] or 1) > 1 else ""
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
            f"{r['top1_mean']:.2f}{std}",
            f"{(r['wall_time'] or 0):.0f}",
            r["status"] + (f" #{int(r['reused_from'])}" if r["status"] == "reused" else ""),
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


@sweep_app.command("width-by-baseline")
def sweep_width_by_baseline(
    widths: WidthsOpt = None,
    baselines: Annotated[
        Optional[str],
        typer.Option(help="Baselines D:R, comma-separated (default 1:1,1:1.3,2:1,2:1.3)."),
    ] = None,
    max_flops: MaxFlopsOpt = None,
    data: DataOpt = "embedded",
    proxy: ProxyOpt = "standard",
    seeds: SweepSeedsOpt = 1,
    study: StudyOpt = None,
    storage: StorageOpt = None,
    epochs: EpochsOpt = None,
    images: ImagesOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    base_pixels: BasePixelsOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Figure 1 (the paper's Figure 4): widths w for each baseline depth d and resolution r.

    One series per baseline (d, r), labelled "d=2.0, r=1.3"; defaults w = 1.0 ... 2.6 and
    (d, r) in (1, 1), (1, 1.3), (2, 1), (2, 1.3). r multiplies the proxy's base pixels. Running
    the same command again resumes; a higher --max-flops trains the points it now allows.

    Examples:

      scaler sweep width-by-baseline --proxy quick --max-flops 40M

      scaler sweep width-by-baseline --widths 1,1.8,2.6 --baselines 1:1,2:1.3 --seeds 2

      scaler plot sweep-width-by-baseline-embedded-quick-1a2b3c
    """
    from scaler import sweeps as W

    cfg = W.SweepConfig(
        kind="width-by-baseline",
        widths=W.parse_values("--widths", widths),
        baselines=W.parse_baselines(baselines),
        max_flops=W.parse_flops(max_flops),
        data=data,
        proxy=proxy,
        proxy_overrides=_overrides(
            epochs=epochs,
            images=images,
            batch_size=batch_size,
            lr=lr,
            base_pixels=base_pixels,
            threads=threads,
            device=device,
        ),
        seeds=seeds,
    )
    _run_sweep(cfg, study, storage)


@sweep_app.command("single")
def sweep_single(
    dim: Annotated[str, typer.Option(help="width | depth | resolution, comma-separated, or all.")],
    widths: WidthsOpt = None,
    depths: Annotated[
        Optional[str], typer.Option(help="Depths d, comma-separated (default 1,2,3,4,6,8).")
    ] = None,
    resolutions: Annotated[
        Optional[str],
        typer.Option(help="Resolutions r (× base pixels), comma-separated (default 1 ... 2.5)."),
    ] = None,
    max_flops: MaxFlopsOpt = None,
    data: DataOpt = "embedded",
    proxy: ProxyOpt = "standard",
    seeds: SweepSeedsOpt = 1,
    study: StudyOpt = None,
    storage: StorageOpt = None,
    epochs: EpochsOpt = None,
    images: ImagesOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    base_pixels: BasePixelsOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
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
    from scaler import sweeps as W

    dims = W.parse_dims(dim)
    cfg = W.SweepConfig(
        kind="single",
        dims=dims,
        widths=W.parse_values("--widths", widths),
        depths=W.parse_values("--depths", depths),
        resolutions=W.parse_values("--resolutions", resolutions),
        max_flops=W.parse_flops(max_flops),
        data=data,
        proxy=proxy,
        proxy_overrides=_overrides(
            epochs=epochs,
            images=images,
            batch_size=batch_size,
            lr=lr,
            base_pixels=base_pixels,
            threads=threads,
            device=device,
        ),
        seeds=seeds,
    )
    _run_sweep(cfg, study, storage)


@sweep_app.command("compound")
def sweep_compound(
    coefficients: Annotated[
        Path, typer.Option(help="Coefficients file written by `scaler export`.")
    ],
    phi_max: Annotated[int, typer.Option(help="Largest φ of the family (0..12).")] = 3,
    max_flops: MaxFlopsOpt = None,
    data: DataOpt = "embedded",
    proxy: ProxyOpt = "standard",
    seeds: SweepSeedsOpt = 1,
    study: StudyOpt = None,
    storage: StorageOpt = None,
    epochs: EpochsOpt = None,
    images: ImagesOpt = None,
    batch_size: BatchOpt = None,
    lr: LrOpt = None,
    base_pixels: BasePixelsOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
) -> None:
    """The compound family φ = 0..K of exported coefficients: d = α^φ, w = β^φ, r = γ^φ.

    r multiplies the proxy's base pixels, as in the search, so the line can be drawn with the
    single-dimension curves (`scaler plot COMPOUND SINGLE`).

    Examples:

      scaler sweep compound --coefficients coefficients.json --phi-max 3 --proxy quick

      scaler plot sweep-compound-embedded-quick-1a2b3c sweep-single-all-embedded-quick-4d5e6f
    """
    from scaler import sweeps as W

    cfg = W.SweepConfig(
        kind="compound",
        coefficients=str(coefficients),
        phi_max=phi_max,
        max_flops=W.parse_flops(max_flops),
        data=data,
        proxy=proxy,
        proxy_overrides=_overrides(
            epochs=epochs,
            images=images,
            batch_size=batch_size,
            lr=lr,
            base_pixels=base_pixels,
            threads=threads,
            device=device,
        ),
        seeds=seeds,
    )
    _run_sweep(cfg, study, storage)


@app.command()
def plot(
    studies: Annotated[list[str], typer.Argument(help="Study names (searches and sweeps).")],
    storage: Annotated[
        Optional[str], typer.Option(help="optuna storage URL (default: studies/NAME.db each).")
    ] = None,
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="Folder (default reports/FIRST-STUDY/).")
    ] = None,
) -> None:
    """Write PNG and SVG figures of searches and sweeps, and print their paths.

    All sweeps share one scaling figure (top-1 against measured FLOPs, one line per series),
    with each search's best candidate as a star; each search also gets its α–β map, accuracy
    against measured cost and optimisation history.

    Examples:

      scaler plot sweep-width-by-baseline-embedded-quick-1a2b3c

      scaler plot SEARCH SWEEP-SINGLE SWEEP-COMPOUND --out reports/compare
    """
    from scaler.plots import plot_studies

    for path in plot_studies(studies, storage, out_dir):
        out.print(f"wrote {path}")


@app.command()
def report(
    studies: Annotated[list[str], typer.Argument(help="Study names (searches and sweeps).")],
    storage: Annotated[
        Optional[str], typer.Option(help="optuna storage URL (default: studies/NAME.db each).")
    ] = None,
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="Folder (default reports/FIRST-STUDY/).")
    ] = None,
    phi_max: Annotated[int, typer.Option(help="Largest φ of a search's family table.")] = 7,
) -> None:
    """Write README.md (configuration, results, findings), trials.csv and the figures.

    The findings are computed: given a search and single-dimension sweeps, the report says
    whether the compound point beat every single dimension at equal measured FLOPs, and by how
    much against the noise floor.

    Examples:

      scaler report search-embedded-2x-quick-1a2b3c

      scaler report SEARCH SWEEP-SINGLE --out reports/compound-vs-single
    """
    from scaler.report import write_report_files

    for path in write_report_files(studies, storage, out_dir, phi_max):
        out.print(f"wrote {path}")


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------


def _error(message: str) -> None:
    sys.stderr.write("Error: " + " ".join(str(message).split()) + "\n")


def _is_usage_error(e: BaseException) -> bool:
    # click's UsageError family; typer >= 0.2x vendors click, so match by name, not by import.
    return any(c.__name__ == "UsageError" for c in type(e).__mro__) and hasattr(e, "format_message")


def _run_failures() -> tuple[type[Exception], ...]:
    # Imported only once something failed: torch stays out of `scaler --help`.
    from scaler.train import TrainError
    from scaler.workers import WorkerError

    return (TrainError, WorkerError)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args or ["--help"], prog_name="scaler", standalone_mode=False)
    except KeyboardInterrupt:
        err.print("Interrupted.")
        return 130
    except ValueError as e:
        _error(str(e))
        return 2
    except _run_failures() as e:  # a run that failed, not bad input
        _error(str(e))
        return 1
    except Exception as e:
        if _is_usage_error(e):
            _error(e.format_message())
            return 2
        if type(e).__name__ == "Abort":
            err.print("Interrupted.")
            return 130
        raise
    return result if isinstance(result, int) else 0
