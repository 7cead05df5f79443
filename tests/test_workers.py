"""Worker counts: trials per GPU by memory and cores; --workers-per-gpu on a machine without one."""

from __future__ import annotations

import pytest

from scaler import workers as W
from scaler.complexity import train_memory
from scaler.spec import preset

GIB = 1 << 30


def test_auto_per_gpu_is_bounded_by_memory_cores_and_the_cap():
    assert W.auto_per_gpu(GIB, 80 * GIB, cpus=16, gpus=1) == W.MAX_PER_GPU
    assert W.auto_per_gpu(GIB, 80 * GIB, cpus=4, gpus=1) == 4  # one core per process
    assert W.auto_per_gpu(GIB, 80 * GIB, cpus=16, gpus=4) == 4
    assert W.auto_per_gpu(20 * GIB, 80 * GIB, cpus=16, gpus=1) == 3  # 64 GiB / 21 GiB
    assert W.auto_per_gpu(200 * GIB, 80 * GIB, cpus=16, gpus=1) == 1  # never 0


def test_train_memory_grows_with_the_network_and_the_batch():
    b0, b3 = preset("b0", 32), preset("b3", 32)
    assert train_memory(b3, 64, 10) > train_memory(b0, 64, 10)
    assert train_memory(b0, 128, 10) > train_memory(b0, 64, 10)
    assert train_memory(b0, 64, 10) < 2 * GIB  # a 32 px proxy run is small


def test_workers_per_gpu_needs_a_gpu_and_excludes_workers(monkeypatch):
    monkeypatch.setattr(W, "_gpus", lambda: (0, 0))
    with pytest.raises(ValueError, match="--workers-per-gpu needs a CUDA GPU"):
        W.check_workers(None, 2)
    with pytest.raises(ValueError, match="exclude each other"):
        W.check_workers(2, 2)
    with pytest.raises(ValueError, match="--workers-per-gpu 0 is invalid"):
        W.check_workers(None, 0)
    assert W.check_workers(None) == 1
    monkeypatch.setattr(W, "_gpus", lambda: (2, 80 * GIB))
    assert W.check_workers(None, 3) == 6
    assert W.check_workers(None, None, trial_bytes=GIB) == 2 * W.auto_per_gpu(
        GIB, 80 * GIB, W.os.cpu_count() or 1, 2
    )


_CHILD = """
import sys, time
from pathlib import Path
from scaler import workers

def target(placement):
    folder = Path(sys.argv[1])
    (folder / f"started-{placement.index}").touch()
    try:
        time.sleep(60)
    except KeyboardInterrupt:  # what the runner does: record the trial, then stop
        (folder / f"recorded-{placement.index}").touch()
        raise

if __name__ == "__main__":
    try:
        workers.run_workers(target, 2)
    except KeyboardInterrupt:
        sys.exit(130)
"""


@pytest.mark.slow
def test_an_interrupted_parent_lets_its_workers_record_their_trials(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    # SIGINT to the parent alone, as a supervisor sends it (a terminal's Ctrl-C reaches all).
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("started-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert sorted(p.name for p in tmp_path.glob("recorded-*")) == ["recorded-0", "recorded-1"]
