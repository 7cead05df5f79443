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

Every figure is built on a bare :class:`matplotlib.figure.Figure` under the Agg backend: no
pyplot state, so nothing leaks between figures and nothing needs a display. Colours are the
Okabe–Ito palette (distinguishable with the common colour-vision deficiencies), and every series
also gets its own marker so that the figures survive grey-scale printing. Frames with failed,
pruned, reused, skipped or infeasible trials plot fine; a frame with no finished trial gives a
figure that says so.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless; must precede any pyplot import anywhere in the process

from matplotlib.figure import Figure  # noqa: E402

from scaler.findings_sweeps import COMPARE_ORDER, paired_runs  # noqa: E402
from scaler.results import (  # noqa: E402
    StudyData,
    best_candidate,
    finished,
    flops_column,
    isnan,
    multipliers_text,
    seeds_of,
    setup_key,
)

# Okabe & Ito (2008), reordered so the first colours are the most distinct on white.
PALETTE = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow (last: weak on white)
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
FLOPS_LABEL = "FLOPs at the proxy resolution (M, fvcore: 1 multiply-add = 1 flop)"
COST_FLOPS_LABEL = "FLOPs at r × 224 px, the cost resolution (M, fvcore: 1 multiply-add = 1 flop)"


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The one style of every scaler figure (readable fonts, light grid, fixed SVG ids)."""
    rc = {
        "font.size": 11,
        "axes.titlesize": 11,
        "axes.labelsize": 11,
        "legend.fontsize": 9,
        "xtick.labelsize": 10,
        "ytick.labelsize": 10,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "grid.linestyle": "-",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "savefig.bbox": "tight",
        "svg.fonttype": "none",  # text stays text in SVG: smaller, searchable, editable
        "svg.hashsalt": "scaler",  # stable element ids: the same data give the same SVG
    }
    with matplotlib.rc_context(rc):
        yield


def _fmt_value(name: str, value: float) -> str:
    """A point's multiplier as written beside it ("w=1.4", "φ=2")."""
    if name == "φ":
        return f"φ={int(value)}"
    return f"{name}={value:g}"


def _figure(figsize: tuple[float, float]) -> tuple[Figure, Any]:
    """A bare figure with one axes (call it inside :func:`style`)."""
    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


