"""scaler: compound model scaling (Tan & Le, EfficientNet, ICML 2019) as a tool.

Build scaled EfficientNet-B0 networks exactly as the official implementation does, count their
cost, search the compound coefficients (α, β, γ) under a measured-FLOPs budget with short proxy
training runs stored in optuna studies, and plot, report and export the result.

Heavy modules (torch, optuna, fvcore) load on first use, so ``import scaler`` stays cheap.
"""

from __future__ import annotations

import os

# OpenMP (libgomp, torch's CPU backend) reads its wait policy once, when torch first loads it,
# and by default its idle threads spin between parallel regions. On a CPU shared with other
# busy processes the spinning threads compete with those processes and with torch's own main
# thread, and B0 training slowed 10x (46 img/s vs 122 with PASSIVE, 3 busy processes on 2
# cores). A passive policy makes idle threads sleep at once (scripts/bench_load.py measures it
# with and without load). Set here because this module is imported before any scaler module
# imports torch; a user's own value (e.g. ACTIVE) is kept. It has no effect when torch was
# imported before scaler.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

_LAZY = {
    "scale": "scaler.spec",
    "preset": "scaler.spec",
    "Spec": "scaler.spec",
    "build": "scaler.model",
    "count": "scaler.complexity",
    "Coefficients": "scaler.scaling",
    "family": "scaler.scaling",
    "parse_budget": "scaler.scaling",
    "solve_pixels": "scaler.scaling",
    "SearchConfig": "scaler.searches",
    "export": "scaler.searches",
    "SweepConfig": "scaler.sweeps",
    "run_sweep": "scaler.sweeps",
    "list_studies": "scaler.results",
    "trials_frame": "scaler.results",
    "load_study": "scaler.studies",
}


def search(budget="2x", data="embedded", proxy="standard", **options):
    """Run or resume a search (see :func:`scaler.searches.search` for every option)::

    import scaler
    res = scaler.search("2x", proxy="quick")
    res.board[["alpha", "beta", "gamma", "top1_mean", "tied"]]
    """
    from scaler.searches import search as run

    return run(budget, data, proxy, **options)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'scaler' has no attribute {name!r}")
