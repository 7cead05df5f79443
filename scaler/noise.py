"""Where a run's noise comes from: training (which network the seed gives) or the evaluation
draw (which held-out images happen to score it).

``scaler noise`` trains the given networks with N ≥ 6 paired seeds (seed k = the proxy's seed
+ k for every network) and scores every run on both held-out splits, val and test. A run's
val − test difference has no training part (both splits score the same network), so its
spread over seeds measures the evaluation part; the spread of the score over all held-out
images, less that, is the training part. :mod:`scaler.findings_noise` states the split per
network and for the paired difference between networks (the quantity that decides
comparisons); every number is :mod:`scaler.stats`'s (:func:`scaler.stats.split_variance`).

Networks are named on the command line as a comma-separated list (``--networks``), each item
either an official member or explicit multipliers (:func:`parse_network`):

- ``b0`` .. ``b7``: the member, at its own resolution multiplier of the proxy's base pixels;
- ``d=D:w=W:px=P``: depth D and width W multipliers of B0 at P proxy pixels, or
  ``d=D:w=W:r=R`` at R × the proxy's base pixels; d and w default to 1, the size to the base.

A noise study is a kind of study (:class:`scaler.runner.StudyKind`) whose trials are the
(network, seed k) runs of :mod:`scaler.paired`, as a calibration's are: it resumes after Ctrl-C
(the same command trains only the missing runs), and ``--workers N`` shares the runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from scaler import paired
from scaler.data import DEFAULT_DATA
from scaler.findings_noise import NoiseFindings, findings, report_text
from scaler.paired import Progress, RunEnds
from scaler.proxy import ProxyConfig, resolve_proxy
from scaler.records import NOISE_ROLE

KIND: Final = "noise"
DEFAULT_SEEDS: Final = 6
MIN_SEEDS: Final = 6  # below 5 df a variance's 95 % interval spans more than a factor of 4
MAX_SEEDS: Final = 100
_KEYS: Final = ("d", "w", "px", "r")
GRAMMAR: Final = "b0..b7, or d=DEPTH:w=WIDTH:px=PIXELS (or r=RESOLUTION instead of px)"


@dataclass(frozen=True)
class NoiseConfig:
    """What a noise study trains: networks (labels), paired seeds, data and proxy."""

    networks: tuple[str, ...] = ("b0",)
    seeds: int = DEFAULT_SEEDS
    data: str = DEFAULT_DATA
    # --upsample: bilinear | bicubic | off; None: an existing study's own, else bilinear
    upsample: str | None = None
    proxy: str = "standard"
    proxy_overrides: tuple[tuple[str, Any], ...] = ()
    # Also score every run every other way (scaler.scoring.VARIANTS: averaged weights, flip
    # test-time augmentation), each against the proxy's own scoring on the same runs.
    methods: bool = False

    def proxy_config(self) -> ProxyConfig:
        return resolve_proxy(self.proxy, self.proxy_overrides)

    def validate(self) -> NoiseConfig:
        """Raise ValueError (one line, naming the option) on invalid settings."""
        if not MIN_SEEDS <= self.seeds <= MAX_SEEDS:
            raise ValueError(
                f"--seeds {self.seeds} is invalid: it must be in {MIN_SEEDS}..{MAX_SEEDS} "
                f"(a variance from fewer than {MIN_SEEDS - 1} df says little)"
            )
        network_specs(self)  # malformed, unknown or repeated networks raise here
        return self


def parse_network(text: str, base_pixels: int) -> tuple[str, Any]:
    """(label, spec at the proxy) of one ``--networks`` item (grammar: the module's docstring).

    The label is the item written canonically (``b0``, ``d=1:w=1.2:px=56``): the name its runs
    are stored and reported under.
    """
    from scaler.scaling import network_spec

    item = text.strip().lower()
    bad = f"--networks item {text.strip()!r} is invalid"
    if "=" not in item:
        try:
            return item, network_spec(item, base_pixels=base_pixels)
        except ValueError:
            raise ValueError(f"{bad}: it is no official member; give {GRAMMAR}") from None
    values = _fields(item, bad)
    if "px" in values and "r" in values:
        raise ValueError(f"{bad}: give px or r, not both")
    px = values.get("px")
    if px is not None and px != int(px):
        raise ValueError(f"{bad}: px must be a whole number of pixels")
    try:
        spec = network_spec(
            None,
            values.get("d"),
            values.get("w"),
            None if px is None else int(px),
            base_pixels,
            resolution=values.get("r"),
        )
    except ValueError as e:
        raise ValueError(f"{bad}: {e}") from None
    size = f"px={int(px)}" if px is not None else f"r={values.get('r', 1.0):g}"
    return f"d={spec.depth:g}:w={spec.width:g}:{size}", spec


def _fields(item: str, bad: str) -> dict[str, float]:
    """The KEY=NUMBER fields of an explicit network item (ValueError: one line)."""
    values: dict[str, float] = {}
    for field in item.split(":"):
        key, eq, value = (s.strip() for s in field.partition("="))
        if not eq or key not in _KEYS:
            raise ValueError(f"{bad}: {field!r} is not KEY=NUMBER with KEY one of d, w, px, r")
        if key in values:
            raise ValueError(f"{bad}: {key} is given twice")
        try:
            values[key] = float(value)
        except ValueError:
            raise ValueError(f"{bad}: {key}={value!r} is not a number") from None
    return values


def parse_networks(text: str) -> tuple[str, ...]:
    """The items of a ``--networks`` list (checked by :meth:`NoiseConfig.validate`)."""
    return tuple(s.strip() for s in text.split(",") if s.strip())


def network_specs(cfg: NoiseConfig) -> list[tuple[str, Any]]:
    """(label, spec at the proxy) of every network; ValueError for none, or the same twice."""
    if not cfg.networks:
        raise ValueError(f"--networks is empty: name at least one network ({GRAMMAR})")
    base = cfg.proxy_config().base_pixels
    specs = [parse_network(n, base) for n in cfg.networks]
    seen: dict[str, str] = {}
    for label, spec in specs:
        if spec.key_str in seen:
            raise ValueError(
                f"--networks {','.join(cfg.networks)!r} is invalid: {label} is the same "
                f"network as {seen[spec.key_str]} at {spec.pixels} px"
            )
        seen[spec.key_str] = label
    return specs


# ----------------------------------------------------------------------------------------------
# the study: one trial per (network, paired seed), the machinery of scaler.paired
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A validated noise study, ready to run: nothing has been written yet."""

    cfg: NoiseConfig
    study_name: str
    storage_url: str
    source: Any
    specs: tuple[tuple[str, Any], ...]  # (label, spec at the proxy)
    stored: dict[str, Any]


def default_study_name(cfg: NoiseConfig, fingerprint: str) -> str:
    """noise-<data>-<proxy>-<hash6 of the data, the proxy, the networks and seeds>."""
    labels = [label for label, _ in network_specs(cfg)]
    if cfg.methods:  # runs scored every way are another study than runs scored one way
        labels.append("+methods")
    return paired.default_study_name(KIND, cfg, labels, fingerprint)


def prepare(cfg: NoiseConfig, study: str | None = None, storage: str | None = None) -> Prepared:
    """Validate everything a noise study needs (ValueError: one line); writes nothing."""
    from scaler.runner import has_test_split

    source, name, url = paired.target(cfg, study, storage, default_study_name)
    specs = tuple(network_specs(cfg))
    paired.check_served(specs, source, cfg.data, cfg.proxy_config().base_pixels)
    if not has_test_split(source, specs[0][1].pixels):
        raise ValueError(
            f"--data {cfg.data} has no test split: scaler noise scores every run on val and test"
        )
    labels = [label for label, _ in specs]
    stored = paired.stored(cfg, source, "networks", labels)
    if cfg.methods:  # stored only when set: studies of 0.6 had no methods and resume as they are
        stored["methods"] = True
    return Prepared(cfg, name, url, source, specs, stored)


def trial_bytes(p: Prepared) -> int:
    """GPU memory the largest network's run may take."""
    return paired.trial_bytes(p)


def create(p: Prepared):
    """Create the study (its runs queued once), or load it and refuse a changed configuration."""
    return paired.create(p, KIND, NOISE_ROLE)


def work(p: Prepared, progress=None) -> None:
    """Train the queued runs until none is left and no other worker trains one."""
    paired.work(create(p), p, NOISE_ROLE, progress, variants=p.cfg.methods)


@dataclass(frozen=True)
class NetworkRuns:
    """One network's paired runs, seed k at index k; top-1 in percent."""

    network: str
    pixels: int
    params: int
    flops: int
    seeds: tuple[int, ...]
    val: tuple[float, ...]
    test: tuple[float, ...]
    pooled: tuple[float, ...]  # over val and test images together
    seconds: tuple[float, ...]
    val_correct: Any = dataclasses.field(repr=False, compare=False)  # bool [seeds, images]
    test_correct: Any = dataclasses.field(repr=False, compare=False)


@dataclass(frozen=True)
class Noise:
    """A noise study's result; ``to_dict`` is what ``--json`` prints."""

    config: NoiseConfig
    proxy_settings: dict[str, Any]  # the ProxyConfig as stored; --json's "proxy"
    data_classes: int
    runs: tuple[NetworkRuns, ...]
    findings: NoiseFindings
    wall_time: float  # the runs' training time, summed
    methods: tuple[MethodRuns, ...] = ()  # with NoiseConfig.methods: every scoring, "last" first

    def to_dict(self) -> dict[str, Any]:
        d = {
            "config": dataclasses.asdict(self.config),
            "proxy": self.proxy_settings,
            "data_classes": self.data_classes,
            "runs": [
                {k: getattr(r, k) for k in _RUN_FIELDS + _RUN_FIELDS_SCORES} for r in self.runs
            ],
            "findings": dataclasses.asdict(self.findings),
            "wall_time": self.wall_time,
            "methods": [m.to_dict() for m in self.methods],
        }
        d["config"]["networks"] = list(self.config.networks)
        return d


@dataclass(frozen=True)
class MethodRuns:
    """Every network's runs scored one way (a :data:`scaler.scoring.VARIANTS` name)."""

    method: str
    runs: tuple[NetworkRuns, ...]
    findings: NoiseFindings
    # Per run (every network, seed order): the extra seconds this scoring cost over scoring
    # the last weights, as a share of the run's wall time.
    extra_time: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "runs": [
                {k: getattr(r, k) for k in ("network", "val", "test", "pooled")} for r in self.runs
            ],
            "findings": dataclasses.asdict(self.findings),
            "extra_time": list(self.extra_time),
        }


