"""The package's layout: no import cycles, short functions, and studies of 0.1.0 still load.

The v0.1 fixture (tests/data/v0.1, see its README) is a SQLite file written by scaler 0.1.0
with what that version printed and wrote for it; the current version must give the same.
"""

from __future__ import annotations

import ast
import inspect
import json
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scaler"
V01 = Path(__file__).parent / "data" / "v0.1"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 600
# What the report says differently since 0.1, on purpose: one vocabulary for sizes.
RENAMED = (("cost_resolution", "cost_pixels"),)
# Report lines that 0.3 states differently on purpose: noise with its degrees of freedom and t
# quantiles, the "possibly best" rule in place of ties, and the confirmation stage.
CHANGED_0_3 = (
    "Noise floor",
    "standard errors",
    "tied",
    "could be the best",
    " df",
    "onfirm",
    "paper's ordering",
    "At the proxy's pixels",
)
# Report lines that 0.6 states differently on purpose: a series' trend and compound against one
# dimension are t-tests on σ's degrees of freedom, no longer 2 standard errors. The v0.1 lines
# they touch already differ since 0.3 ("standard errors", "tied", " df"): nothing new to leave out.
# Lines 0.6 adds on purpose: the pooled Figure 1 model and a search's response surface (its
# heading and paragraph, scaler.findings_pooled); v0.1 has no such lines to compare with.
CHANGED_0_6: tuple[str, ...] = ("Pooled Figure 1 model", "esponse surface")
# Lines 0.7 adds on purpose: what ranks the board, with chance and the majority-class rate.
CHANGED_0_7: tuple[str, ...] = ("Ranked by", "Latency was not measured")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """scaler modules imported anywhere in a file, inside functions too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from scaler import searches` imports the module scaler.searches.
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the scaler modules it imports, the package's own lazy ``__init__`` left out.

    ``scaler/__init__.py`` only re-exports names on first use; every submodule imports it
    implicitly, so counting it would make every lazy name a cycle.
    """
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files) - {"scaler"}
    return {m: _imports(files[m], modules) - {m} for m in modules}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None, find_cycle(import_graph())


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_workers_know_nothing_of_studies():
    assert import_graph()["scaler.workers"] == set()


