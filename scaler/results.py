"""Reading studies back: trial frames, the noise floor, the leaderboard, studies for figures.

The findings layer's frame module: :mod:`scaler.findings` and its siblings state what these
frames show; figures and reports draw them.

Everything here reads trials through :class:`scaler.records.TrialRecord`, so a frame's columns,
a report's tables, ``trials.csv`` and an export cannot drift from what the runner stored.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scaler.records import (
    BASE_ROLE,
    CANDIDATE_ROLES,
    CONFIRM_ROLE,
    Status,
    TrialRecord,
    metric_columns,
    stale_key,
)
from scaler.stats import MIN_DOF, critical_value, pooled_sd, possibly_best
from scaler.studies import (
    STORAGE_ENV,
    STUDIES_DIR,
    default_storage,
    load_study,
    mask_url,
    open_storage,
    stored_config,
)

# The columns of every trial frame, in order; sweeps add SWEEP_COLUMNS.
FRAME_COLUMNS = (
    "number",
    "state",
    "role",
    "status",
    "reason",
    "alpha",
    "beta",
    "gamma",
    "gamma_nominal",
    "cost_pixels",
    "pixels",
    "layers",
    "params",
    "activations",
    "flops",
    "cost_flops",
    "nominal_cost",
    "cost_ratio",
    "proxy_cost_ratio",
    "latency_ratio",
    "latency_ms",
    "latency_mode",
    "latency_machine",
    "top1_mean",
    "top1_std",
    "top5_mean",
    "seeds",
    "wall_time",
    "images_per_s",
    "reused_from",
    "network_key",
    "value",
    "top1_seeds",
    "series",
    "label",
    # version 0.3: paired runs and confirmation trials
    "seed_list",
    "test_top1_seeds",
    "confirm_of",
    "confirm_role",
    "val_correct",
    "test_correct",
    # version 0.6: the CPU threads of its runs (None: not stored, before 0.6)
    "threads",
    # version 0.7: balanced accuracy (mean per-class recall on val), per run and its mean
    "balanced_mean",
    "balanced_seeds",
)
SWEEP_COLUMNS = (
    "sweep",
    "point",
    "depth",
    "width",
    "resolution",
    "value_name",
    "point_value",
    "phi",
    "channels",
)
_LOST_REASON = "interrupted or crashed; requeued on resume"
# Trials whose point is not done by them: skipped, or queued again.
_REQUEUED = {s.value for s in Status if s.requeued}
_NOT_DONE = _REQUEUED | {"skipped", "duplicate"}


def isnan(x: Any) -> bool:
    """True for None, NaN and anything that is not a number."""
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def seeds_of(row) -> int:
    """Runs behind a frame row's mean (1 when unknown)."""
    s = row.get("seeds")
    return int(s) if not isnan(s) else 1


def flops_column(*frames) -> str:
    """ "cost_flops" when every row of ``frames`` has it (studies since 0.3), else "flops"."""
    for f in frames:
        if f is None or len(f) == 0:
            continue
        if "cost_flops" not in f or f["cost_flops"].isna().any():
            return "flops"
    return "cost_flops"


def multipliers_text(row, sep: str = " ") -> str:
    """α, β and γ of a row to two decimals ("α=1.20 β=1.10 γ=1.02"), joined by ``sep``."""
    names = (("α", "alpha"), ("β", "beta"), ("γ", "gamma"))
    return sep.join(f"{sym}={float(row[col]):.2f}" for sym, col in names)


def setup_key(config: dict[str, Any]) -> str:
    """What must match for two studies' top-1 to be comparable: data and proxy settings."""
    import json

    stored = config.get("proxy") or {}  # the proxy settings
    settings = {k: v for k, v in stored.items() if k not in ("threads", "device")}
    key: list[Any] = [config.get("data_fingerprint"), settings]
    if config.get("base"):  # only another base's networks differ: B0 keys stay as they were
        key.append([config.get("base"), config.get("base_table")])
    return json.dumps(key, sort_keys=True, default=str)


def _status(t, rec: TrialRecord, stale: str | None) -> tuple[str, str]:
    """A trial's status and reason as shown (a requeued trial says so)."""
    if rec.status is not None:
        return rec.status.value, rec.reason
    if t.state.name == "FAIL":
        return ("stale", stale) if stale else ("lost", rec.reason or _LOST_REASON)
    waiting = {"WAITING": Status.WAITING.value, "RUNNING": Status.RUNNING.value}
    return waiting.get(t.state.name, t.state.name.lower()), ""


