"""Throughput of 2 one-thread workers against 1 two-thread worker on one study.

Both configurations run the same search (same grid, proxy and data) into fresh SQLite studies,
alternating, and the script prints trials per hour for each and their ratio. Run it on an
otherwise idle machine:

    python scripts/bench_workers.py --rounds 2 --images 4096
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

SEARCH = [
    "--budget", "2x", "--proxy", "quick", "--epochs", "1", "--trials", "6",
    "--alpha-range", "1.0:1.4", "--alpha-step", "0.2", "--beta-range", "1.0:1.1",
    "--beta-step", "0.1",
]  # fmt: skip
CONFIGS = {"1 worker x 2 threads": (1, 2), "2 workers x 1 thread": (2, 1)}


def one(workers: int, threads: int, images: int, folder: str, tag: str) -> tuple[float, int]:
    """Wall time and number of trials of one search."""
    import optuna

    url = f"sqlite:///{os.path.join(folder, tag + '.db')}"
    cmd = [sys.executable, "-m", "scaler", "search", *SEARCH, "--images", str(images),
           "--storage", url, "--study", tag, "--workers", str(workers)]  # fmt: skip
    if workers == 1:
        cmd += ["--threads", str(threads)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    return wall, len(optuna.load_study(study_name=tag, storage=url).trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, default=4096, help="training images per run")
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.rounds):
            for name, (workers, threads) in CONFIGS.items():
                wall, trials = one(workers, threads, args.images, folder, f"r{r}w{workers}")
                rates[name].append(trials / wall * 3600)
                print(f"round {r + 1} {name}: {trials} trials in {wall:.1f} s "
                      f"= {rates[name][-1]:.0f} trials/h", flush=True)  # fmt: skip
    med = {k: sorted(v)[len(v) // 2] for k, v in rates.items()}
    for k, v in med.items():
        print(f"{k}: {v:.0f} trials/h (median of {len(rates[k])})")
    print(f"ratio 2x1 / 1x2: {med['2 workers x 1 thread'] / med['1 worker x 2 threads']:.2f}")


if __name__ == "__main__":
    main()
