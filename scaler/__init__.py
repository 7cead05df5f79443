"""scaler: compound model scaling (Tan & Le, EfficientNet, ICML 2019) as a tool.

Build scaled EfficientNet-B0 networks exactly as the official implementation does, count their
cost, search the compound coefficients (α, β, γ) under a measured-FLOPs budget with short proxy
training runs stored in optuna studies, and plot, report and export the result.

Heavy modules (torch, optuna, fvcore) load on first use, so ``import scaler`` stays cheap.
"""

from __future__ import annotations

import os

# libgomp (torch's OpenMP on Linux) lets idle threads spin 300,000 times between parallel
# regions. On a CPU shared with other busy processes those spinning threads fight them for the
# cores: B0 trained at 448 img/s alone and 31 img/s beside three busy processes on 2 cores.
# 10,000 spins kept 97 % of the speed alone (437) and nearly tripled it under that load (89);
# a passive policy (no spinning) gave 128 under load but cost 42 % alone (259), so it stays a
# user's choice (scripts/bench_load.py measures all of them side by side). libgomp reads this
# when torch loads, and this module is imported before any scaler module imports torch; a
# user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins, and torch imported first keeps its default.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"

__version__ = "0.6.0"

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
    "build_member": "scaler.exports",
    "load_export": "scaler.exports",
    "SearchConfig": "scaler.search_config",
    "export": "scaler.searches",
    "SweepConfig": "scaler.sweep_config",
    "run_sweep": "scaler.sweeps",
    "list_studies": "scaler.results",
    "trials_frame": "scaler.results",
    "load_study": "scaler.studies",
}


# data's default is scaler.data.DEFAULT_DATA, spelled here so that `import scaler` stays light.
def search(budget="2x", data="fashion", proxy="standard", **options):
    """Run or resume a search (see :func:`scaler.searches.search` for every option)::

    import scaler
    res = scaler.search("2x", proxy="quick")
    res.board[["alpha", "beta", "gamma", "top1_mean", "possibly_best"]]
    """
    from scaler.searches import search as run

    return run(budget, data, proxy, **options)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'scaler' has no attribute {name!r}")
