"""Atomic writes: whole files or none, with the permissions a new file gets."""

from __future__ import annotations

import os

import pytest

from scaler.files import write_atomic


def test_written_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert path.read_text() == "{}" and (path.stat().st_mode & 0o777) == 0o644


def test_a_failed_write_leaves_nothing(tmp_path):
    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(tmp_path / "b.bin", fail)
    assert list(tmp_path.iterdir()) == []