_RUN_FIELDS: Final = ("network", "pixels", "params", "flops", "seeds")
_RUN_FIELDS_SCORES: Final = ("val", "test", "pooled", "seconds")


def _network_runs(name: str, seeds: int, first_seed: int, found: paired.Runs) -> NetworkRuns:
    """One network's paired runs read from its records (ValueError naming a missing one)."""
    import numpy as np

    from scaler.records import unpack_bits

    recs = paired.seed_records(name, seeds, found, "noise study")
    val = np.array([unpack_bits(r.val_correct[0]) for r in recs])
    test = np.array([unpack_bits(r.test_correct[0]) for r in recs])
    pooled = 100.0 * (val.sum(axis=1) + test.sum(axis=1)) / (val.shape[1] + test.shape[1])
    return NetworkRuns(
        network=name,
        pixels=int(recs[0].pixels),
        params=int(recs[0].params),
        flops=int(recs[0].flops),
        seeds=tuple(first_seed + k for k in range(seeds)),
        val=tuple(float(r.top1_seeds[0]) for r in recs),
        test=tuple(float(r.test_top1_seeds[0]) for r in recs),
        pooled=tuple(float(x) for x in pooled),
        seconds=tuple(float(r.wall_time) for r in recs),
        val_correct=val,
        test_correct=test,
    )