def _finish_axes(ax, xlabel: str, ylabel: str, title: str, legend: bool = True) -> None:
    """Axis labels, the legend (unless ``legend`` is false) and the title, if any."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend(loc="best", frameon=False)
    if title:
        ax.set_title(title)


def _empty(frame) -> bool:
    """True for None and for a frame without rows."""
    return frame is None or frame.empty


def _seed_errors(rows):
    """(several seeds?, top-1 std where so and 0 elsewhere) for each row, as Series."""
    many = rows["seeds"].fillna(1).astype(float) > 1
    return many, rows["top1_std"].fillna(0).astype(float).where(many, 0.0)


def _alpha_beta(rows):
    """The α and β columns of ``rows`` as floats, for a scatter."""
    return rows["alpha"].astype(float), rows["beta"].astype(float)


def message_figure(message: str, title: str = "") -> Figure:
    """A figure that only says ``message`` (e.g. a study with no finished trial)."""
    with style():
        fig, ax = _figure((7, 3))
        ax.set_axis_off()
        ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
        if title:
            fig.suptitle(title, fontsize=10)
    return fig


def plot_scaling(
    frames: Sequence[Any],
    title: str = "",
    search_points: Any = None,
) -> Figure:
    """Top-1 against measured FLOPs, one line per series of every sweep frame.

    ``frames`` are sweep frames (:func:`scaler.sweeps.sweep_frame`), optionally with a
    ``study`` column; a label used by two studies gets the study name appended.
    ``search_points`` (a frame with flops, top1_mean, top1_std, seeds, alpha, beta, gamma,
    label) are drawn as stars: e.g. a search's best candidate.
    """
    import pandas as pd

    parts = _finished_sweeps(frames)
    stars = finished(search_points) if search_points is not None else None
    if not parts and _empty(stars):
        return message_figure("no finished trial to plot yet", title)
    done = pd.concat(parts, ignore_index=True) if parts else None
    x = flops_column(done, stars)
    with style():
        fig, ax = _figure((8, 5.5))
        if done is not None:
            _plot_series(ax, done, x)
        if not _empty(stars):
            _plot_stars(ax, stars, x)
        ax.set_xscale("log")
        _plain_log_ticks(ax)
        label = COST_FLOPS_LABEL if x == "cost_flops" else FLOPS_LABEL
        _finish_axes(ax, label, "top-1 accuracy (%)", title)
    return fig


def _finished_sweeps(frames: Sequence[Any]) -> list[Any]:
    """The finished rows of each sweep frame that has any, with a ``study`` column ("#i")."""
    parts = []
    for i, f in enumerate(frames):
        done = finished(f)
        if _empty(done):
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
        many, yerr = _seed_errors(rows)
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
        text = _fmt_value(str(r["value_name"]), float(r["point_value"]))
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


def _search_parts(frame):
    """(finished, infeasible, failed-or-pruned) rows of a search frame (base kept separately)."""
    done = finished(frame)
    infeasible = frame[frame["status"] == "infeasible"]
    other = frame[
        ~frame.index.isin(done.index)
        & ~frame.index.isin(infeasible.index)
        & frame["state"].isin(["FAIL", "PRUNED"])
    ]
    return done, infeasible, other


def plot_search_map(frame, title: str = "") -> Figure:
    """The α–β map: finished points coloured by top-1, γ and pixels written beside each.

    Infeasible points are grey crosses, failed and pruned points hollow, reused points ringed,
    the best candidate starred.
    """
    done, infeasible, other = _search_parts(frame)
    if done.empty and infeasible.empty and other.empty:
        return message_figure("no trial to plot yet", title)
    with style():
        fig, ax = _figure((8, 6))
        if not done.empty:
            _map_finished(fig, ax, done)
        if not infeasible.empty:
            ax.scatter(
                *_alpha_beta(infeasible),
                marker="x",
                s=70,
                color="#7f7f7f",
                zorder=3,
                label="infeasible (budget)",
            )
        if not other.empty:
            ax.scatter(
                *_alpha_beta(other),
                marker="o",
                s=90,
                facecolors="none",
                edgecolors=PALETTE[3],
                linewidths=1.5,
                zorder=3,
                label="failed / pruned",
            )
        _map_notes(ax, frame)
        ax.margins(0.2)
        _finish_axes(
            ax,
            "α (depth multiplier at the budget)",
            "β (width multiplier at the budget)",
            title,
            legend=bool(ax.get_legend_handles_labels()[0]),
        )
    return fig


def _map_finished(fig, ax, done) -> None:
    """Finished points coloured by top-1 (with a colour bar), reused ones ringed, best starred."""
    sc = ax.scatter(
        *_alpha_beta(done),
        c=done["top1_mean"].astype(float),
        cmap="viridis",
        s=120,
        edgecolors="black",
        linewidths=0.6,
        zorder=3,
    )
    fig.colorbar(sc, ax=ax, label="top-1 accuracy (%)")
    reused = done[done["status"] == "reused"]
    if not reused.empty:
        ax.scatter(
            *_alpha_beta(reused),
            s=300,
            facecolors="none",
            edgecolors=PALETTE[1],
            linewidths=1.5,
            zorder=2,
            label="reused (identical network)",
        )
    best = best_candidate(done)
    if best is not None:
        ax.scatter(
            [float(best["alpha"])],
            [float(best["beta"])],
            marker="*",
            s=80,
            color="white",
            edgecolors="black",
            zorder=4,
            label=f"best: {float(best['top1_mean']):.2f} %",
        )


def _map_notes(ax, frame) -> None:
    """Write γ and pixels beside every point of the map, one note per position: trials at the
    same (α, β), such as the base and the resolution-only candidate, share it, a line each."""
    notes: dict[tuple[float, float], list[str]] = {}
    for _, r in frame.iterrows():
        if isnan(r.get("alpha")) or isnan(r.get("beta")):
            continue
        note = _map_note(r)
        lines = notes.setdefault((float(r["alpha"]), float(r["beta"])), [])
        if note and note not in lines:
            lines.append(note)
    for point, lines in notes.items():
        if lines:
            ax.annotate(
                "\n".join(lines),
                point,
                textcoords="offset points",
                xytext=(9, -4),
                fontsize=8,
                va="top",
            )


def _map_note(r) -> str:
    """The note of one trial: "base: " then γ and pixels ("" when none is known)."""
    parts = []
    if not isnan(r.get("gamma")):
        parts.append(f"γ={float(r['gamma']):.2f}")
    if not isnan(r.get("pixels")):
        parts.append(f"{int(r['pixels'])}px")
    text = " ".join(parts)
    return f"base: {text}" if r.get("role") == "base" and text else text


def plot_search_cost(
    frame, title: str = "", budget: float | None = None, tolerance: float | None = None
) -> Figure:
    """Top-1 against the measured cost (fvcore FLOPs ÷ base), with the budget band."""
    done = finished(frame)
    if _empty(done):
        return message_figure("no finished trial to plot yet", title)
    with style():
        fig, ax = _figure((8, 5.5))
        if budget is not None:
            ax.axvline(budget, color="#7f7f7f", linestyle="--", linewidth=1, label="budget")
            if tolerance:
                ax.axvspan(
                    budget * (1 - tolerance),
                    budget * (1 + tolerance),
                    color="#7f7f7f",
                    alpha=0.12,
                    label=f"±{tolerance:.0%}",
                )
        groups = (
            ("base", done[done["role"] == "base"], PALETTE[6], "s"),
            ("trained", done[(done["role"] != "base") & (done["status"] != "reused")],
             PALETTE[0], "o"),
            ("reused", done[(done["role"] != "base") & (done["status"] == "reused")],
             PALETTE[1], "D"),
        )  # fmt: skip
        for name, rows, colour, marker in groups:
            if rows.empty:
                continue
            _, yerr = _seed_errors(rows)
            ax.errorbar(
                rows["cost_ratio"].astype(float),
                rows["top1_mean"].astype(float),
                yerr=yerr,
                color=colour,
                marker=marker,
                linestyle="none",
                markersize=7,
                capsize=3,
                label=name,
            )
            for _, r in rows.iterrows():
                if r["role"] == "base" or r["status"] == "reused":
                    continue  # a reused point sits on its twin, which is labelled already
                ax.annotate(
                    f"α={float(r['alpha']):.2f} β={float(r['beta']):.2f}",
                    (float(r["cost_ratio"]), float(r["top1_mean"])),
                    textcoords="offset points",
                    xytext=(5, 4),
                    fontsize=8,
                )
        _finish_axes(
            ax,
            "measured cost (fvcore FLOPs ÷ base, at the cost pixels)",
            "top-1 accuracy (%)",
            title,
        )
    return fig


def plot_search_history(frame, title: str = "") -> Figure:
    """Top-1 by trial number with the running best; trials without a result on the floor."""
    done = finished(frame)
    if frame is None or frame.empty:
        return message_figure("no trial to plot yet", title)
    with style():
        fig, ax = _figure((8, 4.5))
        if not _empty(done):
            done = done.sort_values("number")
            ax.plot(
                done["number"],
                done["top1_mean"].astype(float),
                marker="o",
                linestyle="none",
                color=PALETTE[0],
                label="finished trial",
            )
            best = done["top1_mean"].astype(float).cummax()
            ax.step(
                done["number"], best, where="post", color=PALETTE[1], linewidth=1.6,
                label="running best",
            )  # fmt: skip
            lo, hi = float(done["top1_mean"].min()), float(done["top1_mean"].max())
            floor = lo - (0.05 * (hi - lo) if hi > lo else 0.5)  # just under every result
        else:
            floor = 0.0
            ax.text(0.5, 0.5, "no finished trial yet", ha="center", transform=ax.transAxes)
        rest = frame[~frame["number"].isin(done["number"] if done is not None else [])]
        for status, marker, colour in (
            ("infeasible", "x", "#7f7f7f"),
            ("pruned", "v", PALETTE[3]),
            ("failed", "X", PALETTE[1]),
        ):
            rows = rest[rest["status"] == status]
            if not rows.empty:
                ax.plot(
                    rows["number"],
                    [floor] * len(rows),
                    marker=marker,
                    linestyle="none",
                    color=colour,
                    label=f"{status} (no result)",
                )
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole numbers
        _finish_axes(ax, "trial number", "top-1 accuracy (%)", title)
    return fig


# ----------------------------------------------------------------------------------------------
# studies → figures on disk
# ----------------------------------------------------------------------------------------------


def describe_setup(config: dict[str, Any]) -> str:
    """Data and proxy settings in one line, for titles ("embedded · quick: 1 epoch ...");
    a base other than EfficientNet-B0 first ("mobilenetv2 · embedded · ...")."""
    proxy = config.get("proxy") or {}
    base = f"{config['base']} · " if config.get("base") else ""
    if not proxy:
        return base + str(config.get("data", "unknown data"))
    run = (
        f"{proxy['images']} images"
        if proxy.get("images")
        else f"{proxy.get('epochs')} epoch{'s' if proxy.get('epochs') != 1 else ''}"
    )
    seeds = config.get("seeds", 1)
    return base + (
        f"{config.get('data')} · proxy {config.get('proxy_preset')}: {run}, batch "
        f"{proxy.get('batch_size')}, lr {proxy.get('lr')}, {proxy.get('optimizer')}, base "
        f"{proxy.get('base_pixels')} px · {seeds} seed{'s' if seeds != 1 else ''}"
    )


def search_best_points(search: StudyData):
    """A one-row frame of a search's best candidate, labelled for a scaling plot (or None)."""
    done = search.finished
    best = best_candidate(done) if not _empty(done) else None
    if best is None:
        return None
    row = best.copy()
    row["label"] = f"search best {multipliers_text(best)} ({search.name})"
    return row.to_frame().T.astype({"top1_mean": float, "flops": float, "cost_flops": float})


