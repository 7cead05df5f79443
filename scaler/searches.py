"""A search: α, β (and the γ they leave) under a measured-FLOPs budget, as an optuna study.

Step 1 of the paper, made reproducible: fix the budget B (φ = log2 B), search α and β, derive γ
so the candidate costs B × the base, train each candidate on a short proxy run, keep the best.

How a study runs (every decision has its reason here):

- **The constraint removes a degree of freedom.** α and β are sampled; γ follows from the
  budget. In ``measured`` mode (default) γ is the integer input size whose fvcore FLOPs of the
  real, rounded network come closest to B × the base's (:func:`scaler.scaling.solve_pixels`); a
  candidate that misses by more than the tolerance, or would need γ < 1 (γ > 1 under 1×), is
  recorded as *infeasible* (a pruned trial with the reason) and never trained. ``nominal`` mode
  uses the paper's γ = sqrt(B / (α·β²)) and records the measured cost beside it.
- **Cost pixels.** The budget is measured at ``cost_pixels`` (224 px: the network as it
  would be deployed) and the proxy trains the same network at the same γ applied to the proxy's
  smaller base size. Measuring at the proxy size itself (set ``cost_pixels`` to the proxy's
  base pixels) is allowed, but at 32–64 px FLOPs jump 1.7–2.4× whenever the input crosses a
  multiple of 32 px (the last feature map grows from 1×1 to 2×2), so almost no (α, β) can hit
  a budget within 5 % there. Both cost ratios are recorded for every trial.
- **Every point is a queued trial.** The base (1×, trained ``base_seeds`` ≥ 2 times: the noise
  floor), the paper's (α, β) = (1.2, 1.1) and, with the grid sampler, every grid point are
  queued; TPE and random samplers propose the rest. Claiming, dedupe of identical networks,
  heartbeats and resume are the runner's (:mod:`scaler.runner`), shared with sweeps; the
  study's storage and stored configuration are :mod:`scaler.studies`'.

- **The base** (``--base``, :mod:`scaler.bases`) is part of the configuration: every candidate
  scales it, and a base other than EfficientNet-B0 is stored (and named in the study's default
  name); a study that stores none is a search of EfficientNet-B0.

This module runs a search (the StudyKind functions of :mod:`scaler.runner`: prepare, trial_bytes,
create, work, result, run), reads its result, exports it and holds the Python API
:func:`search`. Its configuration and grid are :mod:`scaler.search_config`; how (α, β) becomes a
candidate network under the budget is :mod:`scaler.candidates`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaler import base_check, bases, confirm
from scaler.bases import Base
from scaler.candidates import check_latency, realize_candidate
from scaler.data import DEFAULT_DATA
from scaler.findings_confirm import summarize
from scaler.findings_pooled import search_surface
from scaler.proxy import ProxyConfig, ProxyLength, lengthen, proxy_length
from scaler.records import BASE_ROLE, CANDIDATE_ROLES, Status, TrialRecord, point_id, write
from scaler.results import Noise, finished, leaderboard, noise, trials_frame
from scaler.runner import (
    Job,
    ProgressFn,
    QueuedPoint,
    Trainer,
    ensure_queue,
    run_study,
    work_queue,
)
from scaler.search_config import (
    SearchConfig,
    paper_at,
    same_point,
)
from scaler.spec import scale
from scaler.studies import (
    StudySpec,
    default_name,
    default_storage,
    load_study,
    mask_url,
    open_storage,
    open_study,
    proxy_json,
    resolve_target,
    sqlite_path,
    stored_config,
    study_names,
)

# ----------------------------------------------------------------------------------------------
# the study
# ----------------------------------------------------------------------------------------------


def queued_points(cfg: SearchConfig) -> list[QueuedPoint]:
    """The queued points of a study: base, the paper's point, and the grid."""
    points: list[tuple[str, float, float]] = [(BASE_ROLE, 1.0, 1.0)]
    paper = paper_at(cfg.budget)
    points.append(("paper", *paper))
    if cfg.sampler == "grid":
        grid = [p for p in cfg.grid() if not same_point(p, paper)]
        grid = grid[: max(0, cfg.candidate_cap() - 1)]
        points += [("grid", a, b) for a, b in grid]
    return [
        QueuedPoint(
            id=point_id(role, a, b),
            params={"alpha": a, "beta": b},
            attrs={"role": role, "alpha": a, "beta": b},
        )
        for role, a, b in points
    ]


