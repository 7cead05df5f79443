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
# A small embedded set (32 px crops, 32 train and 8 val/test images per class, 13 classes)
# for tests about something else than the data: a process builds it, and a run shrinks it to
# a new size and scores its val split, in a fraction of the full set's seconds.
TINY_DATA = "embedded:crop=32,train=32,val=8,test=8"


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


# A made-up throughput of this machine (scaler.timing), so that the plan every study command
# prints never times B0 in a test (a measurement takes ~20 s) and its numbers are the same on
# every machine: 1 ms per B0 training image at 48 px, 1 s of overhead per run.
FAKE_SECONDS_PER_IMAGE = 1e-3
FAKE_OVERHEAD = 1.0


def fake_throughput(path, seconds_per_image=FAKE_SECONDS_PER_IMAGE, overhead=FAKE_OVERHEAD):
    """Write a throughput cache at ``path`` for this machine's CPU, every thread count, alone
    and with up to 4 processes at once (workers): each process twice as slow as alone."""
    import dataclasses
    import datetime as dt
    import json
    import os

    from scaler import timing

    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    entries = []
    for threads in range(1, (os.cpu_count() or 1) + 1):
        machine, device, threads, torch = timing._key("cpu", threads)
        for n in range(1, 5):
            each = seconds_per_image * (1 if n == 1 else 2)
            t = timing.Throughput(
                machine, device, threads, torch, each, overhead, 23_550_144, 48, now, n, n - 1.0
            )
            entries.append(dataclasses.asdict(t))
    path.write_text(json.dumps(entries))
    return path


@pytest.fixture(autouse=True, scope="session")
def _fake_timing_cache(tmp_path_factory):
    import os

    from scaler.timing import CACHE_ENV

    path = fake_throughput(tmp_path_factory.mktemp("timing") / "throughput.json")
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(path)
    yield path
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


@pytest.fixture(autouse=True, scope="session")
def _no_latency_record():
    """Searches time no latency unless a test asks (tests/test_latency.py): a latency record
    costs seconds per candidate, and the suite's many small searches do not check it."""
    import os

    from scaler.latency import PROCESSES_ENV
    from scaler.search_config import LATENCY_ENV

    # Where a test times latency, 2 processes exercise the pool at less of the default 5's start-up.
    saved = {name: os.environ.get(name) for name in (LATENCY_ENV, PROCESSES_ENV)}
    os.environ[LATENCY_ENV] = "off"
    os.environ[PROCESSES_ENV] = "2"
    yield
    for name, before in saved.items():
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
