"""The trial record: what every scaler trial stores, read and written in this one place.

A trial's outcome is a :class:`Status` (never a free string) and everything else it stores is a
field of :class:`TrialRecord`; the runner writes fields with :func:`write` (which refuses a name
that is not a field) and every reader, from result frames to reports and exports, goes through
:meth:`TrialRecord.from_trial`. Stored values are plain strings and numbers in optuna user
attributes, exactly as version 0.1 wrote them, so its studies load unchanged.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

# Roles of the trials of a search that compete for "best"; the base is the reference.
CANDIDATE_ROLES = ("paper", "grid", "sampled")
BASE_ROLE = "base"  # a search's unscaled network (1×), trained base_seeds times: the noise floor
SWEEP_ROLE = "sweep"
# A search's confirmation trials: a finished network trained again with a longer proxy and more
# seeds (its own role, so nothing that ranks search candidates ever mixes them in).
CONFIRM_ROLE = "confirm"
# What a search ranks its networks by (--metric): top-1, or balanced accuracy (mean per-class
# recall on val, for imbalanced data where a network can score by favouring the big classes).
METRICS = ("top1", "balanced")
METRIC_NAMES = {"top1": "top-1", "balanced": "balanced accuracy"}


def metric_columns(metric: str = "top1") -> tuple[str, str]:
    """The frame columns (mean, per-run list) of a ranking metric."""
    if metric == "balanced":
        return "balanced_mean", "balanced_seeds"
    return "top1_mean", "top1_seeds"


# A calibration's trials: one (official member, paired seed) run each.
CALIBRATE_ROLE = "calibrate"
# A noise study's trials (scaler noise): one (network, paired seed) run each.
NOISE_ROLE = "noise"


class Status(str, enum.Enum):
    """Why a trial ended as it did (stored as its string value)."""

    TRAINED = "trained"  # trained here
    REUSED = "reused"  # copied from a finished trial of the same realized network
    INFEASIBLE = "infeasible"  # cannot meet the budget: never trained
    SKIPPED = "skipped"  # above a sweep's cap, or more pixels than the data serve
    PRUNED = "pruned"  # stopped early by the study's pruner
    FAILED = "failed"  # raised (NaN, out of memory, bad data): kept, not retried
    DUPLICATE = "duplicate"  # its point was queued twice by racing workers: the other one runs
    INTERRUPTED = "interrupted"  # Ctrl-C: queued again
    STALE = "stale"  # its worker stopped sending heartbeats (killed): queued again
    LOST = "lost"  # failed with no record (an old crash): queued again
    WAITING = "waiting"  # queued, not yet claimed
    RUNNING = "running"  # claimed by a worker

    def __str__(self) -> str:
        return self.value

    @property
    def requeued(self) -> bool:
        """The point of a trial that ended so is queued again."""
        return self in (Status.INTERRUPTED, Status.STALE, Status.LOST)


def point_id(role: str, alpha: float, beta: float) -> str:
    """Identity of a search point within its study: role and (α, β)."""
    return f"{role}:{alpha:.6f}:{beta:.6f}"


def stale_key(number: int) -> str:
    """The study attribute holding why trial ``number`` was failed as stale.

    optuna forbids writing to a finished trial, so the reason lives on the study.
    """
    return f"stale:{number}"


@dataclass(frozen=True)
class TrialRecord:
    """Everything a scaler trial stores (optuna user attributes), typed."""

    role: str = ""  # base | paper | grid | sampled | sweep
    point: str | None = None  # identity of its queued point (enqueue is idempotent by it)
    status: Status | None = None
    reason: str = ""
    # the realized network and its costs
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None  # effective: the candidate's cost pixels ÷ the base's
    gamma_nominal: float | None = None
    cost_pixels: int | None = None
    pixels: int | None = None
    layers: int | None = None
    channels: list[int] | None = None
    params: int | None = None
    activations: int | None = None
    flops: int | None = None  # fvcore, at the proxy's pixels
    cost_flops: int | None = None  # a sweep point's fvcore FLOPs at r × the cost pixels (224)
    nominal_cost: float | None = None
    cost_ratio: float | None = None  # measured FLOPs ÷ base at the cost pixels
    proxy_cost_ratio: float | None = None  # the same at the proxy's pixels
    network_key: str | None = None
    infeasible: str = ""  # the reason a candidate cannot be trained
    # results
    top1_seeds: list[float] | None = None
    top5_seeds: list[float] | None = None
    top1_mean: float | None = None
    top1_std: float | None = None
    top5_mean: float | None = None
    wall_time: float | None = None
    images_per_s: float | None = None
    loss_curve: list[float] | None = None
    reused_from: int | None = None
    worker: str | None = None  # host:pid of the worker that ran it
    worker_index: int | None = None  # its place among one command's --workers (None: alone)
    requeued_from: int | None = None  # the lost trial this one queues again
    # sweeps
    sweep: str | None = None
    series: str | None = None
    label: str | None = None
    depth: float | None = None
    width: float | None = None
    resolution: float | None = None
    value_name: str | None = None
    point_value: float | None = None
    phi: int | None = None
    # paired runs (version 0.3): seed k of every trial of a stage is the same seed
    seed_list: list[int] | None = None  # the seed of each run, in the order of top1_seeds
    val_correct: list[str] | None = None  # per run: which val images it got right (pack_bits)
    test_correct: list[str] | None = None  # the same on the test split, when the data have one
    test_top1_seeds: list[float] | None = None  # per run: top-1 on the test split (never ranked)
    # version 0.6: the CPU threads torch trained the runs with (runs pair only at the same count)
    threads: int | None = None
    # version 0.7: a noise study's runs scored every other way (scaler.scoring.VARIANTS), per
    # run: name → {val_top1, val (pack_bits), test_top1, test, seconds}; "plain" holds the
    # run's wall_time, against which a scoring's extra seconds (over "last") are its cost.
    variants: list[dict[str, dict[str, Any]]] | None = None
    # version 0.7: per run, balanced accuracy (mean per-class recall, %) on val, and its mean
    balanced_seeds: list[float] | None = None
    balanced_mean: float | None = None
    # version 0.7: latency at the cost pixels against the base's, timed in alternation
    # (scaler.latency), whatever the constraint: ratio, its 95 % interval, both medians (ms)
    latency_ratio: float | None = None
    latency_low: float | None = None
    latency_high: float | None = None
    latency_ms: float | None = None
    base_latency_ms: float | None = None
    latency_pairs: int | None = None
    latency_processes: int | None = None  # the mean of this many processes' ratios
    latency_mode: str | None = None
    latency_device: str | None = None
    latency_machine: str | None = None
    # confirmation trials
    confirm_of: int | None = None  # the search trial whose network this one trains again
    confirm_role: str | None = None  # that trial's role (base, paper, grid, sampled)
    # calibration trials (scaler calibrate): one run of an official member with one paired seed
    member: str | None = None  # b0..b7; a noise study's network label (scaler.noise)
    seed_index: int | None = None  # k: the run's seed is the proxy's seed + k

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> TrialRecord:
        """A record from stored user attributes (unknown keys ignored, missing ones None)."""
        values = {k: v for k, v in attrs.items() if k in FIELDS}
        if values.get("status"):
            values["status"] = Status(values["status"])
        if values.get("point") is None and values.get("role") and "alpha" in values:
            # Search trials of version 0.1 stored no point id: derive it as it was queued.
            values["point"] = point_id(values["role"], values["alpha"], values["beta"])
        return cls(**values)

    @classmethod
    def from_trial(cls, trial) -> TrialRecord:
        return cls.from_attrs(trial.user_attrs)

    @property
    def results(self) -> dict[str, Any]:
        """The result fields, as a reused trial copies them from its twin."""
        return {k: getattr(self, k) for k in RESULT_FIELDS if getattr(self, k) is not None}


FIELDS = frozenset(f.name for f in dataclasses.fields(TrialRecord))
RESULT_FIELDS = (
    "top1_seeds",
    "top5_seeds",
    "top1_mean",
    "top1_std",
    "top5_mean",
    "wall_time",
    "images_per_s",
    "loss_curve",
    "seed_list",
    "val_correct",
    "test_correct",
    "test_top1_seeds",
    "threads",
    "variants",
    "balanced_seeds",
    "balanced_mean",
)


def pack_bits(flags) -> str:
    """Per-image correctness (a boolean sequence or tensor) as ``"N:base64"``.

    One bit per image, so a run over the embedded data's 650 val images stores 4 + 112
    characters, and over a 10,000-image test split 6 + 1,668.
    """
    import base64

    import numpy as np

    bits = np.asarray(flags, dtype=bool).ravel()
    packed = np.packbits(bits, bitorder="little").tobytes()
    return f"{bits.size}:{base64.b64encode(packed).decode('ascii')}"


def unpack_bits(text: str):
    """The boolean numpy array :func:`pack_bits` stored."""
    import base64

    import numpy as np

    n, _, data = text.partition(":")
    raw = np.frombuffer(base64.b64decode(data), dtype=np.uint8)
    return np.unpackbits(raw, count=int(n), bitorder="little").astype(bool)


def write(trial, **values: Any) -> None:
    """Store record fields on a running optuna trial; a name that is no field is a bug."""
    for key, value in values.items():
        if key not in FIELDS:
            raise KeyError(f"{key!r} is not a TrialRecord field")
        if isinstance(value, Status):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        trial.set_user_attr(key, value)


def record_runs(
    trial, runs: list, test: bool, threads: int | None = None, balanced: list | None = None
) -> float:
    """Write a point's runs (seed k at index k) on ``trial``, with the CPU ``threads`` they were
    trained with and each run's ``balanced`` accuracy when given; returns their mean top-1."""
    import statistics

    if balanced:
        write(trial, balanced_seeds=balanced, balanced_mean=sum(balanced) / len(balanced))

    top1 = [r.top1 for r in runs]
    mean = sum(top1) / len(top1)
    if test:
        write(
            trial,
            test_top1_seeds=[r.test.top1 for r in runs],
            test_correct=[pack_bits(r.test.correct) for r in runs],
        )
    if any(r.variants for r in runs):
        write(trial, variants=[_variant_attrs(r) for r in runs])
    write(
        trial,
        seed_list=[r.seed for r in runs],
        val_correct=[pack_bits(r.val_correct) for r in runs],
        top1_seeds=top1,
        top5_seeds=[r.top5 for r in runs],
        top1_mean=mean,
        top1_std=statistics.stdev(top1) if len(top1) > 1 else None,
        top5_mean=sum(r.top5 for r in runs) / len(runs),
        wall_time=sum(r.wall_time for r in runs),
        images_per_s=sum(r.images_per_s for r in runs) / len(runs),
        loss_curve=list(runs[0].loss_curve),
        threads=threads,
        status=Status.TRAINED,
    )
    return mean


def _variant_attrs(result) -> dict[str, dict[str, Any]]:
    """One run's other scorings, stored: name → top-1, per-image hits and seconds."""
    out = {}
    for v in result.variants:
        out[v.name] = {
            "val_top1": v.val.top1,
            "val": pack_bits(v.val.correct),
            "seconds": v.seconds,
        }
        if v.test is not None:
            out[v.name].update(test_top1=v.test.top1, test=pack_bits(v.test.correct))
    out["plain"] = {"wall_time": result.wall_time}
    return out
