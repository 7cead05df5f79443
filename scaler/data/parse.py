"""``--data`` specs: :func:`parse_data` turns one into a validated source, and every
message for an unusable spec names what is valid (see :mod:`scaler.data` for the grammar).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Final

from scaler.data.base import DataError, DataSource, check_upsample
from scaler.data.cifar import CIFAR_SCHEMES, CifarSource
from scaler.data.embedded import EmbeddedConfig, EmbeddedSource
from scaler.data.fashion import EMBEDDED_COUNTS, FashionConfig, FashionSource
from scaler.data.fractal import FractalConfig, FractalSource, parse_fractal
from scaler.data.imagefolder import ImageFolderSource

__all__ = ["DEFAULT_DATA", "VALID_SPECS", "parse_data"]

DEFAULT_DATA: Final = "fashion"
VALID_SPECS: Final = (
    "fashion, fashion:KEY=VALUE,..., embedded, embedded:KEY=VALUE,..., fractal, "
    "fractal:KEY=VALUE,..., imagefolder:PATH, cifar10:PATH, cifar100:PATH"
)


def _parse_fractal(value: str, options: str, cache_dir: Path | None) -> FractalSource:
    if not options.strip():
        keys = ", ".join(f.name for f in dataclasses.fields(FractalConfig))
        raise DataError(
            f"--data {value!r}: no options; use fractal or fractal:KEY=VALUE,... ({keys})"
        )
    try:
        config = parse_fractal(options)
    except ValueError as exc:
        raise DataError(f"--data {value!r}: {exc}") from None
    return FractalSource(config, cache_dir)


# The embedded knobs a --data spec may set (photos and fractions stay Python-only).
_EMBEDDED_KEYS: Final = {
    "crop": int,
    "train": int,
    "val": int,
    "test": int,
    "gap": int,
    "tiles": int,
    "seed": int,
    "min_std": float,
}


# The fashion knobs: images per class of each split.
_FASHION_KEYS: Final = {split: int for split in EMBEDDED_COUNTS}


def _parse_options(value: str, options: str, keys: dict[str, Any], config: type) -> Any:
    """``embedded:tiles=2,val=100``: a ``config`` with those fields set, each read by its
    type in ``keys``."""
    fields: dict[str, Any] = {}
    for item in options.split(","):
        key, sep, text = (part.strip() for part in item.partition("="))
        if not sep or key not in keys or key in fields:
            raise DataError(
                f"--data {value!r}: expected distinct KEY=VALUE items with KEY one of "
                f"{', '.join(keys)}"
            )
        try:
            fields[key] = keys[key](text)
        except ValueError:
            raise DataError(f"--data {value!r}: {key} must be a number, got {text!r}") from None
    try:
        return config(**fields)
    except DataError as exc:
        raise DataError(f"--data {value!r}: {exc}") from None


def _bundled(value: str, options: str | None, cache_dir: Path | None) -> DataSource:
    """A source that ships with scaler, with the spec's options (None: its defaults)."""
    scheme = value.partition(":")[0]
    if scheme == "fractal":
        return FractalSource(cache_dir=cache_dir)
    if options is None:
        return FashionSource() if scheme == "fashion" else EmbeddedSource()
    if scheme == "fashion":
        return FashionSource(_parse_options(value, options, _FASHION_KEYS, FashionConfig))
    return EmbeddedSource(_parse_options(value, options, _EMBEDDED_KEYS, EmbeddedConfig))


def parse_data(value: str, cache_dir: Path | None = None, upsample: str = "off") -> DataSource:
    """Turn a ``--data`` spec into a validated source (lists files, decodes nothing).

    ``cache_dir`` is where imagefolder keeps decoded tensors and fractal its rendered
    splits; default ``$SCALER_CACHE`` or ``~/.cache/scaler``. ``upsample`` (``--upsample``)
    is how sizes above the images' own are served: bilinear, bicubic or off (refused; the
    library enlarges nothing unasked, the commands default to
    :data:`~scaler.data.base.DEFAULT_UPSAMPLE` for a new study).
    """
    check_upsample(upsample)  # before any folder is read
    return _parse(value, cache_dir).with_upsample(upsample)


def _parse(value: str, cache_dir: Path | None) -> DataSource:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"--data {value!r}: empty; valid: {VALID_SPECS}")
    if value in ("embedded", "fashion", "fractal"):  # a bundled source with its defaults
        return _bundled(value, None, cache_dir)
    scheme, sep, rest = value.partition(":")
    if scheme == "fractal":
        return _parse_fractal(value, rest, cache_dir)
    if not sep:
        raise DataError(f"--data {value!r}: unknown data source; valid: {VALID_SPECS}")
    if scheme in ("embedded", "fashion"):
        return _bundled(value, rest, cache_dir)
    if scheme not in ("imagefolder", *CIFAR_SCHEMES):
        raise DataError(f"--data {value!r}: unknown scheme {scheme!r}; valid: {VALID_SPECS}")
    if not rest.strip():
        raise DataError(f"--data {value!r}: missing path; use {scheme}:PATH")
    try:
        if scheme == "imagefolder":
            return ImageFolderSource(Path(rest), cache_dir)
        return CifarSource(scheme, Path(rest))
    except DataError as exc:
        raise DataError(f"--data {value!r}: {exc}") from None
    except OSError as exc:  # unreadable folder, permission denied, ...
        raise DataError(f"--data {value!r}: {exc.strerror or exc}") from None
