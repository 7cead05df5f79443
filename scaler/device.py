"""Devices for proxy runs: which one, its settings for a run, and compiled networks.

:func:`select_device` turns a device name (``auto, cpu, cuda, cuda:N, mps``) into the torch device
this machine has, and :func:`check_device` refuses, before anything is created or trained, one it
lacks. :func:`for_device` is the configuration as it trains there (the CUDA batch), and the rest
is what :func:`scaler.train.train` does per device: thread and cuDNN settings, forked and seeded
RNGs, timer syncs, bf16 autocast, data placement, and the per-process cache of
``torch.compile``-d networks (:func:`compiled`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Final

import torch
from torch import nn

from scaler.proxy import ProxyConfig, check_device_name
from scaler.spec import Spec

__all__ = [
    "COMPILE_CACHE_SIZE",
    "autocast",
    "check_device",
    "compile_key",
    "compiled",
    "for_device",
    "fork_rng",
    "place",
    "seed_global",
    "select_device",
    "sync",
    "torch_settings",
]


# --------------------------------------------------------------------------- devices


def select_device(name: str = "auto") -> torch.device:
    """The torch device for a name in ``auto, cpu, cuda, cuda:N, mps`` (``ValueError`` if not)."""
    check_device_name(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' is not available on this machine: use auto or cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} is not available on this machine: use auto or cpu")
        device = torch.device(name)
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device {name!r} is not available: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
        return torch.device("cuda", index)
    return torch.device(name)


def check_device(name: str | None) -> None:
    """Refuse, before anything is created or trained, a device this machine does not have."""
    try:
        select_device(name or "auto")
    except ValueError as e:
        raise ValueError(f"--device {name}: {e}") from None


def for_device(config: ProxyConfig, device: torch.device) -> ProxyConfig:
    """``config`` as it trains on ``device``: the CUDA batch and its linearly scaled lr."""
    if device.type != "cuda" or config.cuda_batch_size is None:
        return config
    ratio = config.cuda_batch_size / config.batch_size
    return dataclasses.replace(config, batch_size=config.cuda_batch_size, lr=config.lr * ratio)


@contextmanager
def torch_settings(device: torch.device, threads: int | None) -> Iterator[None]:
    """Set torch's CPU threads and cuDNN autotuning for one run, and restore them after it."""
    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    # Every train batch has the same shape, so cuDNN's autotuning pays for itself after a step;
    # restored afterwards since it is process-wide.
    cudnn_benchmark = torch.backends.cudnn.benchmark
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.backends.cudnn.benchmark = cudnn_benchmark


def sync(device: torch.device) -> None:
    """Wait for ``device``'s queued kernels."""
    # Timers must wait for queued kernels, or they measure launch speed only.
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def fork_rng(device: torch.device) -> AbstractContextManager[Any]:
    """A fork of the CPU RNG and ``device``'s, restored when the block ends."""
    if device.type == "cpu":
        return torch.random.fork_rng(devices=[])
    index = device.index if device.index is not None else 0
    return torch.random.fork_rng(devices=[index], device_type=device.type)


def seed_global(seed: int, device: torch.device) -> None:
    """Seed the CPU RNG and ``device``'s with ``seed``."""
    # Seeds only the generators the run forked (not every CUDA device, as manual_seed would),
    # so the caller's RNG state elsewhere is left exactly as it was.
    torch.random.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)
    elif device.type == "mps":
        torch.mps.manual_seed(seed)


def autocast(device: torch.device, amp: bool) -> AbstractContextManager[Any]:
    """bf16 autocast on ``device`` when ``amp``, else nothing."""
    if not amp:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _fits(device: torch.device, nbytes: int) -> bool:
    """Whether a dataset of ``nbytes`` may live on ``device`` for the whole run."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # A quarter of the free memory at most: activations and the optimizer need the rest.
        return nbytes <= free // 4
    if device.type == "mps":
        return nbytes <= 1 << 30  # no free-memory query on MPS; 1 GiB is safe on 8 GB Macs
    return True


def place(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device`` when it fits there, else on the host (pinned for CUDA)."""
    if tensor.device == device:
        return tensor
    if _fits(device, tensor.numel() * tensor.element_size()):
        return tensor.to(device)
    # Too big: stays on the host, pinned so that each batch's copy runs asynchronously.
    return tensor.pin_memory() if device.type == "cuda" else tensor


# --------------------------------------------------------------------------- compiled networks


# Compiled networks of this process, keyed by what their compiled graphs depend on. A worker
# trains many runs of few networks (seeds, the base, confirmation runs): the second run of a
# network copies its fresh weights into the compiled copy instead of compiling again, since a
# compile (~1 min) costs more than a proxy run on a GPU. Inductor's on-disk cache
# (TORCHINDUCTOR_CACHE_DIR) shares kernels between processes on top of this.
_COMPILED: dict[tuple, tuple[nn.Module, nn.Module]] = {}
COMPILE_CACHE_SIZE: Final = 8  # networks kept; a study rarely trains more at one worker


def compile_key(spec: Spec, num_classes: int, config: ProxyConfig, device, amp: bool) -> tuple:
    """What a compiled network's graphs depend on: the realized network, pixels and numerics."""
    return (
        spec.key_str,
        spec.pixels,
        num_classes,
        str(device),
        config.channels_last,
        amp,
        config.zero_init,
    )


def compiled(model: nn.Module, spec: Spec, num_classes: int, config, device, amp: bool):
    """(module, compiled module) for ``model``: a cached compiled copy holding its weights."""
    key = compile_key(spec, num_classes, config, device, amp)
    hit = _COMPILED.get(key)
    if hit is None:
        if len(_COMPILED) >= COMPILE_CACHE_SIZE:
            _COMPILED.pop(next(iter(_COMPILED)))  # the oldest network goes first
        hit = _COMPILED[key] = (model, torch.compile(model))
        return hit
    cached, net = hit
    # In place, so the compiled graphs keep their tensors: no guard fails, nothing recompiles.
    with torch.no_grad():
        cached.load_state_dict(model.state_dict())
    cached.zero_grad(set_to_none=True)
    return cached, net
