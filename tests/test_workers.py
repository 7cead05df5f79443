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
