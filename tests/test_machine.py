"""scaler.machine: the CPU described once (model, vector extensions, cores)."""

from __future__ import annotations

from scaler import machine

X86 = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx fma avx2 bmi2
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx fma avx2 bmi2
"""
ARM = """processor\t: 0
Features\t: fp asimd evtstrm sve
"""


def test_parse_cpuinfo_reads_model_and_vector_extensions():
    assert machine.parse_cpuinfo(X86) == ("AMD EPYC 7B13", ("avx", "avx2", "fma"))
    assert machine.parse_cpuinfo(ARM) == ("", ("asimd", "sve"))
    assert machine.parse_cpuinfo("") == ("", ())


def test_cpu_describes_this_machine(monkeypatch):
    monkeypatch.setattr(machine, "_cpuinfo", lambda: X86)
    c = machine.cpu()
    assert c.model == "AMD EPYC 7B13" and c.cores >= 1
    assert c.describe().startswith("AMD EPYC 7B13 (avx avx2 fma, ")
    assert machine.machine() == "AMD EPYC 7B13"
    monkeypatch.setattr(machine, "_cpuinfo", lambda: "")
    assert machine.cpu().model  # platform's answer, never empty
