"""``scaler train`` and ``scaler bench``: one proxy run; the trainer against a naive loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from scaler.cli.common import (
    DATA_DEFAULT,
    STUDY_PROXY,
    BaseOpt,
    DataOpt,
    DryRunOpt,
    EpochBar,
    JsonOpt,
    PerGpuOpt,
    ProxyOpt,
    StorageOpt,
    StudyOpt,
    TimeOpt,
    UpsampleOpt,
    WorkersOpt,
    base_option,
    err,
    jsonable,
    out,
    print_json,
    proxy_options,
    run_kind,
)
from scaler.proxy import resolve_proxy

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
    "zero_init",
    "cuda_batch_size",
)


@proxy_options(*TRAIN_OVERRIDES)
def train(
    preset: Annotated[Optional[str], typer.Option(help="Official member b0..b7.")] = None,
    depth: Annotated[Optional[float], typer.Option(help="Depth multiplier d (> 0).")] = None,
    width: Annotated[Optional[float], typer.Option(help="Width multiplier w (> 0).")] = None,
    resolution: Annotated[
        Optional[float],
        typer.Option(help="Resolution multiplier r (> 0) of the proxy's base pixels."),
    ] = None,
    pixels: Annotated[
        Optional[int], typer.Option(help="Input size in pixels (default: the proxy's base).")
    ] = None,
    data: DataOpt = DATA_DEFAULT,
    upsample: UpsampleOpt = None,
    proxy: ProxyOpt = "standard",
    base: BaseOpt = None,
    as_json: JsonOpt = False,
    out_file: Annotated[
        Optional[Path], typer.Option("--out", help="Also write the metrics to this JSON file.")
    ] = None,
    *,
    overrides: tuple = (),
) -> None:
    """Train one network on a short proxy run and print held-out top-1/top-5.

    Multipliers: --depth, --width, --resolution (r × the proxy's base pixels); or give the
    input size itself with --pixels. Presets scale the proxy's base size by their official
    resolution multiplier (b1: 240/224 of it).

    Examples:

      scaler train --preset b0

      scaler train --depth 1.2 --width 1.1 --pixels 37 --proxy quick --out run.json

      scaler train --preset b0 --data imagefolder:photos/ --base-pixels 64 --json

      scaler train --base mobilenetv2 --width 0.5 --proxy quick
    """
    from scaler.data import DEFAULT_UPSAMPLE, parse_data
    from scaler.device import check_device
    from scaler.files import check_out_file
    from scaler.scaling import network_spec

    settings = resolve_proxy(proxy, overrides)
    check_device(settings.device)
    if out_file is not None:
        check_out_file(out_file)
    spec = network_spec(
        preset,
        depth,
        width,
        pixels,
        settings.base_pixels,
        resolution=resolution,
        base=base_option(base),
    )
    source = parse_data(data, upsample=upsample or DEFAULT_UPSAMPLE)
    _train_and_report(spec, source, settings, as_json, out_file)


def _train_and_report(spec, source, settings, as_json: bool, out_file: Path | None) -> None:
    """Train ``spec`` once with the proxy ``settings``; print (or --json) and write its metrics."""
    from scaler.complexity import count
    from scaler.files import write_atomic
    from scaler.train import run_metrics
    from scaler.train import train as train_fn

    cost = count(spec, source.num_classes)
    say = err.print if as_json else out.print  # --json: stdout holds the JSON alone
    note = source.describe_images(spec.pixels, spec.pixels)
    if note:
        say(note, markup=False)
    say(
        f"training {_named(spec)}{spec.describe()} on {source.name} "
        f"({source.num_classes} classes), "
        f"{cost.params / 1e6:.2f} M params, {cost.flops / 1e6:.1f} MFLOPs*"
    )
    with EpochBar() as bar:
        result = train_fn(spec, source, settings, progress=bar.update)
    metrics = run_metrics(result, spec, cost, source.name, settings)
    if spec.base.name != "efficientnet-b0":
        metrics = {"base": spec.base.name, **metrics}
    if out_file is not None:
        write_atomic(out_file, json.dumps(metrics, indent=2, default=jsonable) + "\n")
    if as_json:
        print_json(metrics)
        return
    out.print(
        f"top-1 {result.top1:.2f} % · top-5 {result.top5:.2f} % · "
        f"{result.images_per_s:,.0f} img/s · {result.wall_time:.1f} s on {result.device}"
    )
    out.print("* fvcore: one multiply-add = one flop")
    if out_file is not None:
        out.print(f"wrote {out_file}")


def _named(spec) -> str:
    """The base's name before the multipliers ("" for EfficientNet-B0, as before bases)."""
    return "" if spec.base.name == "efficientnet-b0" else f"{spec.base.label} "


@proxy_options("batch_size", "base_pixels", "threads", "device")
def bench(
    preset: Annotated[str, typer.Option(help="Model preset b0..b7.")] = "b0",
    data: DataOpt = DATA_DEFAULT,
    upsample: UpsampleOpt = None,
    proxy: ProxyOpt = "standard",
    rounds: Annotated[int, typer.Option(help="Alternating rounds of each loop (1..20).")] = 3,
    images: Annotated[
        Optional[int], typer.Option(help="Timed images per round (default: the trainer's).")
    ] = None,
    workers: Annotated[
        Optional[int], typer.Option(help="DataLoader workers of the reference loop.")
    ] = None,
    as_json: JsonOpt = False,
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
    from scaler.data import DEFAULT_UPSAMPLE, parse_data
    from scaler.device import check_device
    from scaler.spec import preset as preset_fn

    if not 1 <= rounds <= 20:
        raise ValueError(f"--rounds {rounds} is invalid: it must be in 1..20")
    settings = resolve_proxy(proxy, overrides)
    check_device(settings.device)
    spec = preset_fn(preset, settings.base_pixels)
    source = parse_data(data, upsample=upsample or DEFAULT_UPSAMPLE)
    with err.status("benchmarking ..."):
        r = bench_fn(spec, source, settings, rounds, images=images, workers=workers)
    if as_json:
        print_json(r)
        return
    title = f"{r.model}, {r.pixels} px, batch {r.batch_size}, {r.device}, {r.threads} threads"
    table = Table(title=f"scaler bench: {title}")
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
    out.print(f"cpu: {r.cpu}", markup=False)  # speed differs several times between CPUs


@proxy_options(*STUDY_PROXY, "seed")
def calibrate(
    members: Annotated[
        str, typer.Option(help="Official members to train, comma-separated (b0..b7).")
    ] = "b0,b1,b2,b3",
    seeds: Annotated[int, typer.Option(help="Paired seeds per member (>= 2).")] = 3,
    data: DataOpt = DATA_DEFAULT,
    upsample: UpsampleOpt = None,
    proxy: ProxyOpt = "standard",
    out_dir: Annotated[
        Optional[Path],
        typer.Option("--out", help="Write calibration.json, runs.csv and README.md here."),
    ] = None,
    as_json: JsonOpt = False,
    study: StudyOpt = None,
    storage: StorageOpt = None,
    workers: WorkersOpt = None,
    workers_per_gpu: PerGpuOpt = None,
    time_budget: TimeOpt = None,
    dry_run: DryRunOpt = False,
    *,
    overrides: tuple = (),
) -> None:
    """Does the proxy order B0..B3 as ImageNet does? Kendall τ against the paper's Table 2.

    Each member trains at its own resolution multiplier of the proxy's base size, with the same
    paired seeds; τ is averaged over seeds, with its exact permutation p (and a paired bootstrap
    interval from 5 seeds on). Every run is a trial of an optuna study: the same command again
    resumes (training only the runs missing).

    Examples:

      scaler calibrate --out reports/calibration

      scaler calibrate --members b0,b2 --seeds 2 --proxy quick --workers 2
    """
    from scaler import calibrate as C
    from scaler.findings_calibration import report_text

    cfg = C.CalibrationConfig(
        members=tuple(m.strip().lower() for m in members.split(",") if m.strip()),
        seeds=seeds,
        data=data,
        upsample=upsample,
        proxy=proxy,
        proxy_overrides=overrides,
    )
    run_paired(
        C,
        cfg,
        (study, storage, workers, workers_per_gpu, time_budget, dry_run),
        (out_dir, "calibration.json, runs.csv, README.md", C.write_report),
        as_json,
        report_text,
    )


def run_paired(kind, cfg, where: tuple, files: tuple, as_json: bool, text) -> None:
    """What every command of paired runs does (calibrate, noise): check everything, run or
    resume the study, then write ``files`` = (folder, their names, write(result, folder)) and
    print ``text(result)`` (or the result's JSON). ``where`` = (study, storage, workers, K,
    --time, --dry-run)."""
    from scaler.files import check_out_dir
    from scaler.studies import mask_url
    from scaler.workers import check_workers

    study, storage, workers, workers_per_gpu, time_budget, dry_run = where
    out_dir, names, write = files
    check_workers(workers, workers_per_gpu)  # bad values fail before any file is written
    prepared = kind.prepare(cfg, study, storage)  # every check before any training
    if out_dir is not None:
        check_out_dir(out_dir)
    res = run_kind(
        kind,
        prepared,
        workers,
        workers_per_gpu,
        describe_run,
        time_budget=time_budget,
        dry_run=dry_run,
        as_json=as_json,
    )
    if out_dir is not None:
        write(res, out_dir)
    if as_json:
        print_json(res.to_dict())
        return
    out.print(text(res), markup=False, soft_wrap=True)
    if out_dir is not None:
        out.print(f"wrote {out_dir}/{names}")
    out.print(f"study {prepared.study_name} in {mask_url(prepared.storage_url)}")


def describe_run(event) -> str:
    """The calibration run a trial_start event names."""
    info = event.info
    return f"#{event.trial} {info['member']} seed {info['seed_index']} ({info['pixels']} px)"
