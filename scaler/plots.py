"""Figures of sweeps and searches: functions that take trial frames and return figures.

- Sweeps: top-1 against measured FLOPs (log x), one line per series, each point annotated
  with the multiplier it varies (w, d, r or φ), error bars when points have several seeds.
  Several studies can share one axes (single-dimension curves plus the compound line, plus a
  search's best candidate as a star).
- Compare sweeps (the paper's Tables 3 and 7): top-1 of the base, the compound network and each
  single-dimension network at equal measured FLOPs, every seed drawn and joined across networks
  (the runs pair seed by seed).
- Searches: the α–β map of accuracy (γ and pixels written at each point), accuracy against the
  measured cost, and the optimisation history with the running best.

The search figures live in :mod:`scaler.plots_search`, the one style of every figure in
:mod:`scaler.plots_style` (Agg, Okabe–Ito colours, a marker per series). Frames with failed,
pruned, reused, skipped or infeasible trials plot fine; a frame with no finished trial gives a
figure that says so.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from scaler.findings_sweeps import BASE_SERIES, COMPARE_ORDER, paired_runs
from scaler.plots_search import (  # the search figures, importable from here as before 0.6
    plot_search_cost,
    plot_search_history,
    plot_search_map,
)
from scaler.plots_style import (
    COST_FLOPS_LABEL,
    FLOPS_LABEL,
    MARKERS,
    PALETTE,
    figure_axes,
    finish_axes,
    fmt_value,
    is_empty,
    message_figure,
    seed_errors,
    style,
)
from scaler.results import (
    StudyData,
    best_candidate,
    finished,
    flops_column,
    isnan,
    multipliers_text,
    seeds_of,
    setup_key,
)


def plot_scaling(
    frames: Sequence[Any],
    title: str = "",
    search_points: Any = None,
) -> Figure:
    """Top-1 against measured FLOPs, one line per series of every sweep frame.

    ``frames`` are sweep frames (:func:`scaler.results.sweep_frame`), optionally with a
    ``study`` column; a label used by two studies gets the study name appended.
    ``search_points`` (a frame with flops, top1_mean, top1_std, seeds, alpha, beta, gamma,
    label) are drawn as stars: e.g. a search's best candidate.
    """
    import pandas as pd

    parts = _finished_sweeps(frames)
    stars = finished(search_points) if search_points is not None else None
    if not parts and is_empty(stars):
        return message_figure("no finished trial to plot yet", title)
    done = pd.concat(parts, ignore_index=True) if parts else None
    x = flops_column(done, stars)
    with style():
        fig, ax = figure_axes((8, 5.5))
        if done is not None:
            _plot_series(ax, done, x)
        if not is_empty(stars):
            _plot_stars(ax, stars, x)
        ax.set_xscale("log")
        _plain_log_ticks(ax)
        label = COST_FLOPS_LABEL if x == "cost_flops" else FLOPS_LABEL
        finish_axes(ax, label, "top-1 accuracy (%)", title)
    return fig


def _finished_sweeps(frames: Sequence[Any]) -> list[Any]:
    """The finished rows of each sweep frame that has any, with a ``study`` column ("#i")."""
    parts = []
    for i, f in enumerate(frames):
        done = finished(f)
        if is_empty(done):
            continue
        done = done.copy()
        if "study" not in done:
            done["study"] = f"#{i}"
        parts.append(done)
    return parts


def _plot_series(ax, done, column: str = "flops") -> None:
    """One line per (study, series) of ``done``, each point annotated with its multiplier."""
    owners = done.groupby("label")["study"].nunique()
    based: set[tuple[float, float]] = set()
    for i, ((study, _), rows) in enumerate(done.groupby(["study", "series"], sort=False)):
        rows = rows.sort_values(column)
        label = str(rows["label"].iloc[0])
        if owners.get(label, 1) > 1:
            label += f" ({study})"
        colour, marker = PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]
        x = rows[column].astype(float) / 1e6
        y = rows["top1_mean"].astype(float)
        many, yerr = seed_errors(rows)
        ax.errorbar(
            x,
            y,
            yerr=yerr if many.any() else None,
            color=colour,
            marker=marker,
            markersize=6,
            linewidth=1.6,
            capsize=3,
            label=label,
        )
        _annotate_series(ax, rows, x, y, colour, based)


def _annotate_series(ax, rows, x, y, colour: str, based: set[tuple[float, float]]) -> None:
    """Write each point's multiplier beside it; the unscaled network once, as "base"."""
    for xv, yv, (_, r) in zip(x, y, rows.iterrows(), strict=True):
        if r.get("value_name") is None or isnan(r.get("point_value")):
            continue
        text = fmt_value(str(r["value_name"]), float(r["point_value"]))
        if _is_base(r):
            # Several series start at the unscaled network: name it once.
            if (xv, yv) in based:
                continue
            based.add((xv, yv))
            text = "base"
        ax.annotate(
            text,
            (xv, yv),
            textcoords="offset points",
            xytext=(4, 5),
            fontsize=8,
            color=colour,
            zorder=5,
        )


