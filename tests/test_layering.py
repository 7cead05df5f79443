"""The findings layer and the one rule for "better".

- Presentation (``scaler.report*``, ``scaler.plots*``) and the findings layer itself
  (``scaler.findings*``, ``scaler.stats``, ``scaler.results``) import no module that runs
  studies, not even through another module: what a study shows is read from its trials.
- Findings that the running modules state are imported from the findings layer, never from a
  running module (``from scaler.sweeps import compare_verdicts`` or ``W.compare_verdicts``).
- No module but ``scaler.stats`` has a rule for "better" of its own: no t quantile or
  distribution (scipy, ``statistics``, ``NormalDist``, ``.ppf``/``.sf``), no bootstrap or random
  resampling, no "k standard errors" comparison, no fitted model (statsmodels).

The checks read source files (AST), so they can be pointed at another tree:
``SCALER_PACKAGE=/work/main/scaler pytest tests/test_layering.py`` fails on 0.5, whose report
used 2 standard errors, whose calibration bootstrapped with ``random`` and whose compare
verdicts took ``statistics.stdev`` (the self-tests below pin that on snippets of it).
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

PACKAGE = Path(os.environ.get("SCALER_PACKAGE") or Path(__file__).resolve().parents[1] / "scaler")
RUNNING = {
    f"scaler.{m}"
    for m in ("searches", "sweeps", "confirm", "calibrate", "noise", "paired", "runner", "workers")
    + ("train", "bench")
}
RUNNING |= {f"scaler.{m}" for m in ("search_config", "candidates", "sweep_config", "sweep_points")}
PRESENTATION = ("scaler.report", "scaler.plots", "scaler.findings")
PRESENTATION += ("scaler.stats", "scaler.results")
# Modules that draw images, crops and augmentations: random draws are their job, resampling is
# not (no multinomial, no stdlib random, no draws with replace=True).
DATA_RANDOMNESS = (
    "scaler.data",
    "scaler.augment",
    "scaler.train",
    "scaler.bench",
)
# A t or normal distribution's functions, and what only a bootstrap needs.
DISTRIBUTION_CALLS = {"ppf", "sf", "isf", "cdf", "logsf"}
RESAMPLING_CALLS = {"choice", "choices", "integers", "multinomial", "randrange", "randint"}
RESAMPLING_CALLS |= {"default_rng", "permutation", "bootstrap"}
ALWAYS_RESAMPLING = {"multinomial", "choices", "randrange", "bootstrap"}
# The spread and distributions of the standard library (a median of timings is fine).
SPREAD = {"NormalDist", "stdev", "pstdev", "variance", "pvariance"}
STATS_ONLY = {"t_sf", "t_quantile", "critical_value", "two_sided_p", "kendall_tau"}
STATS_ONLY |= {"paired_bootstrap", "percentile_interval", "pooled_sd", "possibly_best"}
# The pooled models: only scaler.stats fits them (statsmodels is imported nowhere else); its
# pooled models live in scaler.stats_pooled, split off for the 600-line rule: the same module.
STATS_MODULES = ("scaler.stats", "scaler.stats_pooled")
STATS_ONLY |= {"ols_fit", "fit_contrasts", "surface_fit", "surface_optimum", "plane_through"}
FITTING_PACKAGES = ("scipy", "random", "statsmodels")
_SE = re.compile(r"(^|_)(se|sem|stderr|standard_error)$")


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = ("scaler", *path.relative_to(package).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def imported(tree: ast.AST) -> set[str]:
    """Every module a file imports, inside functions too (``from scaler import x``: scaler.x)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the scaler modules it imports (the package's lazy ``__init__`` left out)."""
    files = modules(package)
    names = set(files) - {"scaler"}
    return {m: (imported(ast.parse(files[m].read_text())) & names) - {m} for m in names}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name(node.func)
    return ""


def _se_like(node: ast.AST) -> bool:
    return any(_SE.search(_name(n)) for n in ast.walk(node))


def _number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, int | float)


def _se_rule(node: ast.Compare) -> bool:
    """``|gap| <= 2 * se`` or ``gap / se > 2``: a standard-error multiple used as a rule."""
    sides = [node.left, *node.comparators]
    for side in sides:
        for n in ast.walk(side):
            if not isinstance(n, ast.BinOp):
                continue
            times = (_number(n.left) and _se_like(n.right)) or (
                _number(n.right) and _se_like(n.left)
            )
            if isinstance(n.op, ast.Mult) and times:
                return True
            over = isinstance(n.op, ast.Div) and _se_like(n.right)
            if over and any(_number(s) for s in sides):
                return True
    return False


def _import_rule(node: ast.Import | ast.ImportFrom) -> str:
    mods = imported(ast.Module(body=[node], type_ignores=[]))
    names = {a.name for a in node.names}
    if any(m.split(".")[0] in FITTING_PACKAGES for m in mods):
        return f"imports {sorted(mods)[0]}"
    if names & SPREAD:
        return f"imports {sorted(names & SPREAD)[0]}"
    return ""


def _call_rule(node: ast.Call, data: bool) -> str:
    if not isinstance(node.func, ast.Attribute):
        return ""
    call = node.func.attr
    replace = any(
        k.arg == "replace" and getattr(k.value, "value", 0) is True for k in node.keywords
    )
    if call in DISTRIBUTION_CALLS:
        return f"calls .{call}("
    if replace or call in (ALWAYS_RESAMPLING if data else RESAMPLING_CALLS):
        return f"resamples with .{call}("
    return ""


