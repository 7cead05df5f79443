"""What every command group shares: consoles, JSON output, shared options, progress displays.

The proxy override options (``--epochs``, ``--lr``, ``--threads``, ...) are declared once, in
:data:`PROXY_OPTIONS`; :func:`proxy_options` adds the ones a command takes to its signature and
hands it their values as one tuple of overrides.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Final, Optional

import typer
import typer.core
from rich.console import Console

from scaler.runner import LineProgress

# Piped output keeps full-width tables instead of rich's 80-column fallback.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def _flag_type(display: Callable[..., str | None]):
    """typer prints ``<bool>`` after every flag (``--json <bool>``), which reads as if the flag
    took a value; a flag shows no type."""

    def display_type_rich(self, ctx) -> str | None:
        if getattr(self, "is_flag", False):
            return None
        return display(self, ctx)

    return display_type_rich


if hasattr(typer.core.TyperOption, "display_type_rich"):  # typer >= 0.2x; older ones show none
    typer.core.TyperOption.display_type_rich = _flag_type(typer.core.TyperOption.display_type_rich)


def base_option(text: str | None):
    """The :class:`~scaler.bases.Base` ``--base`` names, or None when it was not given."""
    from scaler.bases import get_base

    return None if text is None else get_base(text)


def print_json(payload: object) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=jsonable) + "\n")


def jsonable(value: object):
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def new_app(help_text: str | None = None) -> typer.Typer:
    """A typer app (or command group) with scaler's settings."""
    named = {"help": help_text} if help_text else {}  # else the callback's docstring
    return typer.Typer(
        **named,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
    )


# ----------------------------------------------------------------------------------------------
# options shared by several commands
# ----------------------------------------------------------------------------------------------

# scaler.data.DEFAULT_DATA, spelled here so that --help imports no torch (tests/test_data.py
# checks that the two agree).
DATA_DEFAULT: Final = "fashion"