class Describe:
    """Turns a claimed trial into the candidate it trains: (α, β) realized under the budget."""

    def __init__(self, cfg: SearchConfig, source):
        self.cfg = cfg
        self.source = source
        self.settings = cfg.proxy_config()

    def __call__(self, trial) -> Job:
        import optuna

        if confirm.is_confirmation(trial):
            return confirm.describe(trial)
        cfg = self.cfg
        role = trial.user_attrs.get("role", "sampled")
        (a0, a1), (b0, b1) = cfg.ranges()
        if role == "sampled":
            write(trial, role=role)
            sa, sb = cfg.steps()
            alpha = trial.suggest_float("alpha", a0, a1, step=sa)
            beta = trial.suggest_float("beta", b0, b1, step=sb)
        else:
            # Queued points (base, paper, grid) may lie off the sampler's range or step.
            alpha, beta = trial.user_attrs["alpha"], trial.user_attrs["beta"]
            trial.suggest_float("alpha", min(a0, alpha), max(a1, alpha))
            trial.suggest_float("beta", min(b0, beta), max(b1, beta))
        source = self.source
        cand = realize_candidate(cfg, role, alpha, beta, source.num_classes, source.max_pixels)
        write(trial, **cand.attrs())
        if cand.infeasible:
            write(trial, status=Status.INFEASIBLE, reason=cand.infeasible)
            raise optuna.TrialPruned(f"infeasible: {cand.infeasible}")
        spec = scale(
            alpha, beta, base_pixels=self.settings.base_pixels, pixels=cand.pixels, base=cfg.base
        )
        is_base = role == BASE_ROLE
        return Job(
            spec=spec,
            seeds=cfg.base_seeds if is_base else cfg.seeds,
            prune=cfg.pruner != "none" and not is_base,
            info=cand.attrs(),
            metric=cfg.metric,
        )


def _make_sampler(cfg: SearchConfig):
    import optuna

    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=cfg.sampler_seed)
    # Grid points are queued trials; the random sampler only serves tpe-less modes.
    return optuna.samplers.RandomSampler(seed=cfg.sampler_seed)


def _make_pruner(cfg: SearchConfig):
    import optuna

    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max(2, cfg.proxy_config().epochs)
        )
    return optuna.pruners.NopPruner()


def default_study_name(cfg: SearchConfig, fingerprint: str) -> str:
    """Name from the data, the budget and the proxy settings."""
    hashed = f"{fingerprint}|{proxy_json(cfg.proxy_config(), preset=cfg.proxy)}"
    stored = bases.stored(cfg.base)
    if stored:  # B0 keeps the names it had before bases existed
        hashed += "|" + json.dumps(stored, sort_keys=True)
    named = "" if not stored else f"{cfg.base.name}-"
    return default_name("search", cfg.data, f"{named}{cfg.budget:g}x-{cfg.proxy}", hashed)


@dataclass(frozen=True)
class Prepared:
    """A validated search, ready to run: nothing has been written yet."""

    cfg: SearchConfig  # its proxy lengthened to min_steps on the data (lengthened)
    source: Any
    study_name: str
    storage_url: str
    length: ProxyLength | None = None  # one proxy run on the data: epochs, SGD steps, images


def prepare(cfg: SearchConfig, study: str | None = None, storage: str | None = None) -> Prepared:
    """Validate everything a search needs before any study is created or changed."""
    cfg.validate()
    source, name, url = resolve_target(cfg, study, storage, default_study_name)
    # Connect and compare with an existing study now, before any progress display starts
    # (a SQLite file that does not exist holds none: it is not created here, --dry-run).
    path = sqlite_path(url)
    exists = (path is None or path.exists()) and name in study_names(open_storage(url))
    before = exists and "min_steps" not in stored_config(load_study(name, url)).get("proxy", {})
    cfg, length = lengthened(cfg, source, before)
    prepared = Prepared(cfg, source, name, url, length)
    if exists:
        create(prepared)
    elif cfg.constraint == "latency":
        check_latency(cfg, source.num_classes)  # a machine too noisy to time refuses now
    return prepared


