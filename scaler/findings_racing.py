"""The race of a confirmation (``--seeds auto``), as its trials hold it.

A raced network is trained over several trials, one per round (:mod:`scaler.confirm`);
:func:`network_rows` joins them into one row per network, :func:`race_of` replays the race's
decisions (:func:`scaler.racing.decide`) from the finished trials, and :class:`Race` is what a
confirmation reports of it (:mod:`scaler.findings_confirm`): why it stopped and the paired
difference its final runs resolve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scaler.racing import AUTO, TIME_BUDGET, Decision, decide
from scaler.records import BASE_ROLE, CONFIRM_ROLE
from scaler.results import LEVEL, confirmed
from scaler.stats import sample_sd


@dataclass(frozen=True)
class Race:
    """Where a raced confirmation (``--seeds auto``) stands, replayed from its trials."""

    reason: str | None  # one winner, max seeds, time budget, all remaining indistinguishable
    round: int  # seeds of every network still in the race
    max_seeds: int
    survivors: int  # candidates still possibly best
    resolves: float = math.nan  # paired difference its final runs detect (80 % power, 5 %)

    def sentence(self) -> str:
        if self.reason is None:
            return (
                f"Racing (--seeds auto, at most {self.max_seeds} seeds): round {self.round} of "
                f"{self.survivors} candidates still possibly best is not finished; rerun the "
                "command to continue it."
            )
        resolves = (
            f"; its final {self.round} paired runs detect a paired difference of "
            f"{self.resolves:.2f} points with 80 % power at the 5 % level"
            if math.isfinite(self.resolves)
            else ""
        )
        more = (
            " The same command with a larger --time goes on with the race."
            if self.reason == TIME_BUDGET
            else ""
        )
        return (
            f"Racing (--seeds auto, at most {self.max_seeds} seeds) stopped after round "
            f"{self.round}: {self.reason} ({self.survivors} candidate"
            f"{'s' if self.survivors != 1 else ''} possibly best){resolves}.{more}"
        )


# Per-run columns a race's trials of one network hold in parts, one part per round.
RUN_COLUMNS = ("top1_seeds", "val_correct", "test_top1_seeds", "test_correct", "balanced_seeds")


def network_rows(conf):
    """One row per confirmed network (the frame rows of :func:`scaler.results.confirmed`): a
    raced network's trials (one per round) as one row, its runs in seed order, its mean and
    spread over all of them, numbered as its first trial."""
    import pandas as pd

    rows = []
    for _, group in conf.sort_values("number").groupby("confirm_of", sort=False):
        if len(group) == 1:
            rows.append(group.iloc[0])
            continue
        row = group.iloc[0].copy()
        by_seed: dict[int, dict[str, Any]] = {}
        for _, r in group.iterrows():
            for i, seed in enumerate(r["seed_list"]):
                by_seed[int(seed)] = {c: _part(r[c], i) for c in RUN_COLUMNS}
        seeds = sorted(by_seed)
        for c in RUN_COLUMNS:
            parts = [by_seed[k][c] for k in seeds]
            row[c] = None if any(x is None for x in parts) else parts
        top1 = row["top1_seeds"]
        row["seed_list"], row["seeds"] = seeds, len(seeds)
        row["top1_mean"], row["top1_std"] = sum(top1) / len(top1), sample_sd(top1)
        balanced = row.get("balanced_seeds")
        row["balanced_mean"] = sum(balanced) / len(balanced) if balanced else None
        row["wall_time"] = group["wall_time"].sum()
        rows.append(row)
    return pd.DataFrame(rows, columns=conf.columns) if rows else conf


def _part(values, i: int):
    return values[i] if isinstance(values, list) and i < len(values) else None


def race_of(frame, stored: dict[str, Any] | None, stopped: int | None) -> Decision | None:
    """Where a raced confirmation stands (None: not raced, or not run), replayed from its
    finished trials: each network's top-1 by seed index, the base as the reference.
    ``stored``: the confirmation's stored settings and networks; ``stopped``: the round after
    which a time budget stopped it."""
    if stored is None or stored["settings"].get("seeds") != AUTO:
        return None
    seed0 = int(stored["proxy"].get("seed", 0))
    by_net: dict[int, dict[int, float]] = {}
    for _, r in confirmed(frame).iterrows():
        for seed, top1 in zip(r["seed_list"] or [], r["top1_seeds"] or [], strict=False):
            by_net.setdefault(int(r["confirm_of"]), {})[int(seed) - seed0] = float(top1)
    runs = {}
    for p in stored["points"]:
        got = by_net.get(p["trial"], {})
        runs[p["trial"]] = list(_contiguous(got))
    roles = {p["trial"]: p["role"] for p in stored["points"]}
    base = next((n for n, role in roles.items() if role == BASE_ROLE), None)
    rows = frame[(frame["role"] == CONFIRM_ROLE) & (frame["status"] == "failed")]
    failed = {int(x) for x in rows["confirm_of"].dropna()}
    return decide(
        runs,
        [n for n, role in roles.items() if role != BASE_ROLE],
        base,
        int(stored["settings"]["max_seeds"]),
        LEVEL,
        stopped,
        failed,
    )


def _contiguous(by_index: dict[int, float]):
    """The values of seed 0, 1, ... up to the first missing one."""
    k = 0
    while k in by_index:
        yield by_index[k]
        k += 1


def race_summary(d: Decision | None, settings: dict[str, Any]) -> Race | None:
    """The Race a confirmation reports of a decision (None: not raced)."""
    if d is None:
        return None
    return Race(d.reason, d.round, int(settings["max_seeds"]), len(d.survivors), d.resolves)
