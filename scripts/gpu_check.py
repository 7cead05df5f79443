"""The GPU check's phases, timed, with the GPU's busy fraction and peak memory per phase.

Called by scripts/gpu_check.sh once scaler is installed; writes OUT/summary.json (rewritten
after every phase, so a run cut short still leaves what it measured) and one log per phase.

  python scripts/gpu_check.py OUT [--device cuda|cpu] [--tiny] [--time-limit S]
                                  [--workers-per-gpu K] [--phases bench,search,sweep,calibrate]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

# Tiny settings for the CPU smoke run in CI: seconds per phase, nothing measured.
TINY = [
    "--proxy",
    "quick",
    "--epochs",
    "1",
    "--images",
    "64",
    "--batch-size",
    "32",
    "--base-pixels",
    "16",
    "--threads",
    "1",
]
PHASES = ("bench", "search", "sweep", "calibrate")
# What a phase gets at most of what is left, so one slow phase cannot starve the rest.
SHARE = {"bench": 0.2, "search": 0.45, "sweep": 0.7, "calibrate": 1.0}


class GpuSampler:
    """Samples nvidia-smi in the background; busy % and memory per phase."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []  # time, util %, memory MiB
        self._proc = None
        if shutil.which("nvidia-smi"):
            self._proc = subprocess.Popen(
                [
                    "nvidia-smi",
                    "--query-gpu=utilization.gpu,memory.used",
                    "--format=csv,noheader,nounits",
                    "-lms",
                    "200",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                util, mem = (float(x) for x in line.split(",")[:2])
            except ValueError:
                continue
            self.samples.append((time.time(), util, mem))

    def window(self, start: float, end: float) -> dict:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if not inside:
            return {"gpu_busy_mean": None, "gpu_memory_peak_mib": None, "samples": 0}
        return {
            "gpu_busy_mean": round(sum(s[1] for s in inside) / len(inside), 1),
            "gpu_memory_peak_mib": max(s[2] for s in inside),
            "samples": len(inside),
        }

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()


def environment() -> dict:
    import torch

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cpus": os.cpu_count(),
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env.update(card=p.name, memory_gib=round(p.total_memory / 2**30, 1))
    if shutil.which("nvidia-smi"):
        q = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        env["nvidia_smi"] = q.stdout.strip()
    return env


def commands(args, out: Path) -> dict[str, list[str]]:
    """The command of each phase."""
    device = ["--device", args.device]
    tiny = TINY if args.tiny else []
    storage = ["--storage", f"sqlite:///{out / 'studies.db'}"]
    per_gpu = (
        ["--workers-per-gpu", str(args.workers_per_gpu)]
        if args.workers_per_gpu and args.device == "cuda"
        else []
    )
    bench = ["bench", *device, "--json"]
    bench += ["--rounds", "1", "--images", "64", "--base-pixels", "16"] if args.tiny else []
    search = ["search", "--budget", "2x", *device, *tiny, *storage, "--study", "gpu-search"]
    if args.tiny:
        search += ["--alpha-range", "1:1.2", "--beta-range", "1:1.1", "--proxy-tolerance", "60%"]
    calibrate = ["calibrate", *device, *tiny, "--out", str(out / "calibration")]
    calibrate += ["--seeds", "2", "--members", "b0,b1"] if args.tiny else []
    sweep = ["sweep", "width-by-baseline", "--seeds", "2", *device, *tiny, *storage]
    sweep += ["--study", "gpu-sweep"] + (["--widths", "1,1.4"] if args.tiny else [])
    return {
        "bench": bench,
        "search": search + per_gpu,
        "calibrate": calibrate,
        "sweep": sweep + per_gpu,
    }


def run_phase(name: str, argv: list[str], limit: float, out: Path, sampler: GpuSampler) -> dict:
    """Run one phase under ``limit`` seconds; its output goes to OUT/NAME.log."""
    cmd = [sys.executable, "-m", "scaler", *argv]
    start = time.time()
    with open(out / f"{name}.log", "w") as log:
        # A session of its own, so a timeout also stops the phase's worker processes.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            rc = "timed out"
    end = time.time()
    row = {"command": "scaler " + " ".join(argv), "rc": rc, "seconds": round(end - start, 1)}
    row.update(sampler.window(start, end))
    if name == "bench" and rc == 0:
        text = (out / "bench.log").read_text()
        row["result"] = json.loads(text[text.index("{") :])
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--time-limit", type=float, default=480.0)
    ap.add_argument("--workers-per-gpu", type=int, default=None)
    ap.add_argument("--phases", default=",".join(PHASES))
    args = ap.parse_args()
    phases = [p for p in args.phases.split(",") if p]
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        print(f"--phases {unknown[0]!r} is unknown; valid: {', '.join(PHASES)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + args.time_limit
    sampler = GpuSampler()
    summary = {"environment": environment(), "device": args.device, "tiny": args.tiny}
    summary["time_limit_s"], summary["phases"] = args.time_limit, {}
    plan = commands(args, args.out)
    for name in phases:
        left = deadline - time.time()
        if left < 5:
            summary["phases"][name] = {"rc": "skipped: no time left"}
            continue
        summary["phases"][name] = run_phase(name, plan[name], left * SHARE[name], args.out, sampler)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    sampler.stop()
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    failed = [n for n, r in summary["phases"].items() if r.get("rc") not in (0, None)]
    return 1 if any(summary["phases"][n]["rc"] != "timed out" for n in failed) else 0


if __name__ == "__main__":
    sys.exit(main())
