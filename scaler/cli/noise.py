"""``scaler noise``: where a run's noise comes from, training or the evaluation draw."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from scaler.cli.common import (
    ARGV,
    DATA_DEFAULT,
    STUDY_PROXY,
    DataOpt,
    DryRunOpt,
    JsonOpt,
    PerGpuOpt,
    ProxyOpt,
    StorageOpt,
    StudyOpt,
    TimeOpt,
    UpsampleOpt,
    WorkersOpt,
    proxy_options,
)
from scaler.cli.training import run_paired

NETWORKS_HELP = (
    "Networks, comma-separated: b0..b7 (at their own resolution multiplier of the proxy's base "
    "pixels) or d=DEPTH:w=WIDTH:px=PIXELS (r=MULTIPLIER instead of px; d and w default to 1, "
    "the size to the base)."
)


MethodsOpt = Annotated[
    bool,
    typer.Option(
        "--methods",
        help="Also score every run every other way (averaged weights, flip TTA) and compare "
        "each scoring's noise on the same runs (methods.csv).",
    ),
]


@proxy_options(*STUDY_PROXY, "seed")
def noise(
    networks: Annotated[str, typer.Option(help=NETWORKS_HELP)],
    seeds: Annotated[int, typer.Option(help="Paired seeds per network (>= 6).")] = 6,
    data: DataOpt = DATA_DEFAULT,
    upsample: UpsampleOpt = None,
    proxy: ProxyOpt = "standard",
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="Write runs.csv and README.md here.")
    ] = None,
    methods: MethodsOpt = False,
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
    """Where does a run's noise come from? Splits its variance into training and evaluation.

    Paired seeds (seed k = --seed + k); each run scored on val and test, whose difference holds
    no training noise. Reports σ of one run's val top-1 split into training and evaluation
    parts with their df, and the same for the paired difference between networks. Resumable.

    Examples:

      scaler noise --networks b0,d=1:w=1.2:px=56 --threads 1 --out reports/noise

      scaler noise --networks b0,b1 --seeds 8 --seed 100 --workers 2

      scaler noise --networks b0,d=1:w=1.2:px=56 --seed 200 --threads 1 --methods
    """
    from scaler import noise as N
    from scaler.findings_noise import report_text
    from scaler.studies import mask_url

    cfg = N.NoiseConfig(
        networks=N.parse_networks(networks),
        seeds=seeds,
        data=data,
        upsample=upsample,
        proxy=proxy,
        proxy_overrides=overrides,
        methods=methods,
    )
    command = shlex.join(["scaler", *(mask_url(a) for a in ARGV)])
    run_paired(
        N,
        cfg,
        (study, storage, workers, workers_per_gpu, time_budget, dry_run),
        (
            out_dir,
            "runs.csv, " + ("methods.csv, " if methods else "") + "README.md",
            lambda res, folder: N.write_report(res, folder, command),
        ),
        as_json,
        lambda res: report_text(res, command),
    )
