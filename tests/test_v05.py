"""Studies written by scaler 0.5.0 load, and are listed, reported and exported the same.

The fixture (tests/data/v0.5, see its README) holds a search with its confirmation, a Figure 1
sweep and a Table 7 comparison, with what 0.5.0 printed and wrote for them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

V05 = Path(__file__).parent / "data" / "v0.5"
STUDIES = ("search-v05", "sweep-v05", "compare-v05")
# 0.6 states a difference by its t statistic and df where 0.5 counted standard errors (the
# 2-SE rule is gone; the pooled σ's t is the same number): both are written one way, so the
# rest of the line, the numbers and the verdict, must agree.
STATISTIC = (
    (re.compile(r"t = [-0-9.]+, \d+ df, two-sided p = [0-9.]+: "), ""),  # 0.6's trend
    (re.compile(r"[-0-9.]+ standard errors, "), ""),  # 0.5's trend
    (re.compile(r"t = ([-0-9.]+) with \d+ df → "), r"\1 → "),  # 0.6's compound vs one
    (re.compile(r"([-0-9.]+) SE → "), r"\1 → "),  # 0.5's compound vs one
    # 0.6 draws P(best) from the runs' t posterior on the pooled σ, where 0.5 bootstrapped the
    # val images (overlapping crops) as if independent: the phrase differs, the numbers must not
    # (one candidate here: 1.00 either way).
    (re.compile(r"P\(best\) by paired bootstrap over seeds and val images: "), "P(best): "),
    (re.compile(r"P\(best\), each mean drawn from its t posterior [^:]*: "), "P(best): "),
    # 0.6's test split: t intervals on the pooled σ of the test runs (0.5: a 2-seed bootstrap of
    # the crops); the means, the difference and the verdict must agree, the intervals may not.
    (re.compile(r" \(95 % (?:t )?interval [0-9.]+–[0-9.]+\)"), ""),
    (re.compile(r"(base's [0-9.]+ %) \([0-9.]+–[0-9.]+\)"), r"\1"),
    (
        re.compile(
            r"(points) \([-+0-9.]+ to [-+0-9.]+[^)]*\) over (\d+) (?:paired seeds|runs each)"
        ),
        r"\1 over \2 runs",
    ),
)
# The export's test-split intervals and statistics 0.6 computes differently on purpose (above).
TEST_SPLIT_0_6 = ("chosen_interval", "base_interval", "difference_interval")
TEST_SPLIT_NEW = ("base_runs", "sigma", "dof", "t", "p")


def _plain(line: str) -> str:
    for pattern, replacement in STATISTIC:
        line = pattern.sub(replacement, line)
    return line


@pytest.fixture
def v05(tmp_path, monkeypatch):
    """The 0.5.0 studies in a scratch folder (the tests run there: URLs are relative)."""
    shutil.copy(V05 / "v05.db", tmp_path / "v05.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCALER_STORAGE", raising=False)
    return "sqlite:///v05.db"


def test_v05_studies_list_the_same(cli, v05):
    code, out, _ = cli("studies", "--storage", v05, "--json")
    assert code == 0
    rows = json.loads(out)
    for row in rows:  # 0.7 adds the ranked metric and the stored class rates (none before 0.7)
        assert (row.pop("metric"), row.pop("chance"), row.pop("majority")) == ("top1", None, None)
    assert rows == json.loads((V05 / "studies.json").read_text())


def _body(path: Path) -> list[str]:
    """The report's lines, the statistic written one way, but the line saying when."""
    return [_plain(x) for x in path.read_text().splitlines() if not x.startswith("Written ")]


# 0.6 pools the evidence (scaler.findings_pooled): these lines are new, each starting with one
# of these prefixes; every other line is 0.5's, in 0.5's order.
NEW_LINES = (
    "- Pooled Figure 1 model, primary (",  # the Figure 1 verdict from one model over every run
    "- compare-v05 (efficientnet-b0 at 2×): pooled model, primary",  # Tables 3/7, pooled
    "### Response surface",  # a search's surface over its candidates (its heading,
    "No response surface: ",  # and its paragraph; then a blank line)
    "Response surface (",
    "Ranked by top-1 on val (--metric top1). Chance 7.7 %, majority class 7.7 %",  # 0.7's rates
    "Latency was not measured in this search",  # 0.7 times candidates; 0.5's studies hold none
)
# The leaderboard's columns 0.7 adds: left out before the tables are compared.
COLUMNS_0_7 = ("balanced %", "top-1 − majority")


def _without_columns(lines: list[str], names: tuple[str, ...] = COLUMNS_0_7) -> list[str]:
    """Markdown tables with the columns ``names`` dropped."""
    out, drop = [], []
    for line in lines:
        if not line.startswith("|"):
            drop = []
            out.append(line)
            continue
        cells = line[1:-1].split("|")
        if any(c.strip() in names for c in cells):
            drop = [i for i, c in enumerate(cells) if c.strip() in names]
        cells = [c for i, c in enumerate(cells) if i not in drop]
        out.append("|" + "|".join(cells) + "|")
    return out


# On purpose, 0.6 replaces 0.5's Figure 1 ordering verdict (per-baseline interpolated tests) by
# the pooled model's: the line keeps its prefix and changes its ending.
REPLACED = ("- The paper's ordering (",)


def _subsequence(old: list[str], new: list[str]) -> list[str]:
    """The old lines missing from ``new`` in order (a replaced line matched by its prefix)."""
    it, missing = iter(new), []
    for line in old:
        prefix = next((p for p in REPLACED if line.startswith(p)), None)
        if not any((x.startswith(prefix) if prefix else x == line) for x in it):
            missing.append(line)
            it = iter(new)
    return missing


def test_v05_report_is_the_same(cli, v05, tmp_path):
    code, _, err = cli("report", *STUDIES, "--storage", v05, "--out", "r")
    assert code == 0, err
    new, old = _without_columns(_body(tmp_path / "r" / "README.md")), _body(V05 / "report.md")
    assert not _subsequence(old, new)
    added = [x for x in new if x not in old and not x.startswith(REPLACED)]
    assert all(x == "" or x.startswith(NEW_LINES) for x in added), added
    new, old = (pd.read_csv(d / "trials.csv") for d in (tmp_path / "r", V05))
    pd.testing.assert_frame_equal(new[old.columns], old)


def test_v05_export_is_the_same(cli, v05, tmp_path):
    code, _, err = cli("export", "search-v05", "--storage", v05, "--out", "e.json")
    assert code == 0, err
    new, old = (json.loads(p.read_text()) for p in (tmp_path / "e.json", V05 / "export.json"))
    # 0.6 adds the response surface over the candidates beside 0.5's statistics (new key).
    assert "fitted" in new["statistics"].pop("response_surface")
    # 0.7 names the ranked metric and the class rates (counted from the same embedded data).
    assert new["statistics"].pop("metric") == "top1"
    assert new["statistics"].pop("class_rates")["val"]["images"] == 650
    assert new["at_budget"].pop("balanced_mean") is None
    for payload in (new, old):
        payload["provenance"].pop("exported")
        payload["provenance"].pop("versions")  # scaler's own version moves on
        conf = payload["statistics"]["confirmation"]
        for key in TEST_SPLIT_0_6:
            conf["test"].pop(key)
    for key in TEST_SPLIT_NEW:
        new["statistics"]["confirmation"]["test"].pop(key)
    assert new["statistics"]["confirmation"]["proxy_fidelity"].pop("p") is None  # 2 networks
    assert new == old
