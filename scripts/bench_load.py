"""CPU training throughput of B0 beside busy processes, per OpenMP spin setting and threads.

Each setting trains B0 (standard proxy, embedded data, CPU, one epoch of --images images) in a
fresh subprocess, since libgomp reads its settings when torch loads:

- old:      libgomp's default (OMP_WAIT_POLICY and GOMP_SPINCOUNT unset: idle threads spin
            300,000 times between parallel regions), torch's default threads,
- new:      scaler's default (GOMP_SPINCOUNT=10000, set by ``import scaler``),
- passive:  OMP_WAIT_POLICY=PASSIVE (idle threads sleep at once),
- threads1: scaler's default with one thread.

Every setting runs with --busy pure-Python spin loops beside it (started here, killed at the
end) and with none; settings alternate within each round so that drifting load hits all alike.
The table shows img/s (median of rounds) and each setting's ratio to "old":

    python scripts/bench_load.py --rounds 3 --images 1024 [--busy 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
SETTINGS: dict[str, tuple[dict[str, str], int | None]] = {
    "old": ({"GOMP_SPINCOUNT": "300000"}, None),  # (environment before torch loads, threads)
    "new": ({}, None),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, None),
    "threads1": ({}, 1),
}


def child(threads: int, images: int) -> None:
    """Train once in this process and print the result as one JSON line."""
    import scaler  # noqa: F401  (bounds the spin count unless the environment set one)
    from scaler.data import parse_data
    from scaler.proxy import resolve_proxy
    from scaler.spec import preset
    from scaler.train import train

    overrides = {"images": images, "epochs": 1, "device": "cpu", "threads": threads or None}
    cfg = resolve_proxy("standard", overrides)
    r = train(preset("b0", cfg.base_pixels), parse_data("embedded"), cfg)
    seen = {k: os.environ.get(k, "unset") for k in KEYS}
    print(json.dumps({"images_per_s": r.images_per_s, "threads": r.threads, **seen}))


def measure(name: str, images: int, timeout: float) -> dict:
    """One training run of setting ``name`` in a fresh subprocess."""
    given, threads = SETTINGS[name]
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    env.update(given)
    cmd = [sys.executable, __file__, "--child", str(threads or 0)]
    done = subprocess.run(
        [*cmd, "--images", str(images)], env=env, capture_output=True, text=True,
        timeout=timeout, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_block(busy: int, images: int, timeout: float, rates: dict[str, list[float]]) -> None:
    """One run of every setting with ``busy`` spin loops beside it (always killed after)."""
    spinners: list[subprocess.Popen] = []
    try:
        for _ in range(busy):
            spinners.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        for name in SETTINGS:
            r = measure(name, images, timeout)
            rates[f"{name}@{busy}"].append(r["images_per_s"])
            print(f"  {name:8s} busy={busy} threads={r['threads']} spin={r['GOMP_SPINCOUNT']} "
                  f"policy={r['OMP_WAIT_POLICY']} {r['images_per_s']:7.1f} img/s",
                  file=sys.stderr, flush=True)  # fmt: skip
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=3, help="busy processes beside each run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=1024, help="training images per run")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per training run")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--child", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.images)
        return
    loads = (args.busy, 0) if args.busy else (0,)
    rates: dict[str, list[float]] = {f"{s}@{b}": [] for s in SETTINGS for b in loads}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
        for busy in loads:
            run_block(busy, args.images, args.timeout, rates)
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = {k: med[k] / med[f"old@{k.split('@')[1]}"] for k in med}
    if args.json:
        out = {"cpus": os.cpu_count(), "busy": args.busy, "rounds": args.rounds,
               "images": args.images, "images_per_s": med, "rounds_images_per_s": rates,
               "ratio_to_old": ratio, "new_over_old_loaded": ratio[f"new@{loads[0]}"]}  # fmt: skip
        print(json.dumps(out, indent=2))
        return
    print(f"B0 on the CPU ({os.cpu_count()} cores), {args.images} images, median of "
          f"{args.rounds} round(s); img/s and ratio to 'old'")  # fmt: skip
    print(f"{'setting':10s}" + "".join(f"{f'busy={b}':>10s}{'ratio':>8s}" for b in loads))
    for s in SETTINGS:
        cells = (f"{med[f'{s}@{b}']:10.1f}{ratio[f'{s}@{b}']:8.2f}" for b in loads)
        print(f"{s:10s}" + "".join(cells))
    print(f"new/old with {loads[0]} busy processes: {ratio[f'new@{loads[0]}']:.2f}")


if __name__ == "__main__":
    main()