def _row(t, rec: TrialRecord, status: str, reason: str) -> dict[str, Any]:
    row = {"number": t.number, "state": t.state.name, "status": status, "reason": reason}
    for col in FRAME_COLUMNS:
        if col not in row and col not in ("seeds", "value"):
            row[col] = getattr(rec, col)
    row["role"] = rec.role
    row["alpha"] = t.params.get("alpha", rec.alpha)
    row["beta"] = t.params.get("beta", rec.beta)
    row["seeds"] = len(rec.top1_seeds or []) or None
    if (row["seeds"] or 0) < 2:  # undefined for one run (0.1 and 0.2 stored 0.0)
        row["top1_std"] = None
    row["value"] = t.value
    return {col: row[col] for col in FRAME_COLUMNS}


def _redone(records: list[tuple[Any, TrialRecord]]) -> dict[str, int]:
    """Point → the first complete trial of it."""
    done: dict[str, int] = {}
    for t, rec in records:
        if rec.point is not None and t.state.name == "COMPLETE":
            done.setdefault(rec.point, t.number)
    return done


def trials_frame(study, extra: Sequence[str] = ()):
    """All trials of a study as a DataFrame, one row each, with status and reason.

    A trial that was lost (or failed as stale) and whose point was trained again says by which
    trial. ``extra`` names further record fields to add as columns.
    """
    import pandas as pd

    attrs = study.user_attrs
    records = [(t, TrialRecord.from_trial(t)) for t in study.get_trials(deepcopy=False)]
    redone = _redone(records)
    rows = []
    for t, rec in records:
        status, reason = _status(t, rec, attrs.get(stale_key(t.number)))
        # A point skipped (by --time, or a sweep's cap) and trained later says so too.
        if (status in _REQUEUED or status == Status.SKIPPED.value) and rec.point in redone:
            # An interrupted trial stores no reason of its own: no leading "; " then.
            again = f"trained again as trial {redone[rec.point]}"
            reason = f"{reason}; {again}" if reason else again
        row = _row(t, rec, status, reason)
        row.update({col: getattr(rec, col) for col in extra})
        rows.append(row)
    columns = list(FRAME_COLUMNS) + list(extra)
    return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)


def sweep_frame(study):
    """All trials of a sweep, one row each (the search's columns plus the sweep's).

    A skipped record whose point was trained later (under a higher cap) is left out: the
    point has its result now; of several skipped records of one point (runs with different
    caps) only the latest is kept.
    """
    frame = trials_frame(study, SWEEP_COLUMNS)
    if frame.empty:
        return frame
    done = set(frame.loc[~frame["status"].isin(_NOT_DONE), "point"])
    skipped = frame["status"] == "skipped"
    older = skipped & frame[skipped].duplicated("point", keep="last").reindex(
        frame.index, fill_value=False
    )
    stale = (skipped & frame["point"].isin(done)) | older
    return frame[~stale].reset_index(drop=True)


def finished(frame):
    """Rows with a result (trained or reused), confirmation trials left out (see confirmed)."""
    if frame is None or frame.empty or "top1_mean" not in frame:
        return frame.iloc[0:0] if frame is not None else None
    done = (frame["state"] == "COMPLETE") & frame["top1_mean"].notna()
    if "role" in frame:
        done &= frame["role"] != CONFIRM_ROLE
    return frame[done]


def confirmed(frame):
    """The finished confirmation trials of a search frame."""
    if frame is None or frame.empty or "top1_mean" not in frame:
        return frame.iloc[0:0] if frame is not None else None
    done = (frame["state"] == "COMPLETE") & frame["top1_mean"].notna()
    return frame[done & (frame["role"] == CONFIRM_ROLE)]


def thread_counts(rows) -> list[int]:
    """The distinct CPU thread counts stored on frame rows (an iterable of rows or a frame)."""
    rows = [r for _, r in rows.iterrows()] if hasattr(rows, "iterrows") else list(rows)
    return sorted({int(t) for t in (r.get("threads") for r in rows) if not isnan(t)})


def same_threads(rows) -> bool:
    """Whether frame rows' runs may pair by seed: made at one CPU thread count (rows that
    stored none, before 0.6, pair as they always did)."""
    return len(thread_counts(rows)) <= 1