def _plot_stars(ax, stars, column: str = "flops") -> None:
    """Each row of ``stars`` as a black star, with an error bar when it has several seeds."""
    for _, r in stars.iterrows():
        seeds = seeds_of(r)
        ax.errorbar(
            [float(r[column]) / 1e6],
            [float(r["top1_mean"])],
            yerr=[float(r["top1_std"] or 0)] if seeds > 1 else None,
            marker="*",
            markersize=15,
            color="#000000",
            linestyle="none",
            capsize=3,
            label=str(r.get("label") or "search best"),
        )


def _is_base(row) -> bool:
    """True for a row at depth = width = resolution = 1 (the unscaled network)."""
    try:
        return all(float(row.get(k)) == 1.0 for k in ("depth", "width", "resolution"))
    except (TypeError, ValueError):
        return False


def _plain_log_ticks(ax) -> None:
    """Log-axis ticks as plain numbers (5, 10, 20), minor ones labelled within two decades."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    lo, hi = ax.get_xlim()
    ax.xaxis.set_minor_formatter(plain if hi / max(lo, 1e-12) < 100 else NullFormatter())
    ax.tick_params(axis="x", which="minor", labelsize=8)


# ----------------------------------------------------------------------------------------------
# studies → figures on disk
# ----------------------------------------------------------------------------------------------


def describe_setup(config: dict[str, Any]) -> str:
    """Data and proxy settings in one line, for titles ("embedded · quick: 1 epoch ...");
    a base other than EfficientNet-B0 first ("mobilenetv2 · embedded · ...")."""
    settings = config.get("proxy") or {}
    named = f"{config['base']} · " if config.get("base") else ""
    if not settings:
        return named + str(config.get("data", "unknown data"))
    run = (
        f"{settings['images']} images"
        if settings.get("images")
        else f"{settings.get('epochs')} epoch{'s' if settings.get('epochs') != 1 else ''}"
    )
    seeds = config.get("seeds", 1)
    return named + (
        f"{config.get('data')} · proxy {config.get('proxy_preset')}: {run}, batch "
        f"{settings.get('batch_size')}, lr {settings.get('lr')}, {settings.get('optimizer')}, base "
        f"{settings.get('base_pixels')} px · {seeds} seed{'s' if seeds != 1 else ''}"
    )


def search_best_points(search: StudyData):
    """A one-row frame of a search's best candidate, labelled for a scaling plot (or None)."""
    done = search.finished
    best = best_candidate(done) if not is_empty(done) else None
    if best is None:
        return None
    row = best.copy()
    row["label"] = f"search best {multipliers_text(best)} ({search.name})"
    return row.to_frame().T.astype({"top1_mean": float, "flops": float, "cost_flops": float})