def result(study, storage_url: str) -> Noise:
    """The noise study its trials hold (ValueError while a run is missing or failed)."""
    from scaler.studies import stored_config

    config = stored_config(study)
    cfg = NoiseConfig(
        networks=tuple(config["networks"]),
        seeds=int(config["seeds"]),
        data=config["data"],
        upsample=config.get("upsample"),
        proxy=config["proxy_preset"],
        proxy_overrides=tuple(config["proxy_overrides"].items()),
        methods=bool(config.get("methods")),
    )
    found = paired.finished_runs(study, NOISE_ROLE)
    first = int(config["proxy"]["seed"])
    runs = tuple(_network_runs(n, cfg.seeds, first, found) for n in cfg.networks)
    methods = _methods(runs, cfg, found) if config.get("methods") else ()
    return Noise(
        config=cfg,
        proxy_settings=config["proxy"],
        data_classes=int(config["data_classes"]),
        runs=runs,
        findings=findings(runs),
        wall_time=sum(sum(r.seconds) for r in runs),
        methods=methods,
    )


def _methods(runs, cfg: NoiseConfig, found: paired.Runs) -> tuple[MethodRuns, ...]:
    """The runs scored every way their records hold (ValueError naming a run without)."""
    records = {
        r.network: paired.seed_records(r.network, cfg.seeds, found, "noise study") for r in runs
    }
    for name, recs in records.items():
        if any(not rec.variants for rec in recs):
            raise ValueError(f"the noise study's runs of {name} lack their other scorings")
    names = list(records[runs[0].network][0].variants[0])
    out = []
    for method in (n for n in names if n != "plain"):
        method_runs = tuple(_variant_runs(r, records[r.network], method) for r in runs)
        extra = tuple(
            (v[method]["seconds"] - v["last"]["seconds"]) / v["plain"]["wall_time"]
            for r in runs
            for v in (rec.variants[0] for rec in records[r.network])
        )
        out.append(MethodRuns(method, method_runs, findings(method_runs), extra))
    return tuple(out)


