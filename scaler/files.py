"""Writing files so that nothing is ever half-written, and checking where they go.

Every file scaler writes (exports, reports, figures, data caches, ``train --out``) goes through
:func:`write_atomic`: written to a temporary file beside the target, then renamed over it, so a
reader sees the old file or the new one, and an interrupted write leaves no partial file. The
file gets the permissions the umask gives a new file (a temporary file starts owner-only).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomic(path: Path, data: bytes | str | Callable[[IO[bytes]], None]) -> Path:
    """Write ``data`` (bytes, text, or a function writing to a binary file) to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def check_out_file(path: Path, option: str = "--out") -> Path:
    """``path`` as a file to write: ValueError if it is a folder or its folder is missing."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a directory: give a file path")
    if not path.parent.exists():
        raise ValueError(
            f"{option} {str(path)!r} is invalid: folder {str(path.parent)!r} does not exist"
        )
    return path


def check_out_dir(out: Path, option: str = "--out") -> Path:
    """``out`` as a folder to write into; ValueError if it or a parent is a file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {str(out)!r} is a file: give a folder")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{option} {str(out)!r} is invalid: {str(parent)!r} is a file")
    return out


def write_files(out: Path, files: dict[str, bytes]) -> list[Path]:
    """Write each named file into folder ``out`` atomically; returns the paths in order."""
    out.mkdir(parents=True, exist_ok=True)
    return [write_atomic(out / name, data) for name, data in files.items()]