def lengthened(cfg: SearchConfig, source, before: bool = False) -> tuple[SearchConfig, Any]:
    """``cfg`` with its proxy run raised to ``min_steps`` SGD steps on ``source``'s train split
    (:func:`scaler.proxy.lengthen`), and the run's :class:`~scaler.proxy.ProxyLength`.

    The name of the study is the configuration's as given (the same command resumes it); the
    lengthened settings are what it stores and trains. A study stored ``before`` min_steps
    existed runs as it did: with no minimum (min_steps 0).
    """
    settings = cfg.proxy_config()
    n_train = len(source.load("train", settings.base_pixels))
    changes, length = ({"min_steps": 0}, None) if before else lengthen(settings, n_train)
    if changes:
        merged = {**dict(cfg.proxy_overrides), **changes}
        cfg = dataclasses.replace(cfg, proxy_overrides=tuple(sorted(merged.items())))
    return cfg, length or proxy_length(cfg.proxy_config(), n_train)


def trial_bytes(p: Prepared) -> int:
    """GPU memory one trial of this search may take: the budget's share over the base's run."""
    from scaler.complexity import train_memory

    settings = p.cfg.proxy_config()
    base_spec = scale(base_pixels=settings.base_pixels, base=p.cfg.base)
    run = train_memory(base_spec, settings.batch_size, p.source.num_classes)
    return int(run * max(1.0, p.cfg.budget))


def create(p: Prepared):
    """Create the study (its points queued once), or load it and refuse a changed config."""
    from scaler.data.rates import class_rates, rates_to_attrs

    stored = p.cfg.stored()
    stored["data_fingerprint"] = p.source.fingerprint()
    stored["upsample"] = p.source.upsample  # resolved: given, the study's own, or the default
    if p.length is not None:  # the proxy's length in SGD steps and images on these data
        stored["proxy_length"] = p.length.to_attrs()
    spec = StudySpec(
        name=p.study_name,
        storage_url=p.storage_url,
        kind="search",
        config=stored,
        # Chance and the majority class's share, read beside top-1 by every board and report.
        attrs=(("class_rates", rates_to_attrs(class_rates(p.source))),),
        sampler=lambda: _make_sampler(p.cfg),
        pruner=lambda: _make_pruner(p.cfg),
    )
    # Under the base check only the base is queued at first: no worker can claim a candidate
    # before the check has passed (base_checked queues the rest).
    first = queued_points(p.cfg)[: 1 if p.cfg.check == "stop" else None]
    return open_study(spec, on_create=lambda st: ensure_queue(st, first))


def count_candidates(study) -> int:
    """Candidate trials that used up a slot of the --trials cap."""
    n = 0
    for t in study.get_trials(deepcopy=False):
        rec = TrialRecord.from_trial(t)
        if rec.role in CANDIDATE_ROLES and (t.state.name != "FAIL" or rec.status == Status.FAILED):
            # A lost trial runs again, one skipped for time on a later run: neither counted.
            n += rec.status not in (Status.DUPLICATE, Status.SKIPPED)
    return n


def count_finished_candidates(study) -> int:
    """Candidates of ``study`` with a result (trained or reused)."""
    frame = trials_frame(study)
    return int(finished(frame)["role"].isin(CANDIDATE_ROLES).sum()) if len(frame) else 0


