"""Proxy fidelity against a known truth: do short proxy runs order B0..B3 as ImageNet does?

``calibrate`` trains official members at the proxy (each with its own resolution multiplier
applied to the proxy's base size) with paired seeds (seed k is the same data order, augmentation
stream and init seed for every member), then compares their order with the paper's ImageNet top-1
(Table 2) by Kendall's τ: :mod:`scaler.findings_calibration` computes τ per seed and averaged
(the figure the README's target is stated in), for the members' mean accuracies, and its 95 %
interval (a paired bootstrap over seeds), and writes the report's sentences.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from scaler.findings_calibration import PAPER_TOP1, report_text, tau_statistics
from scaler.proxy import ProxyConfig, resolve_proxy

DEFAULT_MEMBERS: Final = ("b0", "b1", "b2", "b3")


@dataclass(frozen=True)
class CalibrationConfig:
    """What a calibration trains: members, paired seeds, data and proxy."""

    members: tuple[str, ...] = DEFAULT_MEMBERS
    seeds: int = 3
    data: str = "embedded"
    proxy: str = "standard"
    proxy_overrides: tuple[tuple[str, Any], ...] = ()

    def proxy_config(self) -> ProxyConfig:
        return resolve_proxy(self.proxy, self.proxy_overrides)

    def validate(self) -> CalibrationConfig:
        """Raise ValueError (one line, naming the option) on invalid settings."""
        unknown = [m for m in self.members if m not in PAPER_TOP1]
        if unknown:
            raise ValueError(
                f"--members {','.join(self.members)!r} is invalid: {unknown[0]!r} is not an "
                f"official member; valid: {', '.join(PAPER_TOP1)}"
            )
        if len(set(self.members)) < 2 or len(set(self.members)) != len(self.members):
            raise ValueError(
                f"--members {','.join(self.members)!r} is invalid: name at least 2 distinct "
                "members, e.g. b0,b1,b2,b3"
            )
        if not 2 <= self.seeds <= 100:
            raise ValueError(f"--seeds {self.seeds} is invalid: it must be in 2..100")
        self.proxy_config()  # unknown presets / invalid overrides raise here
        return self


@dataclass(frozen=True)
class MemberRuns:
    """One member's paired runs."""

    member: str
    pixels: int
    params: int
    flops: int
    top1: tuple[float, ...]  # seed k at index k
    wall_time: float

    @property
    def mean(self) -> float:
        return sum(self.top1) / len(self.top1)

    @property
    def std(self) -> float:
        m, n = self.mean, len(self.top1)
        return math.sqrt(sum((x - m) ** 2 for x in self.top1) / (n - 1))


@dataclass(frozen=True)
class Calibration:
    """A calibration's result; ``to_dict`` is what ``calibration.json`` holds."""

    config: CalibrationConfig
    proxy: dict[str, Any]
    data_classes: int
    runs: tuple[MemberRuns, ...]
    tau_per_seed: tuple[float, ...]
    tau_mean: float  # mean of tau_per_seed: the figure the target is stated in
    tau_of_means: float
    tau_interval: tuple[float, float]  # 95 % paired bootstrap over seeds, of tau_mean
    wall_time: float

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["config"]["members"] = list(self.config.members)
        d["paper_top1"] = {m: PAPER_TOP1[m] for m in self.config.members}
        for r, row in zip(self.runs, d["runs"], strict=True):
            row.update(mean=r.mean, std=r.std)
        return d


def plan(cfg: CalibrationConfig, source) -> list[tuple[str, Any]]:
    """(member, spec at the proxy) pairs; ValueError when the data cannot serve a member."""
    from scaler.spec import preset

    base = cfg.proxy_config().base_pixels
    specs = [(m, preset(m, base)) for m in cfg.members]
    for m, spec in specs:
        if source.max_pixels is not None and spec.pixels > source.max_pixels:
            raise ValueError(
                f"--base-pixels {base} is invalid for --data {cfg.data}: {m} trains at "
                f"{spec.pixels} px and the data serve at most {source.max_pixels} px"
            )
    return specs


Progress = Callable[[str, int, float], None]  # member, seed index, top-1


def calibrate(cfg: CalibrationConfig, progress: Progress | None = None) -> Calibration:
    """Train every member with every paired seed and measure the order against the paper's."""
    import time

    from scaler.complexity import count
    from scaler.data import parse_data
    from scaler.train import train

    cfg.validate()
    proxy = cfg.proxy_config()
    source = parse_data(cfg.data)
    specs = plan(cfg, source)
    start = time.perf_counter()
    runs = []
    for member, spec in specs:
        results = []
        for k in range(cfg.seeds):
            results.append(train(spec, source, proxy, seed=proxy.seed + k))
            if progress is not None:
                progress(member, k, results[-1].top1)
        cost = count(spec, source.num_classes)
        runs.append(
            MemberRuns(
                member=member,
                pixels=spec.pixels,
                params=cost.params,
                flops=cost.flops,
                top1=tuple(r.top1 for r in results),
                wall_time=sum(r.wall_time for r in results),
            )
        )
    per_seed, mean, of_means, interval = tau_statistics(runs)
    return Calibration(
        config=cfg,
        proxy=proxy.to_dict(),
        data_classes=source.num_classes,
        runs=tuple(runs),
        tau_per_seed=per_seed,
        tau_mean=mean,
        tau_of_means=of_means,
        tau_interval=interval,
        wall_time=time.perf_counter() - start,
    )


def write_report(cal: Calibration, out) -> list:
    """Write ``calibration.json``, ``runs.csv`` and ``README.md`` into the folder ``out``."""
    import json

    from scaler.files import write_files

    rows = ["member,seed,pixels,params,flops,top1"]
    for r in cal.runs:
        for k, t in enumerate(r.top1):
            rows.append(f"{r.member},{cal.proxy['seed'] + k},{r.pixels},{r.params},{r.flops},{t}")
    files = {
        "calibration.json": json.dumps(cal.to_dict(), indent=2) + "\n",
        "runs.csv": "\n".join(rows) + "\n",
        "README.md": report_text(cal),
    }
    return write_files(out, files)