# name → (type, typer option) of the options several commands share.
SHARED_OPTIONS: dict[str, tuple[Any, Any]] = {
    "data": (
        str,
        typer.Option(
            help="Data: fashion[:KEY=VALUE,...] (default: Fashion-MNIST shipped with scaler), "
            "embedded[:KEY=VALUE,...] (0.6's default photographs; embedded:tiles=1 is 0.4's), "
            "fractal[:KEY=VALUE,...], imagefolder:PATH, cifar10:PATH, cifar100:PATH."
        ),
    ),
    "upsample": (
        Optional[str],
        typer.Option(
            help="Images smaller than the proxy's input: bilinear (default for a new study) | "
            "bicubic | off (refuse). A resumed study keeps its own."
        ),
    ),
    "proxy": (str, typer.Option(help="Proxy preset: quick | standard | long.")),
    "study": (Optional[str], typer.Option(help="Study name (default: derived).")),
    "storage": (
        Optional[str],
        typer.Option(
            help="optuna storage URL (default: $SCALER_STORAGE, else sqlite:///studies/NAME.db)."
        ),
    ),
    "workers": (
        Optional[int],
        typer.Option(
            help="Worker processes here (default: several per CUDA GPU, by memory; else 1). "
            "A worker that dies is named in one line; exit code 3 only if work is left undone."
        ),
    ),
    "workers_per_gpu": (
        Optional[int],
        typer.Option(help="Trials each CUDA GPU trains at once (instead of --workers)."),
    ),
}
BaseOpt = Annotated[
    Optional[str],
    typer.Option(
        "--base",
        help="Base network: efficientnet-b0 (default), mobilenetv2, resnet50, resnet18, or a "
        "stage table FILE.yaml.",
    ),
]
DataOpt = Annotated[str, SHARED_OPTIONS["data"][1]]
UpsampleOpt = Annotated[Optional[str], SHARED_OPTIONS["upsample"][1]]
ProxyOpt = Annotated[str, SHARED_OPTIONS["proxy"][1]]
StudyOpt = Annotated[Optional[str], SHARED_OPTIONS["study"][1]]
StorageOpt = Annotated[Optional[str], SHARED_OPTIONS["storage"][1]]
WorkersOpt = Annotated[Optional[int], SHARED_OPTIONS["workers"][1]]
PerGpuOpt = Annotated[Optional[int], SHARED_OPTIONS["workers_per_gpu"][1]]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TimeOpt = Annotated[
    Optional[str],
    typer.Option(
        "--time",
        help="Time budget (90s, 20m, 1h): no run starts that cannot end in time; the same "
        "command with more time trains the rest.",
    ),
]
# The default search keeps to the 20-minute goal on the machine that runs it (its plan says
# what fits); "off" (any command) trains everything however long it takes.
SEARCH_TIME: Final = "20m"
NO_BUDGET: Final = "off"
SearchTimeOpt = Annotated[
    str,
    typer.Option(
        "--time",
        help="Time budget (90s, 20m, 1h; 'off': none): no run starts that cannot end in time; "
        "the same command with more time trains the rest.",
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print the plan (runs, time, resolution) and stop.")
]

# name → (type, help) of every proxy override a command may take.
PROXY_OPTIONS: dict[str, tuple[Any, Any]] = {
    "epochs": (Optional[int], typer.Option(help="Override: training epochs.")),
    "images": (Optional[int], typer.Option(help="Override: training images seen.")),
    "batch_size": (Optional[int], typer.Option(help="Override: batch size.")),
    "lr": (Optional[float], typer.Option(help="Override: peak learning rate.")),
    "optimizer": (Optional[str], typer.Option(help="Override: sgd | adamw | rmsprop.")),
    "base_pixels": (
        Optional[int],
        typer.Option(help="Override: the proxy's input size for the base (B0)."),
    ),
    "threads": (Optional[int], typer.Option(help="CPU threads (default: torch's).")),
    "device": (Optional[str], typer.Option(help="auto | cpu | cuda | cuda:N | mps.")),
    "compile": (bool, typer.Option("--compile", help="Use torch.compile.")),
    "seed": (Optional[int], typer.Option(help="Override: the proxy's first seed.")),
    "zero_init": (
        Optional[bool],
        typer.Option(
            "--zero-init/--no-zero-init",
            help="Override: start residual branches at zero (on in proxy runs).",
        ),
    ),
    "cuda_batch_size": (
        Optional[int],
        typer.Option(help="Override: batch size on CUDA (the lr scales with it linearly)."),
    ),
    "average": (
        Optional[str],
        typer.Option(help="Override: score none | swa | ema averaged weights (docs/proxy.md)."),
    ),
    "tta": (Optional[str], typer.Option(help="Override: test-time augmentation none | flip.")),
    "min_steps": (
        Optional[int],
        typer.Option(
            help="Fewest SGD steps of a proxy run on your data; a small train split is trained "
            "longer to reach it (default 80, the standard proxy on the embedded data; quick: 0)."
        ),
    ),
}
# The overrides of the commands that run studies.
STUDY_PROXY = ("epochs", "images", "batch_size", "lr", "base_pixels", "threads", "device")
STUDY_PROXY += ("zero_init", "cuda_batch_size", "average", "tta")


def extend(fn, extra: dict[str, tuple[Any, Any, Any]], combine, hide: tuple[str, ...] = ()):
    """``fn`` as a command with the options ``extra`` (name → (type, typer option, default))
    added to its signature and its parameters ``hide`` taken out of it; the added options'
    values reach ``fn`` through ``combine(values, kwargs) -> kwargs``.
    """
    sig = inspect.signature(fn, eval_str=True)
    params = [p for p in sig.parameters.values() if p.name not in hide]
    for name, (kind, option, default) in extra.items():
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[kind, option],
            )
        )

    @functools.wraps(fn)
    def command(**kwargs):
        values = {n: kwargs.pop(n) for n in extra}
        return fn(**combine(values, kwargs))

    del command.__wrapped__  # typer must read the signature below, not fn's
    command.__signature__ = sig.replace(parameters=params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def proxy_options(*names: str):
    """Give the decorated command the proxy override options ``names`` (default: a study's).

    The command receives them as one keyword, ``overrides``: the (field, value) pairs that
    were given, in a stable order.
    """
    chosen = {}
    for name in names or STUDY_PROXY:
        kind, option = PROXY_OPTIONS[name]
        chosen[name] = (kind, option, False if kind is bool else None)

    def combine(values: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        # A flag's False is its default (not given); an --x/--no-x option's False was asked for.
        given = tuple(
            (n, v)
            for n, v in values.items()
            if v is not None and not (v is False and chosen[n][2] is False)
        )
        return {**kwargs, "overrides": given}

    return lambda fn: extend(fn, chosen, combine, hide=("overrides",))


# ----------------------------------------------------------------------------------------------
# progress displays
# ----------------------------------------------------------------------------------------------


class EpochBar:
    """A rich progress bar fed by the trainer's progress hook (plain lines when not a terminal)."""

    def __init__(self):
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.lines = not err.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=self.lines,
        )
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        self.task = self.progress.add_task("epoch", total=None, info="")
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def update(self, epoch, epochs, loss, images_per_s):
        info = f"loss {loss:.3f} · {images_per_s:,.0f} img/s"
        if self.lines:
            err.print(f"epoch {epoch}/{epochs}: {info}", markup=False)
            return
        self.progress.update(
            self.task,
            completed=epoch,
            total=epochs,
            description=f"epoch {epoch}/{epochs}",
            info=info,
        )


def describe_candidate(event) -> str:
    """The search candidate a trial_start event names."""
    info = event.info
    return (
        f"#{event.trial} {info['role']} α={info['alpha']:.3f} "
        f"β={info['beta']:.3f} γ={info['gamma']:.3f} {info['pixels']}px"
    )


class StudyDisplay:
    """Progress of a study on a terminal: trial k of N, the current point, images/s, ETA."""

    def __init__(self, describe: Callable[[Any], str] = describe_candidate):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.describe = describe
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
        self.task = self.progress.add_task("study", total=None, info="starting")
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def __call__(self, event) -> None:
        info = event.info
        if event.kind == "trial_start":
            self.point = self.describe(event)
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
        elif event.kind == "note":
            self.progress.console.print(info["line"], markup=False, soft_wrap=True)


def study_progress(describe: Callable[[Any], str] = describe_candidate):
    """A live display on a terminal, one line per trial start and end elsewhere."""
    return StudyDisplay(describe) if err.is_terminal else LineProgress(describe)


def run_kind(
    kind,
    prepared,
    workers: int | None = None,
    per_gpu: int | None = None,
    describe: Callable[[Any], str] = describe_candidate,
    *,
    time_budget: str | None = None,
    dry_run: bool = False,
    as_json: bool = False,
    warn: Callable[[], None] | None = None,
):
    """Run a prepared study of any kind (:class:`scaler.runner.StudyKind`) and return its result.

    The plan (:mod:`scaler.plan`) is printed first; ``dry_run`` stops there (exit 0, nothing
    created). The study is created (or checked) before the display starts, so its errors stay
    one line; one worker shows a live display, several run as processes (``--workers``,
    ``--workers-per-gpu``); ``time_budget`` (``--time``) starts no run that cannot end in time
    (:mod:`scaler.budget`); Ctrl-C says what the study kept and how to resume. With
    ``as_json`` the plan and the time go to stderr: stdout holds the JSON alone.
    """
    import time

    from scaler import budget, plan
    from scaler.runner import run_study
    from scaler.workers import check_workers

    if time_budget is not None and time_budget.strip().lower() == NO_BUDGET:
        time_budget = None
    seconds = None if time_budget is None else budget.parse_duration(time_budget)
    workers = check_workers(workers, per_gpu, kind.trial_bytes(prepared))
    say = err.print if as_json else out.print
    planned = print_plan(kind, prepared, say, workers, warn)
    if seconds is not None:
        fits = planned.seconds <= seconds
        say(
            f"  --time {time_budget}: the plan "
            + ("fits" if fits else "does not fit: runs that cannot end in time are skipped")
        )
    if dry_run:
        raise typer.Exit(0)
    study = kind.create(prepared)
    if "plan" not in study.user_attrs:  # the estimate, read beside the actual time
        study.set_user_attr("plan", planned.attrs())
    started = time.time()
    try:
        with resumable(prepared.study_name, prepared.storage_url), budget.limited(seconds):
            if workers > 1:
                res = run_study(kind, prepared, workers=workers)
            else:
                with study_progress(describe) as display:
                    res = run_study(kind, prepared, display)
    except ValueError:  # a result that needs every run (calibrate, noise) after --time
        if seconds is None or not plan.skipped_points(study):
            raise
        print_time(study, planned, started, time_budget, say)
        raise typer.Exit(0) from None
    print_time(study, planned, started, time_budget, say)
    return res


def print_plan(kind, prepared, say=out.print, workers: int = 1, warn=None):
    """Print the plan of a prepared study on ``workers`` processes (measuring this machine
    first when not cached)."""
    from scaler import plan, timing

    def measuring(what: str) -> None:
        err.print(
            f"measuring this machine's speed for the plan ({what}, three short runs; cached "
            f"for {timing.MAX_AGE_DAYS} days) ...",
            markup=False,
        )

    planned = plan.plan(kind, prepared, measuring, workers)
    # First: a user of small or one-channel images learns what the proxy trains on; then the
    # caller's warnings about the data (``warn()``), then the plan.
    note = prepared.source.describe_images(*planned.pixels)
    if note:
        say(note, markup=False, soft_wrap=True)
    if warn is not None:
        warn()
    for line in planned.lines():
        say(line, markup=False, soft_wrap=True)
    return planned


def print_time(study, planned, started: float, time_budget: str | None, say=out.print) -> None:
    """The actual time beside the plan's (kept on the study, attribute ``times``: one entry a
    command), and what ``--time`` skipped (how to train it)."""
    import time

    from scaler import plan
    from scaler.plan import duration

    took = plan.clock(study, started, time.time())
    took["planned"] = round(planned.seconds, 1)
    study.set_user_attr("times", [*study.user_attrs.get("times", []), took])
    line = f"time: {duration(took['seconds'])} (planned ~{duration(planned.seconds)})"
    if took["later_rounds"]:
        line += (
            f"; the planned runs ended after {duration(took['planned_part'])}, then "
            f"{took['later_rounds']} trials of later race rounds (not planned: they depend "
            "on what the first round shows)"
        )
    say(line, markup=False)
    skipped = plan.skipped_points(study) if time_budget is not None else []
    if skipped:
        say(
            f"--time {time_budget} skipped {len(skipped)} points that could not end in time "
            f"({', '.join(skipped[:4])}{' ...' if len(skipped) > 4 else ''}); the same command "
            "with a larger --time trains them",
            markup=False,
        )


def next_steps(study: str, storage: str | None, shown: str, *commands: str) -> None:
    """Print the commands that follow (``storage`` given: repeat its masked URL)."""
    store = f" --storage '{shown}'" if storage else ""
    for i, command in enumerate(commands):
        out.print(f"{'next:' if i == 0 else '     '} scaler {command} {study}{store}")


# The command line being run (set by scaler.cli.main), for the resume hint.
ARGV: list[str] = []


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, after the command said what was kept and how to resume."""


# Set once a command has said what Ctrl-C left behind (main prints nothing more then).
INTERRUPT_SAID: list[bool] = [False]


@contextlib.contextmanager
def resumable(study: str, storage_url: str) -> Iterator[None]:
    """On Ctrl-C, say what the study kept, what is queued again, and the command that resumes."""
    try:
        yield
    except KeyboardInterrupt:
        from scaler.studies import load_study, mask_url

        with contextlib.suppress(Exception):  # the hint must not hide the interruption
            trials = load_study(study, storage_url).get_trials(deepcopy=False)
            kept = sum(t.state.is_finished() and t.state.name != "FAIL" for t in trials)
            command = shlex.join(["scaler", *(mask_url(a) for a in ARGV)])
            err.print(
                f"Interrupted: study {study} keeps its {kept} finished trials; the trial that "
                f"was running is queued again. Resume with: {command}",
                markup=False,
            )
            INTERRUPT_SAID[0] = True
        raise Interrupted from None
