"""The one style of every scaler figure: palette, markers, fonts, bare Agg figures.

Every figure is built on a bare :class:`matplotlib.figure.Figure` under the Agg backend: no
pyplot state, so nothing leaks between figures and nothing needs a display. Colours are the
Okabe–Ito palette (distinguishable with the common colour-vision deficiencies), and every series
also gets its own marker so that the figures survive grey-scale printing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless; must precede any pyplot import anywhere in the process

from matplotlib.figure import Figure  # noqa: E402

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


def fmt_value(name: str, value: float) -> str:
    """A point's multiplier as written beside it ("w=1.4", "φ=2")."""
    if name == "φ":
        return f"φ={int(value)}"
    return f"{name}={value:g}"


def figure_axes(figsize: tuple[float, float]) -> tuple[Figure, Any]:
    """A bare figure with one axes (call it inside :func:`style`)."""
    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


def finish_axes(ax, xlabel: str, ylabel: str, title: str, legend: bool = True) -> None:
    """Axis labels, the legend (unless ``legend`` is false) and the title, if any."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend(loc="best", frameon=False)
    if title:
        ax.set_title(title)


def is_empty(frame) -> bool:
    """True for None and for a frame without rows."""
    return frame is None or frame.empty


def seed_errors(rows):
    """(several seeds?, top-1 std where so and 0 elsewhere) for each row, as Series."""
    many = rows["seeds"].fillna(1).astype(float) > 1
    return many, rows["top1_std"].fillna(0).astype(float).where(many, 0.0)


def alpha_beta(rows):
    """The α and β columns of ``rows`` as floats, for a scatter."""
    return rows["alpha"].astype(float), rows["beta"].astype(float)


def message_figure(message: str, title: str = "") -> Figure:
    """A figure that only says ``message`` (e.g. a study with no finished trial)."""
    with style():
        fig, ax = figure_axes((7, 3))
        ax.set_axis_off()
        ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
        if title:
            fig.suptitle(title, fontsize=10)
    return fig
