"""``scaler latency``: a search's trained candidates timed again, against its latency budget;
and the ``--measure-latency`` option that ``scaler family`` and ``scaler export`` share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from scaler.cli.common import JsonOpt, StorageOpt, out, print_json

MeasureLatencyOpt = Annotated[
    Optional[str],
    typer.Option(
        help="Time each member against φ = 0 on --device: batch1 | batchN | train-step "
        "(scaler.latency; median of alternated runs)."
    ),
]
DeviceOpt = Annotated[
    Optional[str], typer.Option(help="Device that --measure-latency times on (default auto).")
]


def latency_settings(mode: str | None, device: str | None):
    """The settings of ``--measure-latency MODE`` on ``--device`` (None: not measured)."""
    if mode is None:
        if device is not None:
            raise ValueError(f"--device {device} is invalid without --measure-latency MODE")
        return None
    from scaler.device import check_device
    from scaler.latency import LatencySettings, parse_mode

    check_device(device)
    return LatencySettings(mode=parse_mode(mode, "--measure-latency"), device=device or "auto")


def latency(
    study: Annotated[str, typer.Argument(help="A search study.")],
    storage: StorageOpt = None,
    out_file: Annotated[
        Optional[Path], typer.Option("--out", help="Also write the rows here (CSV).")
    ] = None,
    device: Annotated[
        Optional[str], typer.Option(help="Time on this device (default: the search's).")
    ] = None,
    as_json: JsonOpt = False,
) -> int:
    """Time every trained candidate of a search again, in this process, against its budget.

    The check of --constraint latency: each candidate's latency at its cost pixels, timed in
    alternation with the base's, within ±10 % of the budget × the base's. Exit 0 when every
    candidate is, 1 when one is not (a FLOPs-budget search: exit 0, its latencies shown).

    Examples:

      scaler latency search-embedded-2x-standard-1a2b3c --out latency-check.csv
    """
    from scaler.files import check_out_file, write_atomic
    from scaler.latency_runs import remeasure

    if device is not None:
        from scaler.device import check_device

        check_device(device)
    target = check_out_file(out_file) if out_file is not None else None
    check = remeasure(study, storage, device=device)
    frame = check.frame()
    if target is not None:
        write_atomic(target, frame.to_csv(index=False))
    if as_json:
        print_json({"verdict": check.verdict(), "met": check.met, "rows": frame.to_dict("records")})
    else:
        _print_check(check)
    return 0 if check.met else 1


def _print_check(check) -> None:
    how = f"{check.settings.describe()}, {check.machine}"
    table = Table(title=f"{check.study}: latency timed again ({how})")
    cols = ("#", "role", "α", "β", "px", "FLOPs ×", "searched ×", "again ×", "95 %", "miss")
    for c in cols:
        table.add_column(c, justify="right")
    for r in check.rows:
        table.add_row(
            str(r.number),
            r.role,
            f"{r.alpha:.3f}",
            f"{r.beta:.3f}",
            str(r.cost_pixels),
            "" if r.flops_ratio is None else f"{r.flops_ratio:.3f}",
            "" if r.searched is None else f"{r.searched:.3f}",
            f"{r.ratio:.3f}",
            f"{r.low:.3f}–{r.high:.3f}",
            f"{r.miss:+.1%}",
        )
    out.print(table)
    out.print(check.verdict() + ".", markup=False)
