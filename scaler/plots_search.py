"""Figures of a search: the α–β map of accuracy, accuracy against measured cost, and the
optimisation history with the running best (:mod:`scaler.plots` collects them per study)."""

from __future__ import annotations

from matplotlib.figure import Figure

from scaler.findings_pooled import search_surface
from scaler.plots_style import (
    PALETTE,
    alpha_beta,
    figure_axes,
    finish_axes,
    is_empty,
    message_figure,
    seed_errors,
    style,
)
from scaler.records import BASE_ROLE
from scaler.results import best_candidate, finished, isnan


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


def plot_search_map(frame, title: str = "", config: dict | None = None) -> Figure:
    """The α–β map: finished points coloured by top-1, γ and pixels written beside each.

    Infeasible points are grey crosses, failed and pruned points hollow, reused points ringed,
    the best candidate starred; when the candidates support one, the fitted response surface
    (:func:`scaler.findings_pooled.search_surface`) as contours, its optimum and the optimum's
    95 % region (the parametric bootstrap's optima).
    """
    done, infeasible, other = _search_parts(frame)
    if done.empty and infeasible.empty and other.empty:
        return message_figure("no trial to plot yet", title)
    with style():
        fig, ax = figure_axes((8, 6))
        if not done.empty:
            _map_surface(ax, search_surface(frame, config))
            _map_finished(fig, ax, done)
        if not infeasible.empty:
            ax.scatter(
                *alpha_beta(infeasible),
                marker="x",
                s=70,
                color="#7f7f7f",
                zorder=3,
                label="infeasible (budget)",
            )
        if not other.empty:
            ax.scatter(
                *alpha_beta(other),
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
        finish_axes(
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
        *alpha_beta(done),
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
            *alpha_beta(reused),
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


def _map_surface(ax, surface) -> None:
    """The fitted surface's contours, its optimum and the optimum's region (none: nothing)."""
    if surface.fit is None:
        return
    a, b, z = surface.grid()
    lines = ax.contour(a, b, z, levels=8, colors="#555555", linewidths=0.7, alpha=0.7, zorder=1)
    ax.clabel(lines, fontsize=7, fmt="%.0f")
    ax.use_sticky_edges = False  # the contours must not pin the axes to the box (margins)
    o = surface.optimum
    ra, rb, inside = surface.region_grid()
    ax.contourf(ra, rb, inside, levels=[0.5, 1.5], colors=[PALETTE[1]], alpha=0.15, zorder=0)
    ax.fill(
        [], [], color=PALETTE[1], alpha=0.15, label=f"where the optimum could be ({o.level:.0%})"
    )
    fa, fb, _ = surface.optimum_abg()
    ax.scatter(
        [fa],
        [fb],
        marker="P",
        s=140,
        color=PALETTE[1],
        edgecolors="black",
        zorder=5,
        label=f"fitted optimum ({surface.model}): {o.top1:.2f} %",
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
    return f"base: {text}" if r.get("role") == BASE_ROLE and text else text


X_LABELS = {
    "cost_ratio": "measured cost (fvcore FLOPs ÷ base, at the cost pixels)",
    "latency_ratio": "measured latency (÷ base, timed in alternation, at the cost pixels)",
}


def plot_search_cost(
    frame,
    title: str = "",
    budget: float | None = None,
    tolerance: float | None = None,
    x: str = "cost_ratio",
) -> Figure:
    """Top-1 against the measured cost (``x``: fvcore FLOPs or latency ÷ the base's), with the
    budget band (the band is the constraint's: drawn on both, it shows what the other misses)."""
    done = finished(frame)
    if x != "cost_ratio":
        done = done[done[x].notna()]
    if is_empty(done):
        return message_figure("no finished trial to plot yet", title)
    with style():
        fig, ax = figure_axes((8, 5.5))
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
            ("base", done[done["role"] == BASE_ROLE], PALETTE[6], "s"),
            ("trained", done[(done["role"] != BASE_ROLE) & (done["status"] != "reused")],
             PALETTE[0], "o"),
            ("reused", done[(done["role"] != BASE_ROLE) & (done["status"] == "reused")],
             PALETTE[1], "D"),
        )  # fmt: skip
        for name, rows, colour, marker in groups:
            if rows.empty:
                continue
            _, yerr = seed_errors(rows)
            ax.errorbar(
                rows[x].astype(float),
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
                if r["role"] == BASE_ROLE or r["status"] == "reused":
                    continue  # a reused point sits on its twin, which is labelled already
                ax.annotate(
                    f"α={float(r['alpha']):.2f} β={float(r['beta']):.2f}",
                    (float(r[x]), float(r["top1_mean"])),
                    textcoords="offset points",
                    xytext=(5, 4),
                    fontsize=8,
                )
        finish_axes(ax, X_LABELS[x], "top-1 accuracy (%)", title)
    return fig


def plot_search_history(frame, title: str = "") -> Figure:
    """Top-1 by trial number with the running best; trials without a result on the floor."""
    done = finished(frame)
    if frame is None or frame.empty:
        return message_figure("no trial to plot yet", title)
    with style():
        fig, ax = figure_axes((8, 4.5))
        if not is_empty(done):
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
        finish_axes(ax, "trial number", "top-1 accuracy (%)", title)
    return fig