def plot_compare(frame, title: str = "") -> Figure:
    """A compare sweep: top-1 per network (base, compound, each dimension alone), every seed a
    dot joined to the same seed of the other networks, the mean ± sd beside them."""
    done = finished(frame)
    if _empty(done):
        return message_figure("no finished trial to plot yet", title)
    order = ["base", "compound", *COMPARE_ORDER]
    rows = [r for key in order for _, r in done[done["series"] == key].iterrows()]
    runs = [paired_runs(r) for r in rows]
    with style():
        fig, ax = _figure((8, 5))
        for seed in sorted({s for run in runs for s in run}):
            xs = [i for i, run in enumerate(runs) if seed in run]
            ax.plot(xs, [runs[i][seed] for i in xs], color="#999999", lw=0.8, alpha=0.6)
        for i, (r, run) in enumerate(zip(rows, runs, strict=True)):
            colour = PALETTE[i % len(PALETTE)]
            ax.scatter([i] * len(run), list(run.values()), color=colour, s=14, zorder=3)
            many, err = _seed_errors(r.to_frame().T)
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
        _finish_axes(ax, "", "top-1 accuracy (%)", title, legend=False)
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
        figs[f"{s.name}.map"] = plot_search_map(s.frame, title)
        figs[f"{s.name}.cost"] = plot_search_cost(
            s.frame, title, budget=budget, tolerance=s.config.get("tolerance")
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
