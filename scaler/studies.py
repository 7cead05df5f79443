"""Studies and their storage: URLs, secrets, opening or creating a study of any kind, names.

Every search and sweep is an optuna study. This module knows storages and study lifecycles and
nothing of what a study trains:

- **Storage URLs.** Any optuna RDB URL; ``sqlite:///studies/<name>.db`` by default, or the
  ``SCALER_STORAGE`` environment variable when set, so a PostgreSQL URL (and its password)
  need not appear on a command line where ``ps`` shows it. PostgreSQL's own ``PGPASSWORD`` and
  ``~/.pgpass`` work for a URL given without a password (libpq reads them).
- **Secrets.** :func:`mask_url` and :func:`mask_text` hide every credential form that libpq
  and SQLAlchemy accept (``user:password@`` and ``password=`` / ``sslpassword=`` query
  parameters) in everything scaler prints or stores.
- **Heartbeats.** Every running trial sends one; a trial whose worker went silent is failed as
  stale by any live worker, status and reason written on the trial as it fails
  (:mod:`scaler.dead_workers`). Should optuna fail one itself, the reason is kept on the study
  (optuna does not let a finished trial be written), under :func:`scaler.records.stale_key`.
- **One study, one configuration.** :func:`open_study` creates a study (its configuration
  written last, so workers opening it meanwhile wait) or loads it and refuses a different
  configuration with what differs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from scaler import __version__
from scaler.records import stale_key

STUDIES_DIR = Path("studies")
STORAGE_ENV = "SCALER_STORAGE"
_SCHEMES = ("sqlite", "postgresql", "mysql")
# Settings that may change between runs of one study without changing its results: the base
# check is a gate before the candidates (--base-check off resumes a search it stopped), the
# proxy's length in steps is derived from the proxy settings and the data, both compared; the
# latency record is a measurement beside the FLOPs (a latency budget is stored as "latency").
RESUMABLE = ("trials", "threads", "device", "base_check", "proxy_length", "latency_record")
# Settings added after studies were stored that did nothing before: a study stored without one
# resumes whatever the command says (it is never applied to that study, scaler.searches).
ABSENT_BEFORE = ("min_steps",)
# Study settings added after studies were stored, with the value those studies ran with: a
# study stored without one resumes under that default (and refuses any other).
CONFIG_ADDED_LATER = {"metric": "top1"}
# Proxy fields that change speed, not results: left out of the hash in a default study name.
SPEED_ONLY = ("threads", "device")
# Stored configuration keys renamed since studies first stored them (old name → new).
LEGACY_KEYS = {"cost_resolution": "cost_pixels"}
_USERINFO = re.compile(r"(://[^:/@?#]+:)([^@/?#]*)@")
_QUERY_SECRET = re.compile(r"([?&](?:ssl)?password=)([^&#\s'\"]*)", re.IGNORECASE)


def versions() -> dict[str, str]:
    """Versions of the packages that shape a result."""
    import optuna
    import torch

    try:
        from importlib.metadata import version

        fvcore = version("fvcore")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        fvcore = "unknown"
    return {
        "scaler": __version__,
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "fvcore": fvcore,
    }


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------------------------
# URLs and secrets
# ----------------------------------------------------------------------------------------------


def heartbeat() -> tuple[int, int]:
    """(interval, grace period) in seconds for trial heartbeats.

    ``SCALER_HEARTBEAT=INTERVAL,GRACE`` overrides the defaults (tests use short ones).
    """
    text = os.environ.get("SCALER_HEARTBEAT", "")
    try:
        interval, grace = (int(x) for x in text.split(","))
        if interval >= 1 and grace > interval:
            return interval, grace
    except ValueError:
        pass
    return 10, 60


def _secrets(url: str | None) -> list[str]:
    """The passwords written in a URL, raw and percent-decoded."""
    found = [m.group(2) for m in _USERINFO.finditer(url or "")]
    found += [m.group(2) for m in _QUERY_SECRET.finditer(url or "")]
    return [s for raw in found if raw for s in dict.fromkeys((raw, unquote(raw)))]


def mask_url(url: str) -> str:
    """``url`` (or any text holding URLs) with every password replaced by ***."""
    return _QUERY_SECRET.sub(r"\1***", _USERINFO.sub(r"\1***@", url))


def mask_text(text: str, url: str | None) -> str:
    """``text`` with URLs masked and the passwords of ``url`` hidden wherever they appear."""
    text = mask_url(text)
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def check_storage_url(url: str) -> str:
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ValueError(
            f"--storage {mask_url(url)!r} is invalid: use an optuna storage URL "
            "(sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DB, mysql://...)"
        )
    return url


_SQLITE_VALID = "give sqlite:///PATH in a folder that exists or can be created, and is writable"


def check_sqlite_folder(url: str) -> str:
    """``url``; for a new SQLite file, refuse (ValueError) a folder that cannot be made or
    written, before anything is created: a file where a folder should be, or a place like
    /sys that refuses new folders (only trying shows it: root passes every access check)."""
    import tempfile

    path = sqlite_path(url)
    if path is None or path.is_file():
        return url
    bad = f"--storage {mask_url(url)!r} is invalid"
    if path.is_dir():
        raise ValueError(f"{bad}: {path} is a folder, not a database file; {_SQLITE_VALID}")
    ancestor = path.parent.absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{bad}: {ancestor} is a file, not a folder; {_SQLITE_VALID}")
    try:  # a probe folder, removed at once: nothing is left behind
        os.rmdir(tempfile.mkdtemp(prefix=".scaler-probe-", dir=ancestor))
    except OSError as e:
        reason = f"{ancestor} is not writable ({e.strerror})"
        raise ValueError(f"{bad}: {reason}; {_SQLITE_VALID}") from None
    return url


def default_storage(study: str) -> str:
    """``$SCALER_STORAGE`` when set, else the study's own SQLite file under studies/."""
    env = os.environ.get(STORAGE_ENV, "").strip()
    return env or f"sqlite:///{STUDIES_DIR / (study + '.db')}"


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    return None


