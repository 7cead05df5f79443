"""Learning-rate range test of a proxy preset: top-1 of small and big networks over peak lrs.

Each network (official members b0..b7, or dN for B0 at depth N) trains with the preset's whole
schedule at each peak lr and seed; one CSV row per run, appended as it finishes (a run cut
short keeps its rows). The preset's lr is the one that maximises the mean top-1 over the
networks: a value that suits B0 but not B3 would bias every search towards small networks.

  python scripts/lr_range.py --proxy standard --members b0,b3,d2 \\
      --lrs 0.0025,0.005,0.01,0.02,0.04 --seeds 2 --out lr.csv [--set base_pixels=48 ...]
  python scripts/lr_range.py --members b0 --lrs 0.005 --seeds 4 --test --out noise.csv
      # test_top1 too: is a run's seed-to-seed spread in the network or in the val split?
  python scripts/lr_range.py --summary lr.csv        # mean ± sd per (network, lr)
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

FIELDS = ("proxy", "data", "settings", "network", "pixels", "lr", "seed", "top1", "seconds")


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def network(name: str, base_pixels: int):
    from scaler.spec import preset, scale

    if name.startswith("d"):
        return scale(float(name[1:]), 1.0, base_pixels=base_pixels)
    return preset(name, base_pixels)


def run(args) -> None:
    from scaler.data import parse_data
    from scaler.proxy import resolve_proxy
    from scaler.train import train

    overrides = dict(kv.split("=", 1) for kv in args.set)
    overrides = {k: _value(v) for k, v in overrides.items()}
    settings = resolve_proxy(args.proxy, overrides)
    source = parse_data(args.data)
    new = not args.out.exists()
    # test_top1 only when asked: older files of this script have no such column.
    fields = (*FIELDS, "test_top1") if args.test else FIELDS
    with args.out.open("a", newline="") as f:
        writer = csv.DictWriter(f, fields)
        if new:
            writer.writeheader()
        for name in args.members.split(","):
            spec = network(name, settings.base_pixels)
            for lr in (float(x) for x in args.lrs.split(",")):
                cfg = resolve_proxy(args.proxy, {**overrides, "lr": lr})
                for k in range(args.first_seed, args.first_seed + args.seeds):
                    r = train(spec, source, cfg, seed=cfg.seed + k, test=args.test)
                    row = dict(proxy=args.proxy, data=args.data, settings=" ".join(args.set))
                    row.update(network=name, pixels=spec.pixels, lr=lr, seed=cfg.seed + k)
                    row.update(top1=round(r.top1, 2), seconds=round(r.wall_time, 1))
                    if args.test:
                        row["test_top1"] = round(r.test.top1, 2)
                    writer.writerow(row)
                    f.flush()
                    print(row, flush=True)


def summary(path: Path) -> None:
    groups = defaultdict(list)
    with path.open() as f:
        for row in csv.DictReader(f):
            key = (row["data"], row["settings"], row["network"], float(row["lr"]))
            groups[key].append(float(row["top1"]))
    for key in sorted(groups):
        xs = groups[key]
        m = sum(xs) / len(xs)
        sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else math.nan
        print(*key, f"{m:.2f} ± {sd:.2f} (n={len(xs)})", sep=" | ")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--proxy", default="standard")
    ap.add_argument("--data", default="embedded")
    ap.add_argument("--members", default="b0,b3,d2")
    ap.add_argument("--lrs", default="0.0025,0.005,0.01,0.02,0.04")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds are FIRST..FIRST+SEEDS-1")
    ap.add_argument("--test", action="store_true", help="also score the test split (test_top1)")
    ap.add_argument("--set", action="append", default=[], help="proxy override key=value")
    ap.add_argument("--out", type=Path, default=Path("lr_range.csv"))
    ap.add_argument("--summary", type=Path, default=None)
    args = ap.parse_args()
    if args.summary is not None:
        summary(args.summary)
    else:
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
