"""Bad input that used to run or end in a traceback: one line, exit code 2, nothing created.

A folder of one class (every network scores 100 %), an SQLite path under a file or in a folder
that refuses new folders, and a bare tolerance above 1 (a fraction, so 5 is 500 %).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scaler.search_config import parse_tolerance


def _images(folder: Path, n: int = 3) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = np.random.default_rng(i).integers(0, 255, size=(20, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")


def _refused(cli, tmp_path: Path, *args: str) -> str:
    """Run ``scaler search`` in ``tmp_path``; assert one line, exit 2, nothing written."""
    before = set(tmp_path.rglob("*"))
    code, out, err = cli("search", "--budget", "2x", "--proxy", "quick", *args)
    assert code == 2 and err.startswith("Error: ") and err.count("\n") == 1, err
    assert "Traceback" not in out + err
    assert set(tmp_path.rglob("*")) == before  # no study, no folder, no probe left behind
    return err


def test_one_class_folder_is_refused(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _images(tmp_path / "one" / "cats")
    err = _refused(cli, tmp_path, "--data", f"imagefolder:{tmp_path / 'one'}")
    assert "has 1 class (cats): at least 2 classes are needed" in err
    assert "--data" in err and "each with images in every split" in err


def test_one_class_split_folder_is_refused(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for split in ("train", "val", "test"):
        _images(tmp_path / "one" / split / "cats")
    err = _refused(cli, tmp_path, "--data", f"imagefolder:{tmp_path / 'one'}")
    assert "has 1 class (cats)" in err


@pytest.mark.parametrize("empty", ["dogs", "test/dogs"])
def test_a_class_without_images_in_a_split_is_refused(cli, tmp_path, monkeypatch, empty):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "pets"
    if "/" in empty:  # train/, val/, test/ with dogs empty in test/
        for split in ("train", "val", "test"):
            for name in ("cats", "dogs"):
                _images(root / split / name)
        for file in (root / empty).iterdir():
            file.unlink()
    else:
        _images(root / "cats")
        (root / empty).mkdir()
    err = _refused(cli, tmp_path, "--data", f"imagefolder:{root}")
    assert f"class folder {root / empty} has no images" in err


def test_storage_under_a_file_is_refused(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder")
    url = f"sqlite:///{tmp_path / 'afile' / 'sub' / 'x.db'}"
    err = _refused(cli, tmp_path, "--storage", url)
    assert f"--storage '{url}' is invalid: {tmp_path / 'afile'} is a file" in err
    assert "a folder that exists or can be created, and is writable" in err


def test_storage_in_a_folder_that_refuses_folders_is_refused(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        probe = locked / "p"
        try:  # root passes permission bits: /sys refuses new folders to everyone
            probe.mkdir()
            probe.rmdir()
            locked = Path("/sys")
        except OSError:
            pass
        if locked == Path("/sys") and not locked.is_dir():
            pytest.skip("no folder here refuses new folders")
        url = f"sqlite:///{locked / 'newdir' / 'x.db'}"
        err = _refused(cli, tmp_path, "--storage", url)
        assert f"--storage '{url}' is invalid: {locked} is not writable" in err
    finally:
        (tmp_path / "locked").chmod(0o700)


def test_storage_that_is_a_folder_is_refused(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "db").mkdir()
    err = _refused(cli, tmp_path, "--storage", f"sqlite:///{tmp_path / 'db'}")
    assert "is a folder, not a database file" in err


@pytest.mark.parametrize("option", ["--tolerance", "--proxy-tolerance"])
def test_bare_tolerance_above_one_suggests_a_percentage(cli, tmp_path, monkeypatch, option):
    monkeypatch.chdir(tmp_path)
    err = _refused(cli, tmp_path, option, "5")
    assert f"{option} '5' is invalid: 5 means 500 %" in err
    assert "between 0% and 100% (did you mean 5%?)" in err


def test_tolerance_values():
    assert parse_tolerance("5%") == pytest.approx(0.05)
    assert parse_tolerance("0.05") == pytest.approx(0.05)
    with pytest.raises(ValueError, match=r"1 means 100 %.*did you mean 1%\?"):
        parse_tolerance("1")
    with pytest.raises(ValueError) as caught:  # a percentage or a negative gets no hint
        parse_tolerance("200%")
    assert "did you mean" not in str(caught.value)
