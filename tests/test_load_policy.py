"""`import scaler` sets a passive OpenMP wait policy before torch loads; a user value is kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import os, scaler; print(os.environ.get('OMP_WAIT_POLICY'))"


def _policy_after_import(value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if value is not None:
        env["OMP_WAIT_POLICY"] = value
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_sets_passive_when_unset() -> None:
    assert _policy_after_import(None) == "PASSIVE"


@pytest.mark.parametrize("value", ["ACTIVE", "active", "PASSIVE"])
def test_user_value_is_kept(value: str) -> None:
    assert _policy_after_import(value) == value


def test_import_scaler_does_not_load_torch() -> None:
    # The policy only takes effect if it is set before torch loads OpenMP.
    probe = "import sys, scaler; print('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
