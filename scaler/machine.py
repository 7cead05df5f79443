"""The machine a run trains on, described once: CPU model, vector extensions, cores.

Speed differs several times between CPUs, so what scaler prints about time names the machine
it was measured on: ``scaler bench`` shows it, and :mod:`scaler.timing` keys its cached
throughput by it. Linux's ``/proc/cpuinfo`` is read when there is one; elsewhere ``platform``
says what it can.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# The vector extensions that decide how fast torch's CPU kernels run, widest last.
VECTOR_FLAGS: Final = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "asimd", "sve")
CPUINFO: Final = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class Cpu:
    """This machine's CPU: its model, the vector extensions it has, and its logical cores."""

    model: str
    vector: tuple[str, ...]  # of VECTOR_FLAGS, in that order
    cores: int

    def describe(self) -> str:
        """One line: ``AMD EPYC 7B13 (avx2 fma, 2 cores)``."""
        flags = " ".join(self.vector) or "no AVX"
        return f"{self.model} ({flags}, {self.cores} cores)"


def _cpuinfo() -> str:
    try:
        return CPUINFO.read_text()
    except OSError:  # not Linux: platform's answer below
        return ""


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...]]:
    """(model name, vector extensions) from the text of /proc/cpuinfo ("" and () if absent)."""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = (s.strip() for s in line.partition(":"))
        key = key.lower()
        if key == "model name" and not model:
            model = value
        elif key in ("flags", "features") and not flags:  # x86 "flags", arm64 "Features"
            flags = set(value.split())
    return model, tuple(f for f in VECTOR_FLAGS if f in flags)


def cpu() -> Cpu:
    """This machine's :class:`Cpu`."""
    model, vector = parse_cpuinfo(_cpuinfo())
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    return Cpu(model=model, vector=vector, cores=os.cpu_count() or 1)


def machine() -> str:
    """This machine's CPU model (Linux: /proc/cpuinfo's model name), for reports."""
    return cpu().model