def _record_stale(study, trial) -> None:
    """Keep why a trial was failed as stale (its point is queued again by the runner)."""
    grace = heartbeat()[1]
    worker = trial.user_attrs.get("worker") or "its worker"
    with contextlib.suppress(Exception):  # a record, never a reason to stop a live worker
        study.set_user_attr(
            stale_key(trial.number),
            f"{worker} sent no heartbeat for over {grace} s (the process died?)",
        )


def open_storage(url: str, *, create: bool = True):
    """An optuna RDB storage with heartbeats; bad URLs and unreachable servers → ValueError."""
    import optuna

    check_storage_url(url)
    path = sqlite_path(url)
    if path is not None:
        if not create and not path.exists():
            raise ValueError(f"storage {mask_url(url)!r} does not exist")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # check_sqlite_folder refuses these earlier; a race lands here
            raise ValueError(
                f"--storage {mask_url(url)!r} is invalid: cannot create {path.parent} "
                f"({e.strerror}); {_SQLITE_VALID}"
            ) from None
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several workers share one file: wait for the write lock instead of failing at once.
        engine_kwargs["connect_args"] = {"timeout": 120}
    else:
        engine_kwargs["pool_pre_ping"] = True
        if url.startswith("postgresql"):
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
    interval, grace = heartbeat()
    for attempt in range(5):
        try:
            with warnings_silenced():
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=interval,
                    grace_period=grace,
                    heartbeat_stale_trial_callback=_record_stale,
                )
        except Exception as e:
            # Workers starting together on a new database race to create its tables; the
            # loser sees a duplicate and simply opens what the winner made.
            text = str(e).lower()
            if attempt < 4 and any(
                m in text for m in ("unique constraint", "already exists", "duplicate key")
            ):
                time.sleep(0.5 + attempt)
                continue
            raise _storage_error(url, e) from None
    raise AssertionError("unreachable")


def _storage_error(url: str, e: Exception) -> ValueError:
    """The one-line, password-masked error for a storage that cannot be opened."""
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return ValueError(f"--storage {mask_url(url)!r} cannot be opened: {mask_text(reason, url)}")


@contextlib.contextmanager
def warnings_silenced():
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def study_names(storage) -> list[str]:
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def load_study(name: str, storage_url: str | None = None):
    """Load an existing study (from its default storage when none is given)."""
    import optuna

    url = storage_url or default_storage(name)
    path = sqlite_path(url)
    if storage_url is None and path is not None and not path.exists():
        raise ValueError(
            f"study {name!r} does not exist: no {path} "
            "(give --storage URL for a study stored elsewhere)"
        )
    storage = open_storage(url, create=False)
    if name not in study_names(storage):
        raise ValueError(f"study {name!r} does not exist in {mask_url(url)}")
    return optuna.load_study(study_name=name, storage=storage)


