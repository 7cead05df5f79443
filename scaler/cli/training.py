"""``scaler train`` and ``scaler bench``: one proxy run; the trainer against a naive loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from scaler.cli.common import (
    DataOpt,
    EpochBar,
    ProxyOpt,
    err,
    jsonable,
    out,
    print_json,
    proxy_options,
)

TRAIN_OVERRIDES = (
    "epochs",
    "images",
    "batch_size",
    "lr",
    "optimizer",
    "base_pixels",
    "threads",
    "device",
    "compile",
    "seed",
)


@proxy_options(*TRAIN_OVERRIDES)
def train(
    preset: Annotated[Optional[str], typer.Option(help="Official member b0..b7.")] = None,
    depth: Annotated[Optional[float], typer.Option(help="Depth multiplier d (> 0).")] = None,
    width: Annotated[Optional[float], typer.Option(help="Width multiplier w (> 0).")] = None,
    resolution: Annotated[
        Optional[int], typer.Option(help="Input size in pixels; default: the proxy base size.")
    ] = None,
    data: DataOpt = "embedded",
    proxy: ProxyOpt = "standard",
    json_out: Annotated[
        Optional[Path], typer.Option("--json", help="Also write the metrics to this JSON file.")
    ] = None,
    *,
    overrides: tuple = (),
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
    from scaler.files import check_out_file, write_atomic
    from scaler.scaling import network_spec
    from scaler.train import proxy_config, run_metrics
    from scaler.train import train as train_fn

    cfg = proxy_config(proxy, **dict(overrides))
    if json_out is not None:
        check_out_file(json_out, "--json")
    spec = network_spec(preset, depth, width, resolution, cfg.base_pixels)
    source = parse_data(data)
    cost = count(spec, source.num_classes)
    out.print(
        f"training {spec.describe()} on {source.name} ({source.num_classes} classes), "
        f"{cost.params / 1e6:.2f} M params, {cost.flops / 1e6:.1f} MFLOPs*"
    )
    with EpochBar() as bar:
        result = train_fn(spec, source, cfg, progress=bar.update)
    out.print(
        f"top-1 {result.top1:.2f} % · top-5 {result.top5:.2f} % · "
        f"{result.images_per_s:,.0f} img/s · {result.wall_time:.1f} s on {result.device}"
    )
    out.print("* fvcore: one multiply-add = one flop")
    if json_out is not None:
        metrics = run_metrics(result, spec, cost, source.name, cfg)
        write_atomic(json_out, json.dumps(metrics, indent=2, default=jsonable) + "\n")
        out.print(f"wrote {json_out}")


@proxy_options("batch_size", "base_pixels", "threads", "device")
def bench(
    preset: Annotated[str, typer.Option(help="Model preset b0..b7.")] = "b0",
    data: DataOpt = "embedded",
    proxy: ProxyOpt = "standard",
    rounds: Annotated[int, typer.Option(help="Alternating rounds of each loop (1..20).")] = 3,
    images: Annotated[
        Optional[int], typer.Option(help="Timed images per round (default: the trainer's).")
    ] = None,
    workers: Annotated[
        Optional[int], typer.Option(help="DataLoader workers of the reference loop.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    *,
    overrides: tuple = (),
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
    from scaler.bench import bench as bench_fn
    from scaler.data import parse_data
    from scaler.spec import preset as preset_fn
    from scaler.train import proxy_config

    if not 1 <= rounds <= 20:
        raise ValueError(f"--rounds {rounds} is invalid: it must be in 1..20")
    cfg = proxy_config(proxy, **dict(overrides))
    spec = preset_fn(preset, cfg.base_pixels)
    source = parse_data(data)
    with err.status("benchmarking ..."):
        r = bench_fn(spec, source, cfg, rounds, images=images, workers=workers)
    if as_json:
        print_json(r)
        return
    table = Table(
        title=f"scaler bench: {r.model}, {r.pixels} px, batch {r.batch_size}, "
        f"{r.device}, {r.threads} threads"
    )
    for c in ("loop", "img/s (median)", "rounds"):
        table.add_column(c, justify="right")
    scaler_rounds = " ".join(f"{x:,.0f}" for x in r.scaler_rounds)
    table.add_row("scaler", f"{r.scaler_images_per_s:,.0f}", scaler_rounds)
    table.add_row(
        f"reference ({r.workers} workers)",
        f"{r.reference_images_per_s:,.0f}",
        " ".join(f"{x:,.0f}" for x in r.reference_rounds),
    )
    out.print(table)
    out.print(f"ratio {r.ratio:.2f}x")
