"""Studies written by scaler 0.5.0 load, and are listed, reported and exported the same.

The fixture (tests/data/v0.5, see its README) holds a search with its confirmation, a Figure 1
sweep and a Table 7 comparison, with what 0.5.0 printed and wrote for them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

V05 = Path(__file__).parent / "data" / "v0.5"
STUDIES = ("search-v05", "sweep-v05", "compare-v05")
# Report lines stated differently since 0.5 on purpose (none so far).
CHANGED_0_6: tuple[str, ...] = ()


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
    assert json.loads(out) == json.loads((V05 / "studies.json").read_text())


def _body(path: Path) -> list[str]:
    """The report's lines but those changed on purpose; the first lines say when it was written."""
    lines = path.read_text().splitlines()
    return [
        x for x in lines if not x.startswith("Written ") and not any(w in x for w in CHANGED_0_6)
    ]


def test_v05_report_is_the_same(cli, v05, tmp_path):
    code, _, err = cli("report", *STUDIES, "--storage", v05, "--out", "r")
    assert code == 0, err
    assert _body(tmp_path / "r" / "README.md") == _body(V05 / "report.md")
    new, old = (pd.read_csv(d / "trials.csv") for d in (tmp_path / "r", V05))
    pd.testing.assert_frame_equal(new[old.columns], old)


def test_v05_export_is_the_same(cli, v05, tmp_path):
    code, _, err = cli("export", "search-v05", "--storage", v05, "--out", "e.json")
    assert code == 0, err
    new, old = (json.loads(p.read_text()) for p in (tmp_path / "e.json", V05 / "export.json"))
    for payload in (new, old):
        payload["provenance"].pop("exported")
        payload["provenance"].pop("versions")  # scaler's own version moves on
    assert new == old