# ----------------------------------------------------------------------------------------------
# names and configurations
# ----------------------------------------------------------------------------------------------


def default_name(prefix: str, data: str, proxy: str, hashed: str) -> str:
    """``<prefix>-<data>-<proxy preset>-<6 hex digits of hashed>``.

    ``hashed`` holds what must differ between two studies that would otherwise share a name
    (the data's fingerprint, the proxy settings, a sweep's coefficients).
    """
    name = re.sub(r"[^A-Za-z0-9]+", "-", data.split(":", 1)[0]).strip("-")
    if ":" in data:
        name += "-" + re.sub(r"[^A-Za-z0-9]+", "-", Path(data.split(":", 1)[1]).name)[:24]
    digest = hashlib.sha1(hashed.encode()).hexdigest()[:6]
    return f"{prefix}-{name}-{proxy}-{digest}"


def proxy_json(settings, drop: tuple[str, ...] = (), preset: str | None = None) -> str:
    """A proxy configuration as canonical JSON, some fields left out (and those added later
    while they keep the default that reproduces earlier runs: the names of studies stay).

    ``min_steps`` acts only where a study lengthens its runs (a search, which gives its
    ``preset``): it is named only when it differs from that preset's own.
    """
    from scaler.proxy import ADDED_LATER, PROXY_PRESETS

    values = {
        k: v
        for k, v in dataclasses.asdict(settings).items()
        if k not in drop and not (k in ADDED_LATER and ADDED_LATER[k] == v)
    }
    if preset is None or values.get("min_steps") == PROXY_PRESETS[preset].min_steps:
        values.pop("min_steps", None)
    return json.dumps(values, sort_keys=True)


def check_study_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", name):
        raise ValueError(f"--study {name!r} is invalid: use letters, digits, '.', '_' and '-'")
    return name


def resolve_target(cfg, study: str | None, storage: str | None, default_name_fn) -> tuple:
    """(data source, study name, storage URL) of a validated search or sweep configuration.

    ``default_name_fn(cfg, fingerprint)`` names the study when ``study`` is not given.
    """
    from scaler.data import check_upsample, parse_data

    if cfg.upsample is not None:
        check_upsample(cfg.upsample)  # before any folder is read
    source = parse_data(cfg.data, upsample="off")
    name = check_study_name(default_name_fn(cfg, source.fingerprint()) if study is None else study)
    url = check_sqlite_folder(check_storage_url(storage) if storage else default_storage(name))
    source.with_upsample(study_upsample(cfg.upsample, name, url))
    base_pixels = cfg.proxy_config().base_pixels
    if source.max_pixels is not None and base_pixels > source.max_pixels:
        raise ValueError(
            f"proxy base_pixels {base_pixels} is invalid for {cfg.data}: the images are "
            f"{source.max_pixels} px and --upsample off refuses to enlarge them; use "
            "--upsample bilinear"
        )
    return source, name, url


def study_upsample(given: str | None, name: str, url: str) -> str:
    """The ``--upsample`` policy of a study: as given; else the existing study's own (its
    source's old behaviour when stored before the option existed); else the default."""
    from scaler.data import DEFAULT_UPSAMPLE

    if given is not None:
        return given
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return DEFAULT_UPSAMPLE  # no database yet (and none created here: --dry-run)
    if name not in study_names(open_storage(url, create=False)):
        return DEFAULT_UPSAMPLE
    return stored_upsample(stored_config(load_study(name, url)))


def normalize_config(config: dict[str, Any]) -> dict[str, Any]:
    """A stored configuration with renamed keys under their current names."""
    return {LEGACY_KEYS.get(k, k): v for k, v in config.items()}


def stored_config(study) -> dict[str, Any]:
    """A study's stored configuration, in the current vocabulary ({} if none)."""
    return normalize_config(dict(study.user_attrs.get("config", {})))


def stored_upsample(config: dict[str, Any]) -> str:
    """The ``--upsample`` policy a stored configuration ran with (legacy: its old behaviour)."""
    from scaler.data import legacy_upsample

    return config.get("upsample") or legacy_upsample(config.get("data", ""))


