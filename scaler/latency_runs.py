"""Latency of what is stored: a search's candidates timed again, a family's members timed.

:func:`remeasure` is the check of ``--constraint latency``: in new processes, every trained
candidate of a search is timed again against the base (:func:`scaler.latency.compare`, with the
mode, device and threads the search stored) and its ratio compared with the budget.
:func:`family_latency` times the members of a scaled family against φ = 0, for ``scaler family``
and ``scaler export`` (``--measure-latency``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from scaler.latency import Latency, LatencySettings

# The check's bound: a trained candidate's latency, timed again, within ±10 % of the budget.
CHECK_BOUND = 0.10
# A family member is timed once, not solved for: fewer pairs than a solve's.
FAMILY_PAIRS = 30
_TRAINED = ("trained", "reused", "pruned")


@dataclass(frozen=True)
class CheckRow:
    """One trained candidate: its latency in the search and timed again here."""

    number: int
    role: str
    alpha: float
    beta: float
    cost_pixels: int
    searched: float | None  # the ratio the search recorded (None: not measured there)
    ratio: float  # timed again, in processes other than the search's
    low: float
    high: float
    pairs: int
    flops_ratio: float | None  # measured FLOPs ÷ the base's, beside it
    miss: float  # ratio ÷ the budget − 1
    processes: int = 1  # separate processes whose mean ratio is ``ratio``

    def within(self, bound: float) -> bool:
        return abs(self.miss) <= bound


@dataclass(frozen=True)
class LatencyCheck:
    """Every trained candidate of a search timed again, against its budget."""

    study: str
    budget: float
    constraint: str
    settings: LatencySettings
    machine: str
    rows: tuple[CheckRow, ...]
    bound: float = CHECK_BOUND

    @property
    def met(self) -> bool:
        """Every trained candidate within the bound (only a latency budget can miss it)."""
        if self.constraint != "latency":
            return True
        return bool(self.rows) and all(r.within(self.bound) for r in self.rows)

    def frame(self):
        """A row per candidate; its columns even when none was trained (the CSV keeps a header)."""
        import pandas as pd

        columns = [f.name for f in dataclasses.fields(CheckRow)]
        return pd.DataFrame([dataclasses.asdict(r) for r in self.rows], columns=columns)

    def verdict(self) -> str:
        if not self.rows:
            return f"{self.study}: no trained candidate to time"
        worst = max(self.rows, key=lambda r: abs(r.miss))
        n_in = sum(r.within(self.bound) for r in self.rows)
        text = (
            f"{n_in} of {len(self.rows)} trained candidates within ±{self.bound:.0%} of "
            f"{self.budget:g}× the base's latency, timed again here ({self.settings.mode} on "
            f"{self.machine}); the largest miss is {worst.miss:+.1%} (trial {worst.number})"
        )
        if self.constraint != "latency":  # a FLOPs budget: how far time follows it
            text += f"; the budget here is on {self.constraint} FLOPs, not latency"
        return text


def stored_settings(config: dict[str, Any], num_classes: int, device: str | None = None):
    """The latency settings a search stored: its mode, the proxy's device and threads."""
    proxy = config.get("proxy") or {}
    mode = config.get("latency") or config.get("latency_record") or "batch1"
    return LatencySettings(
        mode="batch1" if mode == "off" else mode,
        device=device or proxy.get("device") or "auto",
        threads=proxy.get("threads"),
        channels_last=proxy.get("channels_last", True),
        num_classes=num_classes,
    )


def remeasure(
    study_name: str,
    storage: str | None = None,
    bound: float = CHECK_BOUND,
    device: str | None = None,
) -> LatencyCheck:
    """Time every trained candidate of a search again, against the base, in new processes."""
    from scaler.bases import from_config
    from scaler.latency import compare, machine_name
    from scaler.results import trials_frame
    from scaler.spec import scale
    from scaler.studies import load_study, stored_config

    st = load_study(study_name, storage)
    config = stored_config(st)
    net = from_config(config)
    # The data's classes size the head, as in the search (studies before rates: 1000).
    num_classes = len((st.user_attrs.get("class_rates") or {}).get("classes") or range(1000))
    settings = stored_settings(config, num_classes, device)
    res = int(config.get("cost_pixels", net.pixels))
    base_spec = scale(base_pixels=res, base=net)
    frame = trials_frame(st)
    rows = []
    for _, r in frame[frame["status"].isin(_TRAINED) & (frame["role"] != "base")].iterrows():
        spec = scale(r["alpha"], r["beta"], base_pixels=res, pixels=int(r["cost_pixels"]), base=net)
        lat = compare(spec, base_spec, settings)
        rows.append(_check_row(r, lat, float(config["budget"])))
    from scaler.device import select_device

    machine = machine_name(select_device(settings.device))
    constraint = config.get("constraint", "")
    budget = float(config["budget"])
    return LatencyCheck(study_name, budget, constraint, settings, machine, tuple(rows), bound)


def _check_row(r, lat: Latency, budget: float) -> CheckRow:
    def num(x):
        return None if x is None or x != x else float(x)

    return CheckRow(
        number=int(r["number"]),
        role=str(r["role"]),
        alpha=float(r["alpha"]),
        beta=float(r["beta"]),
        cost_pixels=int(r["cost_pixels"]),
        searched=num(r.get("latency_ratio")),
        ratio=lat.ratio,
        low=lat.low,
        high=lat.high,
        pairs=lat.pairs,
        flops_ratio=num(r.get("cost_ratio")),
        miss=lat.ratio / budget - 1,
        processes=lat.processes,
    )


def family_latency(specs: list, settings: LatencySettings) -> list[Latency | None]:
    """Each spec timed against the first (φ = 0); None for a member that cannot be built."""
    from scaler.latency import compare

    settings = dataclasses.replace(settings, max_pairs=min(settings.max_pairs, FAMILY_PAIRS))
    base = specs[0]
    return [None if s is None else compare(s, base, settings) for s in specs]


def export_latency(payload: dict[str, Any], settings: LatencySettings) -> dict[str, Any]:
    """An export's payload with each member's latency against φ = 0 and how it was timed."""
    from scaler.exports import Member, header

    h = header(payload, "<export>")
    members = [Member.from_dict(row, h.base) for row in payload["family"]]
    specs = [None if m.limit else m.spec() for m in members]
    settings = dataclasses.replace(settings, num_classes=members[0].num_classes)
    lats = family_latency(specs, settings)
    for row, lat in zip(payload["family"], lats, strict=True):
        if lat is not None:
            row["latency_ms"] = round(lat.seconds * 1e3, 4)
            row["latency_ratio"] = round(lat.ratio, 4)
            row["latency_interval"] = [round(lat.low, 4), round(lat.high, 4)]
    timed = next((lat for lat in lats if lat is not None), None)
    payload["latency"] = {
        "mode": settings.mode,
        "batch": settings.batch,
        "device": timed.device if timed else settings.device,
        "machine": timed.machine if timed else "",
        "threads": settings.threads,
        "processes": timed.processes if timed else settings.processes,
        "what": "time of one run; ratio against φ = 0, timed in alternation: in each process "
        "the median of per-pair ratios, then the mean over the processes, with its 95 % t "
        "interval (one process: of that median, by order statistics)",
    }
    return payload
