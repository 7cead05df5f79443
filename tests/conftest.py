"""Shared test helpers: the CLI runner and the tiny proxy settings every training test uses.

Modules that need the settings at import time (in a helper or a parametrization) import them
from here (``from conftest import TINY_PROXY``; pytest puts tests/ on the path); tests take
the fixtures.
"""

from __future__ import annotations

import pytest

# One epoch of 64 images at a 16 px base: a network trains in about a second on a CPU. One
# thread: on a shared 2-core machine two spinning threads slow tiny runs down many times.
TINY_PROXY = (
    ("epochs", 1),
    ("images", 64),
    ("batch_size", 32),
    ("base_pixels", 16),
    ("lr", 0.05),
    ("threads", 1),
)
# The same as command-line options, with the quick preset they override.
TINY_ARGS = ["--proxy", "quick"]
for _name, _value in TINY_PROXY:
    TINY_ARGS += ["--" + _name.replace("_", "-"), str(_value)]


@pytest.fixture(scope="session")
def tiny_proxy() -> tuple:
    return TINY_PROXY


@pytest.fixture(scope="session")
def tiny_args() -> list[str]:
    return list(TINY_ARGS)


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from scaler.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
