"""``scaler plot`` and ``scaler report``: figures and the markdown report of stored studies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from scaler.cli.common import out

StudiesArg = Annotated[list[str], typer.Argument(help="Study names (searches and sweeps).")]
StorageOpt = Annotated[
    Optional[str],
    typer.Option(help="optuna storage URL (default: $SCALER_STORAGE, else studies/NAME.db each)."),
]
OutDirOpt = Annotated[
    Optional[Path], typer.Option("--out", help="Folder (default reports/FIRST-STUDY/).")
]


def plot(studies: StudiesArg, storage: StorageOpt = None, out_dir: OutDirOpt = None) -> None:
    """Write PNG and SVG figures of searches and sweeps, and print their paths.

    All sweeps share one scaling figure (top-1 against measured FLOPs, one line per series),
    with each search's best candidate as a star; each search also gets its α–β map, accuracy
    against measured cost and optimisation history.

    Examples:

      scaler plot sweep-width-by-baseline-embedded-quick-1a2b3c

      scaler plot SEARCH SWEEP-SINGLE SWEEP-COMPOUND --out reports/compare
    """
    from scaler.report import plot_studies

    for path in plot_studies(studies, storage, out_dir):
        out.print(f"wrote {path}")


def report(
    studies: StudiesArg,
    storage: StorageOpt = None,
    out_dir: OutDirOpt = None,
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
