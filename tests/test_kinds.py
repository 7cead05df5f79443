"""Every kind of study has the one lifecycle of scaler.runner.StudyKind, under the same names."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from scaler import calibrate, confirm, searches, sweeps
from scaler.runner import Prepared, StudyKind

KINDS = (searches, sweeps, confirm, calibrate)
LIFECYCLE = ("prepare", "trial_bytes", "create", "work", "result")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kind", KINDS, ids=lambda m: m.__name__)
def test_every_kind_is_a_study_kind_with_the_protocols_parameters(kind):
    assert isinstance(kind, StudyKind)
    for name in LIFECYCLE:
        mine = list(inspect.signature(getattr(kind, name)).parameters)
        theirs = list(inspect.signature(getattr(StudyKind, name)).parameters)[1:]  # no self
        assert len(mine) == len(theirs), (kind.__name__, name, mine, theirs)
    # The Python entry point of every kind: run(cfg, study, storage, progress, workers).
    assert list(inspect.signature(kind.run).parameters)[1:] == [
        "study",
        "storage",
        "progress",
        "workers",
    ]
    fields = {f for f in kind.Prepared.__dataclass_fields__}
    assert {"cfg", "study_name", "storage_url"} <= fields, kind.__name__


def test_a_prepared_study_carries_what_a_worker_prepares_it_again_from(tmp_path):
    from conftest import TINY_PROXY

    cfg = calibrate.CalibrationConfig(("b0", "b1"), 2, proxy="quick", proxy_overrides=TINY_PROXY)
    p = calibrate.prepare(cfg, "c", f"sqlite:///{tmp_path / 'c.db'}")
    assert isinstance(p, Prepared)
    again = calibrate.prepare(p.cfg, p.study_name, p.storage_url)
    assert (again.stored, again.specs, again.study_name) == (p.stored, p.specs, p.study_name)


TOUCHED = (
    "scaler/runner.py",
    "scaler/optuna_api.py",
    "scaler/calibrate.py",
    "scaler/searches.py",
    "scaler/sweeps.py",
    "scaler/confirm.py",
    "scaler/cli/studies.py",
    "scaler/cli/sweeps.py",
)


@pytest.mark.parametrize("path", TOUCHED)
def test_no_function_is_over_60_lines(path):
    tree = ast.parse((ROOT / path).read_text())
    long = [
        f"{n.name}: {n.end_lineno - n.lineno + 1} lines"
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        and n.end_lineno - n.lineno + 1 > 60
    ]
    assert not long, f"{path}: {', '.join(long)}"


def test_the_optuna_adapter_is_small_and_the_only_user_of_private_optuna():
    assert len((ROOT / "scaler/optuna_api.py").read_text().splitlines()) <= 150
    for path in (ROOT / "scaler").rglob("*.py"):
        if path.name == "optuna_api.py":
            continue
        text = path.read_text()
        for private in ("._storage", "._trial_id", "._backend", "optuna.storages._"):
            assert private not in text, f"{path.relative_to(ROOT)} uses {private}"