def plot_compare(frame, title: str = "") -> Figure:
    """A compare sweep: top-1 per network (base, compound, each dimension alone), every seed a
    dot joined to the same seed of the other networks, the mean ± sd beside them."""
    done = finished(frame)
    if is_empty(done):
        return message_figure("no finished trial to plot yet", title)
    order = [BASE_SERIES, "compound", *COMPARE_ORDER]
    rows = [r for key in order for _, r in done[done["series"] == key].iterrows()]
    runs = [paired_runs(r) for r in rows]
    with style():
        fig, ax = figure_axes((8, 5))
        for seed in sorted({s for run in runs for s in run}):
            xs = [i for i, run in enumerate(runs) if seed in run]
            ax.plot(xs, [runs[i][seed] for i in xs], color="#999999", lw=0.8, alpha=0.6)
        for i, (r, run) in enumerate(zip(rows, runs, strict=True)):
            colour = PALETTE[i % len(PALETTE)]
            ax.scatter([i] * len(run), list(run.values()), color=colour, s=14, zorder=3)
            many, err = seed_errors(r.to_frame().T)
            ax.errorbar(
                [i + 0.15],
                [float(r["top1_mean"])],
                yerr=[float(err.iloc[0])] if bool(many.iloc[0]) else None,
                fmt=MARKERS[i % len(MARKERS)],
                color=colour,
                capsize=3,
                zorder=4,
            )
        labels = [f"{r['label']}\n{float(r['cost_flops']) / 1e6:,.0f} MFLOPs" for r in rows]
        ax.set_xticks(range(len(rows)), labels, rotation=15, ha="right", fontsize=8)
        finish_axes(ax, "", "top-1 accuracy (%)", title, legend=False)
    return fig


def figures_for(studies: Sequence[StudyData]) -> dict[str, Figure]:
    """Every figure of the given studies by file stem: "scaling" for all sweeps on one axes
    (with the searches' best candidates), "<search>.map|cost|history" per search."""
    figs: dict[str, Figure] = {}
    sweeps = [s for s in studies if s.kind == "sweep"]
    searches = [s for s in studies if s.kind == "search"]
    for s in [s for s in sweeps if s.config.get("sweep") == "compare"]:
        budget = s.config.get("budget")
        title = (
            f"{s.name}: compound against one dimension at {budget:g}× the base's measured "
            f"FLOPs\n{describe_setup(s.config)}"
        )
        figs[f"{s.name}.compare"] = plot_compare(s.frame, title)
    sweeps = [s for s in sweeps if s.config.get("sweep") != "compare"]  # not curves
    if sweeps:
        import pandas as pd

        stars = [p for p in (search_best_points(s) for s in searches) if p is not None]
        same = len({setup_key(s.config) for s in sweeps + searches}) == 1
        kinds = {s.config.get("sweep") for s in sweeps}
        head = {
            "width-by-baseline": "Figure 1: scaling width for different baseline depths and "
            "resolutions",
            "single": "Scaling one dimension (width, depth or resolution)",
            "compound": "Compound scaling",
        }.get(kinds.pop() if len(kinds) == 1 else "", "Scaling curves")
        title = head + "\n" + describe_setup(sweeps[0].config)
        if not same:
            title += "\n(warning: the studies differ in data or proxy settings)"
        figs["scaling"] = plot_scaling(
            [s.frame for s in sweeps],
            title,
            pd.concat(stars, ignore_index=True) if stars else None,
        )
    for s in searches:
        budget = s.config.get("budget")
        title = f"{s.name} · {budget:g}× budget\n{describe_setup(s.config)}" if budget else s.name
        if s.frame.empty:
            figs[f"{s.name}.map"] = message_figure(f"{s.name}: no trial yet", title)
            continue
        figs[f"{s.name}.map"] = plot_search_map(s.frame, title, s.config)
        tolerance = s.config.get("tolerance")
        figs[f"{s.name}.cost"] = plot_search_cost(
            s.frame, title, budget=budget, tolerance=tolerance
        )
        if s.frame["latency_ratio"].notna().any():  # accuracy against time as well as FLOPs
            figs[f"{s.name}.latency"] = plot_search_cost(
                s.frame, title, budget, tolerance, x="latency_ratio"
            )
        figs[f"{s.name}.history"] = plot_search_history(s.frame, title)
    for s in studies:
        if s.kind == "unknown":
            figs[s.name] = message_figure(
                f"{s.name} is not a scaler search or sweep: nothing to plot", s.name
            )
    return figs


def render(figs: dict[str, Figure]) -> dict[str, bytes]:
    """Every figure as PNG and SVG bytes, by file name (in memory: nothing half-written)."""
    files: dict[str, bytes] = {}
    with style():
        for stem, fig in figs.items():
            for fmt in ("png", "svg"):
                buf = io.BytesIO()
                fig.savefig(buf, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
                files[f"{stem}.{fmt}"] = buf.getvalue()
    return files