def test_no_function_over_60_lines():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_no_module_over_600_lines():
    long = [
        f"{path.relative_to(PACKAGE)} ({n} lines)"
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, long


def test_scaler_search_is_a_plain_function():
    import scaler
    import scaler.searches  # importing the module must not shadow the function

    assert inspect.isfunction(scaler.search)
    assert "budget" in inspect.signature(scaler.search).parameters
    assert scaler.searches.__name__ == "scaler.searches"


@pytest.fixture
def v01(tmp_path, monkeypatch):
    """The 0.1.0 study in a scratch folder (the tests run there: URLs are relative)."""
    shutil.copy(V01 / "v01.db", tmp_path / "v01.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCALER_STORAGE", raising=False)
    return "sqlite:///v01.db"


def test_v01_studies_list_the_same(cli, v01):
    code, out, _ = cli("studies", "--storage", v01, "--json")
    assert code == 0
    rows = json.loads(out)
    for row in rows:  # 0.7 adds the ranked metric (top1 for 0.1) and the class rates (unknown)
        assert (row.pop("metric"), row.pop("chance"), row.pop("majority")) == ("top1", None, None)
    assert rows == json.loads((V01 / "studies.json").read_text())


@pytest.mark.slow
def _without_column(lines: list[str], column: str, old: str, new: str) -> list[str]:
    """Markdown tables with ``column`` dropped (0.3 added it) and ``old`` renamed ``new``."""
    out, drop = [], None
    for line in lines:
        if not line.startswith("|"):
            drop = None
            out.append(line)
            continue
        cells = line[1:-1].split("|")
        names = [c.strip() for c in cells]
        if column in names:
            drop = names.index(column)
        if drop is not None and drop < len(cells):
            del cells[drop]
            line = ("|" + "|".join(cells) + "|").replace(f"| {old} |", f"| {new} |")
        out.append(line)
    return out


def test_v01_report_is_the_same(cli, v01, tmp_path):
    code, _, err = cli("report", "search-v01", "sweep-v01", "--storage", v01, "--out", "r")
    assert code == 0, err

    def body(path: Path) -> list[str]:  # the first lines say when it was written
        text = path.read_text()
        for old, new in RENAMED:
            text = text.replace(old, new)
        return [x for x in text.splitlines() if not x.startswith("Written ")]

    def same(lines: list[str]) -> list[str]:  # the lines 0.3 changed on purpose left out
        lines = _without_column(lines, "MFLOPs (r × 224 px)", "MFLOPs (proxy)", "MFLOPs")
        for column in ("balanced %", "top-1 − majority"):  # 0.7's columns
            lines = _without_column(lines, column, "", "")
        lines = [x.replace("| tied |", "| ? |") for x in lines]
        changed = CHANGED_0_3 + CHANGED_0_6 + CHANGED_0_7
        return [x for x in lines if x and not any(w in x for w in changed)]

    assert same(body(tmp_path / "r" / "README.md")) == same(body(V01 / "report.md"))
    import pandas as pd

    new, old = (pd.read_csv(d / "trials.csv") for d in (tmp_path / "r", V01))
    single = old["seeds"].fillna(1) < 2
    assert new.loc[single, "top1_std"].isna().all()  # undefined for one run, not 0.0
    old.loc[single, "top1_std"] = float("nan")
    pd.testing.assert_frame_equal(new[old.columns], old)


def test_v01_export_is_the_same(cli, v01, tmp_path):
    code, _, err = cli("export", "search-v01", "--storage", v01, "--out", "e.json")
    assert code == 0, err
    new, old = (json.loads(p.read_text()) for p in (tmp_path / "e.json", V01 / "export.json"))
    for payload in (new, old):
        payload["provenance"].pop("exported")
    # Schema 2 says the same as 0.1.0 did, with FLOPs named MACs and more per member.
    assert (new.pop("scaler_export"), old.pop("scaler_export")) == (2, 1)
    assert (new.pop("macs_unit"), old.pop("flops_unit")) == (
        "multiply-adds counted by fvcore (which calls them FLOPs); 2 ops each elsewhere",
        "fvcore: one multiply-add = one flop",
    )
    new_family, old_family = new.pop("family"), old.pop("family")
    # On purpose since 0.3: the statistics block, and no standard deviation for a single run.
    assert new.pop("statistics")["confirmation"]["state"] == "not run"
    assert old["at_budget"]["seeds"] == 1 and new["at_budget"]["top1_std"] is None
    assert new["at_budget"].pop("balanced_mean") is None  # 0.7: not stored by 0.1's runs
    old["at_budget"]["top1_std"] = None
    assert new == old
    for n, o in zip(new_family, old_family, strict=True):
        o["macs"] = o.pop("flops")
        assert {k: n[k] for k in o} == o


def test_v01_trials_read_as_records(v01):
    from scaler.records import Status, TrialRecord
    from scaler.studies import load_study

    records = [TrialRecord.from_trial(t) for t in load_study("sweep-v01", v01).get_trials()]
    assert {r.status for r in records} == {Status.TRAINED, Status.FAILED}
    search = [TrialRecord.from_trial(t) for t in load_study("search-v01", v01).get_trials()]
    # 0.1.0 stored no point id for search trials: it is derived as they were queued.
    assert [r.point for r in search] == ["base:1.000000:1.000000", *[r.point for r in search[1:]]]
    assert all(r.point.startswith(f"{r.role}:") for r in search)


def test_result_fields_are_record_fields():
    from scaler.records import FIELDS, RESULT_FIELDS

    assert set(RESULT_FIELDS) <= FIELDS


# The layers of README's Layout section, top first: a module imports only earlier layers.
LAYERS = (
    ("bases", "files", "records", "workers", "stats", "optuna_api", "machine"),
    ("stats_pooled", "racing", "base_check"),
    ("spec",),
    ("proxy",),
    ("model",),
    ("complexity",),
    ("scaling", "interop"),
    ("exports",),
    ("data.base",),
    ("data.cifar", "data.embedded", "data.fashion", "data.fractal", "data.imagefolder"),
    ("data.parse",),
    ("data.rates",),
    ("data",),
    ("device", "augment"),
    ("evaluation", "averaging"),
    ("scoring",),
    ("train",),
    ("timing", "latency"),
    ("budget",),
    ("findings_calibration", "findings_noise"),
    ("bench",),
    ("studies",),
    ("dead_workers",),
    ("runner", "results"),
    ("latency_runs",),
    ("paired",),
    ("findings_pooled", "findings_racing"),
    ("findings_confirm", "findings_sweeps"),
    ("findings",),
    ("confirm", "calibrate", "noise"),
    ("search_config", "sweep_config"),
    ("candidates", "sweep_points"),
    ("searches", "sweeps"),
    ("plan_stages",),
    ("plan",),
    ("plots_style",),
    ("plots_search",),
    ("plots",),
    ("report_tables",),
    ("report_search", "report_sweeps"),
    ("report",),
)


def test_modules_import_only_earlier_layers():
    rank = {f"scaler.{m}": i for i, layer in enumerate(LAYERS) for m in layer}
    graph = import_graph()
    wrong = []
    for module, imports in graph.items():
        mine = rank.get(module, len(LAYERS) + (module == "scaler.__main__"))  # then cli, main
        for m in imports:
            within_cli = module.startswith("scaler.cli") and m.startswith("scaler.cli")
            if rank.get(m, len(LAYERS)) >= mine and not within_cli:
                wrong.append(f"{module} → {m}")
    assert not wrong, wrong
    rest = {m for m in graph if m.startswith("scaler.cli")} | {"scaler.__main__"}
    assert set(rank) | rest == set(graph)  # every module has its layer
