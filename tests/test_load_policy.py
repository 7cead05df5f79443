"""`import scaler` bounds OpenMP's idle spinning before torch loads; a user's setting is kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import os, scaler; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
)
KEYS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")


def _after_import(**given: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    env.update(given)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_import_bounds_the_spin_when_nothing_is_set() -> None:
    assert _after_import() == ["10000", "None"]


@pytest.mark.parametrize(
    "given",
    [{"OMP_WAIT_POLICY": "PASSIVE"}, {"OMP_WAIT_POLICY": "active"}, {"GOMP_SPINCOUNT": "0"}],
)
def test_a_users_setting_is_kept(given: dict[str, str]) -> None:
    spin, policy = _after_import(**given)
    assert spin == given.get("GOMP_SPINCOUNT", "None")
    assert policy == given.get("OMP_WAIT_POLICY", "None")


def test_import_scaler_does_not_load_torch() -> None:
    # The setting only takes effect if it is made before torch loads OpenMP.
    probe = "import sys, scaler; print('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