def own_rules(source: str, module: str) -> list[str]:
    """What a module's source does that only scaler.stats may: each as "line: what"."""
    data = module.startswith(DATA_RANDOMNESS)
    out = []
    for node in ast.walk(ast.parse(source)):
        what = ""
        if isinstance(node, ast.Import | ast.ImportFrom):
            what = _import_rule(node)
        elif isinstance(node, ast.FunctionDef) and node.name in STATS_ONLY:
            what = f"defines {node.name}"
        elif isinstance(node, ast.Call):
            what = _call_rule(node, data)
        elif isinstance(node, ast.Compare) and _se_rule(node):
            what = "compares with a multiple of a standard error"
        if what:
            out.append(f"{node.lineno}: {what}")
    return out


# ----------------------------------------------------------------------------------------------
# the package
# ----------------------------------------------------------------------------------------------


def test_presentation_and_findings_import_no_running_module():
    graph = import_graph()
    wrong = []
    for module in sorted(graph):
        if module.startswith(PRESENTATION):
            wrong += [f"{module} → {m}" for m in sorted(reachable(graph, module) & RUNNING)]
    assert not wrong, wrong


def _findings_names(files: dict[str, Path]) -> set[str]:
    """Public names defined at the top of the findings modules (scaler.findings*)."""
    names = set()
    for m, path in files.items():
        if m.startswith("scaler.findings"):
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name[0] != "_":
                    names.add(node.name)
    return names


def _running_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name → running module, for ``from scaler import sweeps as W`` and the like."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "scaler":
            for a in node.names:
                if f"scaler.{a.name}" in RUNNING:
                    out[a.asname or a.name] = f"scaler.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in RUNNING and a.asname:
                    out[a.asname] = a.name
    return out


def test_findings_are_imported_from_the_findings_layer():
    files = modules()
    names = _findings_names(files)
    wrong = []
    for module, path in files.items():
        tree = ast.parse(path.read_text())
        aliases = _running_aliases(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in RUNNING:
                found = [a.name for a in node.names if a.name in names]
                wrong += [f"{module}: {node.module}.{n}" for n in found]
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr in names
            ):
                wrong.append(f"{module}: {aliases[node.value.id]}.{node.attr}")
    assert not wrong, wrong


def test_only_stats_has_a_rule_for_better():
    wrong = []
    for module, path in modules().items():
        if module not in STATS_MODULES:
            wrong += [f"{module}:{x}" for x in own_rules(path.read_text(), module)]
    assert not wrong, wrong


def test_stats_stands_on_scipy():
    source = (PACKAGE / "stats.py").read_text()
    assert "from scipy.stats import" in source
    assert "_beta_cf" not in source and "def betainc" not in source


# ----------------------------------------------------------------------------------------------
# the checks catch what 0.5 did
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module, source",
    [
        # report.Match.verdict and report._series_findings: 2 standard errors
        ("scaler.report", "if abs(self.gap) <= 2 * self.se:\n    pass"),
        ("scaler.report", "side = 'beyond' if abs(gain) > 2 * se else 'within'"),
        ("scaler.report", "ok = gap / se > 1.96"),
        # calibrate.tau_statistics: a bootstrap of its own
        ("scaler.calibrate", "import random\nrng = random.Random(0)"),
        ("scaler.calibrate", "x = rng.randrange(3)"),
        ("scaler.calibrate", "x = rng.choice(values, size=(2000, 3))"),
        ("scaler.data", "x = rng.choice(values, size=3, replace=True)"),
        ("scaler.data", "w = rng.multinomial(10, p)"),
        # sweeps.compare_verdicts: the standard deviation of the differences, by hand
        ("scaler.sweeps", "from statistics import mean, stdev"),
        ("scaler.stats_copy", "from statistics import NormalDist"),
        ("scaler.stats_copy", "from scipy.stats import t"),
        ("scaler.report", "q = student.ppf(0.975, 3)"),
        # a model fitted outside scaler.stats
        ("scaler.findings_pooled", "import statsmodels.formula.api as smf"),
        ("scaler.findings_sweeps", "from statsmodels.api import OLS"),
        ("scaler.findings", "def ols_fit(formula, data):\n    return None"),
        ("scaler.report", "def critical_value(level, df):\n    return 2.0"),
    ],
)
def test_the_rule_scan_catches_rules_of_their_own(module, source):
    assert own_rules(source, module)


@pytest.mark.parametrize(
    "module, source",
    [
        ("scaler.findings", "test = difference_test(gap, se, dof)\ncalled = test.low > 0"),
        ("scaler.findings", "text = f'{crit * standard_error(s, 1, 1):.2f}'"),
        ("scaler.data", "rng = np.random.default_rng(0)\nys = rng.integers(0, 9, size=4)"),
        ("scaler.model", "x = int(cin * se) > 1"),  # se: the squeeze ratio, not a rule
    ],
)
def test_the_rule_scan_leaves_plain_code_alone(module, source):
    assert not own_rules(source, module)


def test_the_import_check_sees_through_other_modules():
    graph = {"scaler.report": {"scaler.helpers"}, "scaler.helpers": {"scaler.sweeps"}}
    assert reachable(graph, "scaler.report") & RUNNING == {"scaler.sweeps"}
