"""The ``scaler`` command line: thin typer commands over the library, one module per group.

``networks`` (info, family, build) · ``training`` (train, bench) · ``studies`` (search, export,
studies) · ``latency`` · ``sweeps`` (the sweep group) · ``reports`` (plot, report); ``common``
holds the options and displays they share. Every command calls library functions and formats their
result (rich tables, or JSON with ``--json``). Bad input raises ``ValueError`` in the library;
:func:`main` turns it, and click's own usage errors, into one line on stderr and exit code 2,
with no traceback. A failed run exits 1; worker processes that died leaving work undone exit 3
(:class:`scaler.workers.WorkerError`), so a script knows to run the same command again.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from scaler import __version__
from scaler.cli import common, latency, networks, noise, reports, studies, sweeps, training
from scaler.cli.common import err, new_app

app = new_app("Compound model scaling (EfficientNet): build, count, search, plot, export.")
app.info.name = "scaler"
for command in (
    networks.info,
    networks.family,
    networks.build,
    training.train,
    training.bench,
    training.calibrate,
    noise.noise,
    studies.search,
    studies.confirm,
    studies.export,
    studies.studies,
    latency.latency,
):
    app.command()(command)
app.add_typer(sweeps.app, name="sweep")
app.command()(reports.plot)
app.command()(reports.report)


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


# Options promised "for one release" in 0.1–0.3 and removed in 0.6: command → {old: new}.
REMOVED = {
    "info": {"--base-resolution": "--cost-pixels"},
    "family": {"--base-resolution": "--cost-pixels"},
    "search": {"--cost-resolution": "--cost-pixels"},
}


def _refuse_removed(args: list[str]) -> None:
    """A one-line ValueError for an option removed in 0.6, naming its replacement, before
    typer parses anything (so nothing runs and nothing is created)."""
    command, rest = (args[0], args[1:]) if args else ("", [])
    for i, arg in enumerate(rest):
        if arg == "--":
            return
        name = arg.split("=", 1)[0]
        if name in REMOVED.get(command, {}):
            raise ValueError(f"{name} was removed in 0.6: use {REMOVED[command][name]}")
        # `train --json FILE` wrote a file before --json meant "print JSON" (a flag now).
        value = rest[i + 1] if i + 1 < len(rest) else "-"
        if command == "train" and arg == "--json" and not value.startswith("-"):
            raise ValueError(
                f"--json {value} was removed in 0.6: use --out {value} (--json alone prints "
                "the metrics as JSON)"
            )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    common.ARGV[:] = args
    common.INTERRUPT_SAID[0] = False
    command = typer.main.get_command(app)
    try:
        _refuse_removed(args)
        result = command.main(args=args or ["--help"], prog_name="scaler", standalone_mode=False)
    except KeyboardInterrupt:  # typer turns it into Exit(130) or Abort; kept for other versions
        _interrupted()
        return 130
    except ValueError as e:
        _error(str(e))
        return 2
    except _run_failures() as e:  # a run that failed, or workers that left work undone
        _error(str(e))
        return getattr(e, "exit_code", 1)
    except Exception as e:
        if _is_usage_error(e):
            _error(e.format_message())
            return 2
        if type(e).__name__ == "Abort":
            _interrupted()
            return 130
        raise
    if result == 130:
        _interrupted()
    return result if isinstance(result, int) else 0


def _interrupted() -> None:
    """Say "Interrupted." unless the command already said what Ctrl-C left behind."""
    if not common.INTERRUPT_SAID[0]:
        err.print("Interrupted.")