def work(p: Prepared, progress: ProgressFn | None = None) -> None:
    """Work on the study until no queued point is left (and the cap is reached), then on its
    confirmation stage."""
    study = create(p)
    trainer = Trainer(Describe(p.cfg, p.source), p.source, p.cfg.proxy_config(), progress)
    if not base_checked(study, p, trainer):
        return
    cap = p.cfg.candidate_cap()

    def sampled_left() -> int:
        if p.cfg.sampler == "grid" or trainer.out_of_time:  # --time: propose nothing more
            return 0
        return max(0, cap - count_candidates(study))

    work_queue(study, lambda: queued_points(p.cfg), trainer, sampled_left)
    # A search cut short by --time is not confirmed: the leaders of part of it would be stored
    # as the confirmation's networks, and the resumed search could not change them.
    if p.cfg.confirm and count_finished_candidates(study) and not trainer.out_of_time:
        # Without a finished candidate there is nothing to confirm; the summary says so.
        selection = confirm.select(study, p.cfg.confirm_config(), p.source)
        confirm.stage(study, selection, trainer, lambda: queued_points(p.cfg))


def base_checked(study, p: Prepared, trainer: Trainer) -> bool:
    """Train the base's runs first and judge them (:mod:`scaler.base_check`): whether the
    candidates may train. The outcome is stored on the study and announced in one line.

    Only the base is queued until the check passes, and every worker runs this first: one trains
    the base, the others wait in :func:`~scaler.runner.work_queue` for its trial to finish, then
    each judges the same stored runs (the same answer). A study created with ``--base-check
    off``, or before the check existed, has its candidates queued already and is not checked.
    """
    stored = stored_config(study).get("base_check", "off")
    if p.cfg.check == "off" or stored == "off":
        old = base_check.BaseCheck.from_attrs(study.user_attrs.get(base_check.ATTR))
        if old is not None and old.outcome == base_check.Outcome.STOPPED:  # resumed with off
            overridden = dataclasses.replace(old, outcome=base_check.Outcome.OVERRIDDEN)
            study.set_user_attr(base_check.ATTR, overridden.to_attrs())
        return True
    work_queue(study, lambda: queued_points(p.cfg)[:1], trainer)
    if trainer.out_of_time:  # --time skipped the base: a later run checks it
        return False
    check = judge_base(study, p)
    if check is None:  # a failed base, or rates unknown: the search goes on as before the check
        trainer.emit("note", -1, {"line": "base check: not made (the base has no result)"})
        return True
    study.set_user_attr(base_check.ATTR, check.to_attrs())
    trainer.emit("note", -1, {"line": check.describe()})
    return check.passed


def judge_base(study, p: Prepared) -> base_check.BaseCheck | None:
    """The base check of the study's finished base (None: no base result or no stored rates)."""
    from optuna.trial import TrialState

    val = study_rates(study.user_attrs, stored_config(study)).get("val")
    done = [
        TrialRecord.from_trial(t)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("role") == BASE_ROLE and t.user_attrs.get("top1_seeds")
    ]
    if val is None or not done:
        return None
    rec = done[0]
    seeds = rec.seed_list or [p.cfg.proxy_config().seed + k for k in range(len(rec.top1_seeds))]
    steps = p.length.steps if p.length is not None else None
    return base_check.judge(rec.top1_seeds, seeds, val.images, val.majority, steps)


def run(
    cfg: SearchConfig,
    study: str | None = None,
    storage: str | None = None,
    progress: ProgressFn | None = None,
    workers: int = 1,
) -> SearchResult:
    """Run (or resume) a search; the Python entry point behind ``scaler search``."""
    return run_study(sys.modules[__name__], prepare(cfg, study, storage), progress, workers)


@dataclass(frozen=True)
class SearchResult:
    """What a search leaves: where it is stored and its trials."""

    study_name: str
    storage: str  # masked
    config: dict[str, Any]
    frame: Any  # pandas DataFrame, one row per trial
    board: Any  # leaderboard DataFrame
    noise: Noise
    confirmation: Any = None  # scaler.findings_confirm.Confirmation
    surface: Any = None  # scaler.findings_pooled.Surface: the response surface over the runs
    rates: Any = None  # split → scaler.data.rates.SplitRates, stored at creation ({}: unknown)
    base_check: base_check.BaseCheck | None = None  # None: not checked (off, or made before)

    @property
    def metric(self) -> str:
        """What ranks the candidates: top1 or balanced (studies before 0.7: top1)."""
        return self.config.get("metric", "top1")

    @property
    def chosen(self):
        """The chosen candidate's search row: the confirmation's when it has one, else best."""
        c = self.confirmation
        if c is not None and c.chosen is not None:
            return self.frame.set_index("number", drop=False).loc[c.chosen.trial]
        return self.best

    @property
    def best(self):
        """The best candidate's row (a pandas Series), or None."""
        rows = self.board[self.board["best"]]
        return None if rows.empty else rows.iloc[0]


