"""Tests of the fractal data set: scaler.data.fractal, the generator and FractalSource."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from scaler import data
from scaler.data import DataError, FractalSource, fractal, parse_data
from scaler.data.fractal import FractalConfig

# Small enough to render every split in well under a second.
SMALL = FractalConfig(classes=4, train=6, val=3, test=3, native=64, points=2048)


@pytest.fixture
def source(tmp_path: Path) -> FractalSource:
    return FractalSource(SMALL, cache_dir=tmp_path)


def test_shapes_dtypes_names_and_balance(source: FractalSource) -> None:
    assert source.name == "fractal:classes=4,train=6,val=3,test=3,native=64,points=2048"
    assert source.classes == ("ifs00", "ifs01", "ifs02", "ifs03")
    assert source.max_pixels == 64
    for split in data.SPLITS:
        part = source.load(split, 64)
        assert part.images.dtype == torch.uint8 and part.labels.dtype == torch.int64
        assert part.images.shape == (4 * SMALL.count(split), 3, 64, 64)
        assert part.images.is_contiguous()
        counts = torch.bincount(part.labels, minlength=4)
        assert counts.tolist() == [SMALL.count(split)] * 4
    assert source.load("train", 32) is source.load("train", 32)  # cached per size
    assert parse_data("fractal").classes[-1] == "ifs31"
    assert fractal.class_names(FractalConfig(classes=101))[:2] == ("ifs000", "ifs001")


def test_downsampling_sizes_and_no_upsampling(source: FractalSource) -> None:
    native = source.load("val", 64).images
    half = source.load("val", 32).images
    block = native.float().unflatten(2, (-1, 2)).unflatten(4, (-1, 2)).mean((3, 5))
    assert torch.equal(half, block.round().to(torch.uint8))  # an exact box filter
    for pixels in (16, 24, 48):
        assert source.load("val", pixels).images.shape[-2:] == (pixels, pixels)
    with pytest.raises(DataError, match="images are 64 px"):
        source.load("train", 65)


def test_generation_is_deterministic(source: FractalSource) -> None:
    for split in data.SPLITS:
        images, labels = fractal.render_split(SMALL, split)  # bypasses every cache
        assert torch.equal(images, source.load(split, 64).images)
        assert torch.equal(labels, source.load(split, 64).labels)
    again = FractalSource(SMALL, cache_dir=source.cache_dir)
    assert again.fingerprint() == source.fingerprint()
    other = FractalSource(dataclasses.replace(SMALL, seed=1))
    assert other.fingerprint() != source.fingerprint()
    assert not torch.equal(
        fractal.render_split(other.config, "val")[0], again.load("val", 64).images
    )


def test_splits_share_no_instance(source: FractalSource) -> None:
    seen: dict[bytes, str] = {}
    for split in data.SPLITS:
        for image in source.load(split, 64).images:
            key = image.numpy().tobytes()
            assert key not in seen, f"a {split} image repeats a {seen.get(key)} image"
            seen[key] = split


def test_changing_one_count_leaves_other_splits_alone() -> None:
    more = dataclasses.replace(SMALL, train=9)
    assert torch.equal(fractal.render_split(more, "val")[0], fractal.render_split(SMALL, "val")[0])


def test_instances_of_a_class_vary(source: FractalSource) -> None:
    part = source.load("train", 64)
    for label in range(SMALL.classes):
        images = part.images[part.labels == label].float()
        # Per-pixel spread across the class's instances, averaged: 0 for copies.
        assert images.std(dim=0).mean() > 20, label


def test_class_systems_are_contractive_and_fill_the_canvas() -> None:
    config = FractalConfig(classes=12)
    for system in fractal.class_systems(config):
        assert 2 <= len(system) <= 4
        assert (fractal._spectral_norm(system[:, :4]) < 1).all()
        x, y = fractal._chaos_game(system[None], 16, np.random.default_rng(0))
        assert fractal._fill_rate(x, y, 32)[0] >= config.min_fill * 0.8


def _nearest_mean_accuracy(config: FractalConfig, pixels: int) -> float:
    source = FractalSource(config)
    train, test = source.load("train", pixels), source.load("test", pixels)
    x, y = train.images.flatten(1).float(), test.images.flatten(1).float()
    means = torch.stack([x[train.labels == c].mean(0) for c in range(config.classes)])
    predicted = torch.cdist(y, means).argmin(1)
    return float((predicted == test.labels).float().mean())


def test_classes_are_neither_trivial_nor_noise(capsys: pytest.CaptureFixture[str]) -> None:
    # A nearest-class-mean classifier on 16 px images: far above chance, far from perfect.
    config = FractalConfig(classes=8, train=40, val=1, test=40, native=64)
    accuracy = _nearest_mean_accuracy(config, 16)
    with capsys.disabled():
        print(f"\nfractal nearest-class-mean, 8 classes at 16 px: {accuracy:.3f} (chance 0.125)")
    assert 0.2 < accuracy < 0.8


@pytest.mark.slow
def test_default_classes_are_neither_trivial_nor_noise(capsys) -> None:
    config = FractalConfig(train=100, val=1, test=50, native=64)  # the default 32 systems
    accuracy = _nearest_mean_accuracy(config, 16)
    with capsys.disabled():
        print(f"\nfractal nearest-class-mean, 32 classes at 16 px: {accuracy:.3f} (chance 0.031)")
    assert 2 / 32 < accuracy < 0.6


def test_disk_cache_is_written_then_read(
    source: FractalSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fractal, "_FRACTAL_DISK_PIXELS", 0)
    monkeypatch.setattr(fractal, "_FRACTAL_MEMORY", {})
    images = source.load("test", 64).images
    path = source.cache_path("test")
    assert path.is_file() and path.parent == source.cache_dir / "fractal"

    def refuse(*args: object) -> None:
        raise AssertionError("rendered again despite the disk cache")

    monkeypatch.setattr(fractal, "_FRACTAL_MEMORY", {})
    monkeypatch.setattr(fractal, "render_split", refuse)
    again = FractalSource(SMALL, cache_dir=source.cache_dir)
    assert torch.equal(again.load("test", 64).images, images)
    path.write_bytes(b"broken")  # a broken file is rendered again, never fatal
    monkeypatch.setattr(fractal, "_FRACTAL_MEMORY", {})
    with pytest.raises(AssertionError, match="rendered again"):
        FractalSource(SMALL, cache_dir=source.cache_dir).load("test", 64)


def test_small_splits_stay_off_disk(source: FractalSource) -> None:
    source.load("val", 64)
    assert not (source.cache_dir / "fractal").exists()


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALER_CACHE", str(tmp_path / "c"))
    assert parse_data("fractal").cache_path("train").parent == tmp_path / "c" / "fractal"


def test_spec_overrides() -> None:
    source = parse_data("fractal:classes=6, train=20,jitter=0.1,seed=3")
    assert isinstance(source, FractalSource)
    config = source.config
    assert (config.classes, config.train, config.jitter, config.seed) == (6, 20, 0.1, 3)
    assert config.val == FractalConfig().val and source.num_classes == 6
    assert parse_data("fractal").config == FractalConfig()
    assert parse_data("fractal:rotate=90").config.rotate == 90.0


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("fractal:", "no options; use fractal or fractal:KEY=VALUE"),
        ("fractal:foo=1", "unknown key 'foo'; valid: classes, train, val, test, native"),
        ("fractal:classes", "expected key=value, got 'classes'"),
        ("fractal:classes=x", "classes must be an integer, got 'x'"),
        ("fractal:classes=2.5", "classes must be an integer, got '2.5'"),
        ("fractal:classes=1", "classes must be an integer >= 2, got 1"),
        ("fractal:jitter=abc", "jitter must be a number, got 'abc'"),
        ("fractal:jitter=0.9", "jitter must be a number from 0 to 0.5, got 0.9"),
        ("fractal:points=1000", "points must be a multiple of 256, got 1000"),
        ("fractal:native=8", "native must be an integer from 16 to 512, got 8"),
        ("fractal:train=4,train=5", "key 'train' given twice"),
        ("Fractal", "unknown data source"),
        (
            "fractals:x",
            "unknown scheme 'fractals'; valid: fashion, fashion:KEY=VALUE,..., embedded, "
            "embedded:KEY=VALUE,..., fractal",
        ),
    ],
)
def test_bad_specs(value: str, match: str) -> None:
    with pytest.raises(DataError, match=match) as caught:
        parse_data(value)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"--data {value!r}: ")
