"""Data sources for proxy training.

A data source is named by a spec string (the ``--data`` option) and parsed by
:func:`parse_data`. The sources, one module each:

``embedded`` (0.6's default) / ``embedded:KEY=VALUE,...`` — :mod:`scaler.data.embedded`
    A small classification set cut at run time from the public-domain / CC0
    photographs bundled inside the scikit-image wheel: one class per photo,
    square crops drawn from disjoint regions of each photo (a train band; val
    and test share two held-out bands as a checkerboard of pieces), so no pixel
    is shared between splits. Nothing is downloaded. The options override
    :class:`EmbeddedConfig` fields: crop, train, val, test, gap, tiles, seed and
    min_std (``embedded:tiles=1`` is scaler 0.4's set).
``fashion`` (default) / ``fashion:train=N,val=N,test=N`` — :mod:`scaler.data.fashion`
    A seeded, class-balanced draw of Fashion-MNIST shipped inside the package (10
    classes, 28 px grayscale; 260 train, 150 val and 150 test images per class, the
    options take the first N of each): real, independent held-out images.
``fractal`` / ``fractal:KEY=VALUE,...`` — :mod:`scaler.data.fractal`
    Fractals of random iterated function systems, one system per class (FractalDB
    style), generated from a seed; the options override :class:`FractalConfig`
    fields: classes, train, val, test, native, points, jitter, rotate, min_fill and
    seed (``fractal:classes=64,train=500``). Big generated splits are cached on disk.
``imagefolder:PATH`` — :mod:`scaler.data.imagefolder`
    One sub-folder per class (the ImageFolder convention), optionally with
    ``train/``, ``val/`` (and ``test/``) above the class folders. Decoded
    images are cached on disk per (folder state, split, size).
``cifar10:PATH`` / ``cifar100:PATH`` — :mod:`scaler.data.cifar`
    The official *binary* CIFAR distributions in a local folder.

Every source serves uint8 RGB tensors of shape ``N x 3 x P x P`` through
:meth:`DataSource.load` (one-channel images replicated to 3); resized splits are kept in
memory per (split, size). A size above the images' own follows the source's ``upsample``
policy (``--upsample``, the same for every source): enlarged bilinear (the commands'
default for a new study) or bicubic, or refused (``off``, the default of :func:`parse_data`).
Invalid specs raise :class:`DataError` with a one-line message meant for the
user. What the sources share (:class:`DataSource`, :class:`Split`, the disk cache
under ``$SCALER_CACHE`` or ``~/.cache/scaler``, digests) is in :mod:`scaler.data.base`;
spec parsing in :mod:`scaler.data.parse`.
"""

from __future__ import annotations

from scaler.data.base import (
    DEFAULT_UPSAMPLE,
    SPLITS,
    UPSAMPLE_MODES,
    DataError,
    DataSource,
    Split,
    check_upsample,
    legacy_upsample,
)
from scaler.data.cifar import CifarSource
from scaler.data.embedded import (
    EmbeddedConfig,
    EmbeddedSource,
    embedded_info,
    split_regions,
    split_tiles,
)
from scaler.data.fashion import FashionConfig, FashionSource
from scaler.data.fractal import FractalConfig, FractalSource
from scaler.data.imagefolder import ImageFolderSource
from scaler.data.parse import DEFAULT_DATA, VALID_SPECS, parse_data

__all__ = [
    "DEFAULT_DATA",
    "DEFAULT_UPSAMPLE",
    "SPLITS",
    "UPSAMPLE_MODES",
    "VALID_SPECS",
    "CifarSource",
    "DataError",
    "DataSource",
    "EmbeddedConfig",
    "EmbeddedSource",
    "FashionConfig",
    "FashionSource",
    "FractalConfig",
    "FractalSource",
    "ImageFolderSource",
    "Split",
    "check_upsample",
    "embedded_info",
    "legacy_upsample",
    "parse_data",
    "split_regions",
    "split_tiles",
]