def result(study, storage_url: str) -> SearchResult:
    frame = trials_frame(study)
    metric = stored_config(study).get("metric", "top1")
    nz = noise(frame, metric)
    return SearchResult(
        study_name=study.study_name,
        storage=mask_url(storage_url),
        config=stored_config(study),
        frame=frame,
        board=leaderboard(frame, nz, metric),
        noise=nz,
        rates=study_rates(study.user_attrs, stored_config(study)),
        base_check=base_check.BaseCheck.from_attrs(study.user_attrs.get(base_check.ATTR)),
        confirmation=summarize(frame, study.user_attrs, stored_config(study)),
        surface=search_surface(frame, stored_config(study)),
    )


def study_rates(attrs: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The chance and majority-class rates of a study ({}: unknown)."""
    from scaler.data.rates import stored_rates

    return stored_rates(attrs, config)


# ----------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------


def export(
    study_name: str,
    storage: str | None = None,
    out: Path | None = None,
    fmt: str | None = None,
    phi_max: int = 7,
    base: Base | None = None,
    latency=None,
) -> Path:
    """Write the chosen coefficients with provenance and the family φ = 0..phi_max
    (:func:`scaler.exports.write_study`: the schema, the file's name and its format), with each
    member's measured latency when ``latency`` (:class:`scaler.latency.LatencySettings`)."""
    from scaler import exports
    from scaler.latency_runs import export_latency

    exports.check_format(fmt)
    st = load_study(study_name, storage)
    res = result(st, storage or default_storage(study_name))
    extra = None if latency is None else functools.partial(export_latency, settings=latency)
    versions = st.user_attrs.get("versions", {})
    return exports.write_study(res, versions, out, fmt, phi_max, base, extra)


# ----------------------------------------------------------------------------------------------
# Python API
# ----------------------------------------------------------------------------------------------


def search(
    budget: str | float = "2x",
    data: str = DEFAULT_DATA,
    proxy: str = "standard",
    *,
    study: str | None = None,
    storage: str | None = None,
    workers: int = 1,
    progress: ProgressFn | None = None,
    **options: Any,
) -> SearchResult:
    """Run or resume a search from Python (``scaler.search(...)``).

    ``options`` are :class:`SearchConfig` fields (sampler, trials, seeds, constraint, ...) or
    proxy overrides (epochs, images, batch_size, lr, base_pixels, threads, device, ...)::

        import scaler
        res = scaler.search("2x", proxy="quick")
        res.board[["alpha", "beta", "gamma", "top1_mean", "possibly_best"]]
    """
    from scaler.scaling import parse_budget

    if "cost_resolution" in options:  # its name in 0.1
        raise TypeError("search(cost_resolution=...) was removed in 0.6: use cost_pixels=...")
    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    proxy_fields = {f.name for f in dataclasses.fields(ProxyConfig)}
    cfg_kwargs = {k: v for k, v in options.items() if k in fields}
    overrides = {k: v for k, v in options.items() if k in proxy_fields and k not in fields}
    unknown = set(options) - set(cfg_kwargs) - set(overrides)
    if unknown:
        raise ValueError(f"unknown search option(s): {', '.join(sorted(unknown))}")
    value = parse_budget(budget) if isinstance(budget, str) else float(budget)
    if "base" in cfg_kwargs:  # a name or a stage-table file, as --base takes
        cfg_kwargs["base"] = bases.get_base(cfg_kwargs["base"], "base")
    cfg = SearchConfig(
        budget=value,
        data=data,
        proxy=proxy,
        proxy_overrides=tuple(sorted(overrides.items())),
        **cfg_kwargs,
    )
    return run(cfg, study, storage, progress=progress, workers=workers)
