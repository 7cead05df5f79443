"""Tests of scaler.proxy: the presets, resolve_proxy, validation and the stored form.

Nothing here trains or needs torch: scaler.proxy must import without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from scaler.proxy import PROXY_PRESETS, ProxyConfig, resolve_proxy

ROOT = Path(__file__).resolve().parents[1]
V01 = Path(__file__).parent / "data" / "v0.1" / "v01.db"


def test_proxy_imports_no_torch() -> None:
    code = "import scaler.proxy, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_presets_are_valid_and_standard_is_the_default() -> None:
    assert set(PROXY_PRESETS) == {"quick", "standard", "long"}
    assert PROXY_PRESETS["standard"] == resolve_proxy()
    # 0.7's standard scores an EMA with flip TTA (reports/noise-fashion); otherwise 0.6's.
    assert resolve_proxy(overrides={"average": "none", "tta": "none"}) == ProxyConfig()
    assert (resolve_proxy().average, resolve_proxy().tta) == ("ema", "flip")
    quick, standard, long = (PROXY_PRESETS[k] for k in ("quick", "standard", "long"))
    assert quick.epochs < standard.epochs < long.epochs
    assert (quick.base_pixels, standard.base_pixels, long.base_pixels) == (32, 48, 48)
    assert all(p.device == "auto" and p.zero_init for p in PROXY_PRESETS.values())


def test_resolve_applies_overrides_to_the_preset() -> None:
    config = resolve_proxy("quick", {"lr": 0.01, "images": 1000})
    assert config.lr == 0.01 and config.images == 1000
    assert config.epochs == PROXY_PRESETS["quick"].epochs
    assert config.base_pixels == PROXY_PRESETS["quick"].base_pixels
    # (field, value) pairs, as commands and study configs hold them, give the same settings.
    assert resolve_proxy("quick", (("images", 1000), ("lr", 0.01))) == config
    assert resolve_proxy("long", ()) == PROXY_PRESETS["long"]
    assert "1000 images" in config.describe() and "\n" not in config.describe()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: resolve_proxy("huge"), "proxy preset 'huge' is unknown: valid presets are quick"),
        (lambda: resolve_proxy("quick", {"batch_size": 0}), "batch_size 0 is invalid"),
        (lambda: resolve_proxy("quick", {"lr": -0.1}), "lr -0.1 is invalid"),
        (lambda: resolve_proxy("quick", {"lr": float("nan")}), "lr nan is invalid"),
        (lambda: resolve_proxy("quick", {"optimizer": "adam"}), "optimizer 'adam' is unknown.*sgd"),
        (lambda: resolve_proxy("quick", {"device": "tpu"}), "device 'tpu' is unknown.*cpu"),
        (lambda: resolve_proxy("quick", {"epochs": 0}), "epochs 0 is invalid"),
        (lambda: resolve_proxy("quick", {"crop_scale": 0.0}), "crop_scale 0.0 is invalid"),
        (lambda: resolve_proxy("quick", {"threads": 0}), "threads 0 is invalid"),
        (lambda: resolve_proxy("quick", {"zero_init": 1}), "zero_init 1 is invalid"),
        (lambda: resolve_proxy("quick", {"base_pixels": 4}), "base_pixels 4 is invalid"),
        (
            lambda: resolve_proxy("quick", {"batchsize": 8}),
            "option 'batchsize' is unknown.*batch_size",
        ),
        (lambda: ProxyConfig.from_dict({"lr": 0.1, "speed": 2}), "option 'speed' is unknown"),
        (lambda: resolve_proxy(stored={"speed": 2}), "proxy option 'speed' is unknown"),
        (lambda: resolve_proxy(stored={}, overrides={"lr": 0}), "lr 0 is invalid"),
        (lambda: resolve_proxy("quick", stored={}), "give one of them"),
        (lambda: ProxyConfig(cuda_batch_size=0), "cuda_batch_size 0 is invalid"),
    ],
)
def test_invalid_settings_raise_one_line_value_errors(make, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_the_stored_form_round_trips_through_json() -> None:
    config = resolve_proxy("long", {"threads": 1, "device": "cpu", "amp": False, "images": 640})
    stored = json.loads(json.dumps(config.to_dict()))
    assert stored == config.to_dict() and set(stored) == set(ProxyConfig.__dataclass_fields__)
    assert ProxyConfig.from_dict(stored) == config == resolve_proxy(stored=stored)
    assert resolve_proxy(stored=stored, overrides={"epochs": 4}) == resolve_proxy(
        "long", {**stored, "epochs": 4}
    )


def test_settings_stored_by_older_versions_take_the_new_fields_defaults() -> None:
    # 0.1.0 stored no cuda_batch_size and no zero_init (tests/data/v0.1).
    old = resolve_proxy("quick").to_dict()
    del old["cuda_batch_size"], old["zero_init"]
    assert resolve_proxy(stored=old) == resolve_proxy("quick")
    assert resolve_proxy(stored={}) == ProxyConfig()


def _study(config: dict, **attrs) -> SimpleNamespace:
    """What confirm reads of a search: its stored configuration and attributes."""
    return SimpleNamespace(user_attrs={"kind": "search", "config": config, **attrs})


def test_the_confirmation_reads_the_searchs_proxy_as_resolve_does() -> None:
    from scaler import confirm

    search = resolve_proxy("quick", {"images": 64, "batch_size": 16, "threads": 1})
    study = _study({"proxy": json.loads(json.dumps(search.to_dict())), "proxy_preset": "quick"})
    assert confirm.search_settings(study) == search
    # A study that stored no settings ran with the defaults before any field was added.
    assert confirm.search_settings(_study({})) == ProxyConfig()

    # A named confirmation proxy: that preset with the search's base pixels, threads, device.
    cfg = confirm.ConfirmConfig(proxy="long", proxy_overrides=(("lr", 0.01),))
    *_, proxy = confirm._resolve(cfg, {"preset": "quick", "settings": search}, 640)
    assert proxy == resolve_proxy(
        "long", {"base_pixels": 32, "threads": 1, "device": "auto", "lr": 0.01}
    )
    # The default: the search's own proxy, longer (1.5x for a quick search).
    *_, proxy = confirm._resolve(
        confirm.ConfirmConfig(), {"preset": "quick", "settings": search}, 640
    )
    assert proxy == resolve_proxy(stored=search.to_dict(), overrides={"images": 96})


def test_the_v01_studys_stored_proxy_still_reads(tmp_path, monkeypatch) -> None:
    import shutil

    from scaler import confirm
    from scaler.studies import load_study

    shutil.copy(V01, tmp_path / "v01.db")
    monkeypatch.chdir(tmp_path)
    study = load_study("search-v01", "sqlite:///v01.db")
    stored = study.user_attrs["config"]["proxy"]
    proxy = confirm.search_settings(study)
    assert proxy == resolve_proxy(stored=stored)
    assert (proxy.base_pixels, proxy.images, proxy.batch_size) == (16, 64, 32)