def threads_sentence(rows, what: str) -> list[str]:
    """One sentence when ``what``'s runs were made at different CPU thread counts."""
    counts = thread_counts(rows)
    if len(counts) < 2:
        return []
    return [
        f"{what} were made at different CPU thread counts ({', '.join(map(str, counts))}): "
        "runs of one seed are not paired across them."
    ]


def best_candidate(done, metric: str = "top1"):
    """The candidate row with the highest mean ``metric`` among finished rows, or None."""
    cands = done[done["role"].isin(CANDIDATE_ROLES)]
    if cands.empty:
        return None
    return cands.sort_values(metric_columns(metric)[0], ascending=False).iloc[0]


# The confidence of every "possibly best" set and interval scaler states.
LEVEL = 0.95
RULE = (
    "possibly best at 95 % (Gupta's subset selection, i.e. Hsu's multiple comparisons with the "
    "best, Bonferroni over the k − 1 comparisons): a candidate is kept unless another beats it "
    "by more than q·σ·√(1/n_i + 1/n_j), q the one-sided t quantile at 1 − 0.05/(k − 1) with σ's "
    f"degrees of freedom; at least {MIN_DOF} degrees of freedom are needed"
)


@dataclass(frozen=True)
class Noise:
    """The run-to-run spread of top-1, its degrees of freedom and the "possibly best" rule."""

    sigma: float  # pooled standard deviation of repeated runs (percentage points)
    runs: int  # number of repeated runs it is estimated from
    dof: int = 0  # degrees of freedom of sigma: Σ (runs of a network − 1)
    rule: str = RULE

    @property
    def usable(self) -> bool:
        """Enough degrees of freedom to call anything (t quantiles below 2 df are huge)."""
        return self.dof >= MIN_DOF and math.isfinite(self.sigma)

    def critical(self, level: float = LEVEL) -> float:
        """The two-sided t quantile for σ's degrees of freedom (nan without any)."""
        return critical_value(level, self.dof) if self.dof >= 1 else math.nan

    def describe(self) -> str:
        """The estimate in words (σ, df, runs), saying when it is no usable estimate."""
        if not math.isfinite(self.sigma):
            return "no noise estimate (no network has 2 or more runs)"
        text = f"σ = {self.sigma:.2f} points ({self.dof} df, from {self.runs} runs)"
        if not self.usable:
            return f"no usable noise estimate: {text}, fewer than {MIN_DOF} df"
        return text


def noise(frame, metric: str = "top1") -> Noise:
    """Pooled std of ``metric`` over every trained network with >= 2 runs (the base at least).

    Confirmation trials are left out: their longer proxy has its own noise (see
    :func:`confirmed`).
    """
    rows = frame[(frame["status"] == "trained") & (frame["role"] != CONFIRM_ROLE)]
    column = metric_columns(metric)[1]
    groups = [s for s in rows[column] if isinstance(s, list) and len(s) >= 2]
    sigma, dof = pooled_sd(groups)
    return Noise(sigma=sigma, runs=sum(len(s) for s in groups), dof=dof)


def mark_possibly_best(
    done, noise_: Noise, roles=CANDIDATE_ROLES, metric: str = "top1"
) -> list[bool] | None:
    """The "possibly best" flag of every row of ``done`` in ``roles`` (None: no usable σ).

    Twins (one network_key) are one candidate: the set is computed over distinct networks and
    every twin gets its network's flag.
    """
    cands = done[done["role"].isin(roles)]
    nets = cands.drop_duplicates("network_key") if "network_key" in cands else cands
    keep = possibly_best(
        [float(m) for m in nets[metric_columns(metric)[0]]],
        [seeds_of(r) for _, r in nets.iterrows()],
        noise_.sigma,
        noise_.dof,
        LEVEL,
    )
    if keep is None:
        return None
    by_key = dict(zip(nets["network_key"], keep, strict=True))
    return [bool(by_key[k]) for k in cands["network_key"]]


def set_cell(row, usable: bool) -> str:
    """A leaderboard row's "95 % set" cell: best, possibly (in the set), or ? for a candidate
    when there is no usable noise estimate; empty for the base."""
    if row["best"]:
        return "best"
    if row["role"] == BASE_ROLE:
        return ""
    return ("possibly" if row["possibly_best"] else "") if usable else "?"


