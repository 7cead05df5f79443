"""Each trial's clock in a study, as CSV: when it started and ended (seconds after the study's
first trial started), on which worker, what it trained and how fast. The data behind the
per-trial timings docs/gpu.md quotes.

  python scripts/trial_clock.py STUDY STORAGE_URL > clock.csv
"""

from __future__ import annotations

import csv
import sys


def main(study_name: str, storage: str) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=storage)
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_start is not None]
    t0 = min(t.datetime_start.timestamp() for t in trials)
    out = csv.writer(sys.stdout)
    fields = ("role", "seed_list", "worker", "status", "pixels", "layers", "flops")
    out.writerow(["trial", "start_s", "end_s", *fields, "wall_time", "images_per_s"])
    for t in trials:
        a = t.user_attrs
        if a.get("status") in ("infeasible", "skipped"):
            continue  # no run
        end = t.datetime_complete.timestamp() - t0 if t.datetime_complete else None
        out.writerow(
            [t.number, round(t.datetime_start.timestamp() - t0, 1), end and round(end, 1)]
            + [a.get(f) for f in fields]
            + [round(a.get("wall_time") or 0, 1), round(a.get("images_per_s") or 0)]
        )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/trial_clock.py STUDY STORAGE_URL")
    main(*sys.argv[1:])