def config_diff(stored: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between a stored configuration and a new one (resumable keys ignored)."""
    out = []
    # The data spec only names the bytes its fingerprint pins: the same data under a new
    # name (0.4's "embedded" is "embedded:tiles=1" since 0.5) resumes.
    from scaler.proxy import ADDED_LATER

    if "upsample" in new and "upsample" not in stored and "data" in stored:  # stored before it
        stored = {**stored, "upsample": stored_upsample(stored)}
    fingerprint = stored.get("data_fingerprint")
    same_bytes = fingerprint is not None and fingerprint == new.get("data_fingerprint")
    for key in sorted(set(stored) | set(new)):
        if key in RESUMABLE or (key == "data" and same_bytes):
            continue
        if key not in stored and key in ABSENT_BEFORE:
            continue
        a, b = stored.get(key), new.get(key)
        later = {**ADDED_LATER, **CONFIG_ADDED_LATER}
        if key not in stored and key in later and b == later[key]:
            continue  # stored before the field existed, and its default is what ran
        a = later.get(key) if key not in stored and key in CONFIG_ADDED_LATER else a
        if json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            if isinstance(a, dict) and isinstance(b, dict):
                out += [f"{key}.{d}" for d in config_diff(a, b)]
            else:
                out.append(f"{key}: {a} → {b}")
    return out


def wait_for_config(study, kind: str, timeout: float = 120.0) -> dict[str, Any] | None:
    """The stored configuration, waiting while another worker is still creating the study.

    None when the study is not a scaler study of ``kind`` (no sign of one within a few seconds).
    """
    start = time.monotonic()
    while True:
        attrs = study.user_attrs  # read from the storage on every access
        if "config" in attrs:
            return attrs["config"]
        waited = time.monotonic() - start
        creating = attrs.get("kind") == kind and waited < timeout
        if not creating and (attrs or waited > 5.0):
            return None
        time.sleep(0.5)


def refuse_changed_config(study, kind: str, stored: dict[str, Any]) -> None:
    """Raise ValueError unless ``study`` is a scaler ``kind`` study stored with ``stored``."""
    old = wait_for_config(study, kind)
    if old is None or study.user_attrs.get("kind") != kind:
        raise ValueError(f"study {study.study_name!r} exists and is not a scaler {kind}")
    diff = config_diff(normalize_config(old), stored)
    if diff:
        raise ValueError(
            f"study {study.study_name!r} was created with a different configuration "
            f"({'; '.join(diff)}): rerun with the original options or pick another --study"
        )


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """What :func:`open_study` needs to create or check one study."""

    name: str
    storage_url: str
    kind: str  # "search" | "sweep" | "calibration"
    config: dict[str, Any]  # stored, and compared on every later open
    attrs: tuple[tuple[str, Any], ...] = ()  # further study attributes written at creation
    sampler: Callable[[], Any] | None = None  # optuna sampler factory (default: random, seed 0)
    pruner: Callable[[], Any] | None = None


def open_study(spec: StudySpec, on_create: Callable[[Any], Any] | None = None):
    """Create the study, or load it and refuse a different configuration.

    ``on_create(study)`` runs once, on the worker that created it, before the configuration is
    written: a worker that loads the study meanwhile waits for the configuration, so whatever
    ``on_create`` queues is queued exactly once.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # scaler prints what matters itself
    storage = open_storage(spec.storage_url)
    sampler = spec.sampler() if spec.sampler else optuna.samplers.RandomSampler(seed=0)
    pruner = spec.pruner() if spec.pruner else None
    if spec.name in study_names(storage):
        study = optuna.load_study(
            study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner
        )
        refuse_changed_config(study, spec.kind, spec.config)
        return study
    try:
        study = optuna.create_study(
            study_name=spec.name,
            storage=storage,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
        )
    except optuna.exceptions.DuplicatedStudyError:  # another worker created it first
        return open_study(spec, on_create)
    study.set_user_attr("kind", spec.kind)
    for key, value in spec.attrs:
        study.set_user_attr(key, value)
    study.set_user_attr("versions", versions())
    study.set_user_attr("created", now())
    if on_create is not None:
        on_create(study)
    study.set_user_attr("config", spec.config)  # last: see the docstring
    return study