def leaderboard(frame, noise_: Noise | None = None, metric: str = "top1"):
    """Finished candidates (and the base) ranked by mean ``metric`` (top1 or balanced), with
    the best and the candidates that could be the best (:data:`RULE`; all False without a
    usable σ, which must be the same metric's)."""
    noise_ = noise_ or noise(frame, metric)
    done = finished(frame).copy().sort_values(metric_columns(metric)[0], ascending=False)
    done["possibly_best"] = False
    done["best"] = False
    best = best_candidate(done, metric)
    if best is not None:
        done.loc[best.name, "best"] = True
        keep = mark_possibly_best(done, noise_, metric=metric)
        if keep is not None:
            done.loc[done["role"].isin(CANDIDATE_ROLES), "possibly_best"] = keep
    return done


# ----------------------------------------------------------------------------------------------
# studies for figures, reports and listings
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyData:
    """One stored study, read back for figures and reports."""

    name: str
    storage: str  # masked URL
    kind: str  # "search", "sweep" or "unknown"
    config: dict[str, Any]
    attrs: dict[str, Any]  # the study's user attrs
    frame: Any  # trials_frame (search) or sweep_frame (sweep), plus a "study" column

    @property
    def finished(self):
        return finished(self.frame)


def study_frame(study):
    """The frame of a study of any kind."""
    return sweep_frame(study) if study.user_attrs.get("kind") == "sweep" else trials_frame(study)


def load_studies(names: Sequence[str], storage: str | None = None) -> list[StudyData]:
    """Read every study (all of them before anything is written); ValueError if one is missing."""
    if not names:
        raise ValueError("no study given: name at least one study")
    out = []
    for name in dict.fromkeys(names):
        url = storage or default_storage(name)
        st = load_study(name, storage)
        kind = st.user_attrs.get("kind", "unknown")
        if kind == "calibration":  # its findings are τ against the paper, not a search's
            raise ValueError(
                f"study {name!r} is a calibration: rerun the scaler calibrate command that made "
                f"it with --study {name} --out DIR (it trains nothing once every run is done) "
                "to write its report"
            )
        frame = study_frame(st).copy()
        frame["study"] = name
        out.append(
            StudyData(
                name=name,
                storage=mask_url(url),
                kind=kind if kind in ("search", "sweep") else "unknown",
                config=stored_config(st),
                attrs=dict(st.user_attrs),
                frame=frame,
            )
        )
    return out


def rates_summary(attrs: dict[str, Any]) -> dict[str, Any]:
    """A study's chance and majority-class rates on val (%), None when not stored."""
    from scaler.data.rates import rates_from_attrs

    val = rates_from_attrs(attrs.get("class_rates")).get("val")
    if val is None:
        return {"chance": None, "majority": None}
    return {"chance": round(val.chance, 2), "majority": round(val.majority, 2)}


def list_studies(storage: str | None = None) -> list[dict[str, Any]]:
    """Studies in a storage (default: $SCALER_STORAGE, else every studies/*.db) with state."""
    import optuna
    from optuna.trial import TrialState

    storage = storage or os.environ.get(STORAGE_ENV, "").strip() or None
    urls = [storage] if storage else [f"sqlite:///{p}" for p in sorted(STUDIES_DIR.glob("*.db"))]
    rows = []
    for url in urls:
        st = open_storage(url, create=False)
        for s in optuna.get_all_study_summaries(st, include_best_trial=False):
            study = optuna.load_study(study_name=s.study_name, storage=st)
            trials = study.get_trials(deepcopy=False)
            states = {
                state.name.lower(): sum(t.state == state for t in trials) for state in TrialState
            }
            cfg = stored_config(study)
            board = leaderboard(trials_frame(study), metric=cfg.get("metric", "top1"))
            best = board[board["best"]]
            waiting = states["waiting"] + states["running"]
            rows.append(
                {
                    "study": s.study_name,
                    "storage": mask_url(url),
                    "kind": study.user_attrs.get("kind", "?"),
                    "data": cfg.get("data"),
                    "budget": cfg.get("budget"),
                    "trials": len(trials),
                    "states": {k: v for k, v in states.items() if v},
                    "state": "in progress" if waiting else ("finished" if trials else "empty"),
                    "best_top1": None if best.empty else float(best.iloc[0]["top1_mean"]),
                    "metric": cfg.get("metric", "top1"),
                    **rates_summary(study.user_attrs),
                }
            )
    return rows