def _variant_runs(r: NetworkRuns, recs: list, method: str) -> NetworkRuns:
    """``r``'s runs as ``method`` scored them."""
    import numpy as np

    from scaler.records import unpack_bits

    scored = [rec.variants[0][method] for rec in recs]
    val = np.array([unpack_bits(s["val"]) for s in scored])
    test = np.array([unpack_bits(s["test"]) for s in scored])
    pooled = 100.0 * (val.sum(axis=1) + test.sum(axis=1)) / (val.shape[1] + test.shape[1])
    return dataclasses.replace(
        r,
        val=tuple(float(s["val_top1"]) for s in scored),
        test=tuple(float(s["test_top1"]) for s in scored),
        pooled=tuple(float(x) for x in pooled),
        seconds=tuple(float(s["seconds"]) for s in scored),
        val_correct=val,
        test_correct=test,
    )


def run(
    cfg: NoiseConfig,
    study: str | None = None,
    storage: str | None = None,
    progress=None,
    workers: int = 1,
) -> Noise:
    """Run (or resume) a noise study; ``progress`` takes the runner's events."""
    import sys

    from scaler.runner import run_study

    return run_study(sys.modules[__name__], prepare(cfg, study, storage), progress, workers)


def noise(
    cfg: NoiseConfig,
    progress: Progress | None = None,
    *,
    study: str | None = None,
    storage: str | None = None,
    workers: int = 1,
) -> Noise:
    """Train every network with every paired seed (those its study lacks) and split each run's
    variance into training and evaluation parts; the Python API behind ``scaler noise``.
    ``progress(network, seed index, val top-1)`` follows each run that ends."""
    return run(cfg, study, storage, None if progress is None else RunEnds(progress), workers)


def machine() -> str:
    """This machine's CPU model (Linux: /proc/cpuinfo's model name), for the report."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _methods_csv(res: Noise) -> str:
    """One row per (method, network, seed): top-1 on val, test and both, and the extra time."""
    rows = ["method,network,seed,val_top1,test_top1,pooled_top1,extra_time"]
    for m in res.methods:
        extra = iter(m.extra_time)
        for r in m.runs:
            for k, seed in enumerate(r.seeds):
                rows.append(
                    f"{m.method},{r.network},{seed},{r.val[k]:.4f},{r.test[k]:.4f},"
                    f"{r.pooled[k]:.4f},{next(extra):.4f}"
                )
    return "\n".join(rows) + "\n"


def write_report(res: Noise, out, command: str = "") -> list:
    """Write ``runs.csv`` (one row per run) and ``README.md`` into the folder ``out``."""
    from scaler.files import write_files

    rows = ["network,seed,val_top1,test_top1,pooled_top1,pixels,params,flops,seconds"]
    for r in res.runs:
        for k, seed in enumerate(r.seeds):
            rows.append(
                f"{r.network},{seed},{r.val[k]:.4f},{r.test[k]:.4f},{r.pooled[k]:.4f},"
                f"{r.pixels},{r.params},{r.flops},{r.seconds[k]:.1f}"
            )
    files = {
        "runs.csv": "\n".join(rows) + "\n",
        "README.md": report_text(res, command, machine()),
    }
    if res.methods:
        files["methods.csv"] = _methods_csv(res)
    return write_files(out, files)
