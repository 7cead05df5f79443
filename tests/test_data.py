"""Tests of scaler.data: the embedded set, imagefolder and the CIFAR binary readers."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from scaler import data
from scaler.data import (
    DataError,
    EmbeddedConfig,
    imagefolder,
    parse_data,
    split_regions,
    split_tiles,
)
from scaler.data import embedded as emb

# --------------------------------------------------------------------------- embedded


@pytest.fixture(scope="module")
def embedded() -> data.EmbeddedSource:
    source = parse_data("embedded")
    assert isinstance(source, data.EmbeddedSource)
    return source


def test_default_is_the_embedded_fashion_mnist() -> None:
    from scaler.cli.common import DATA_DEFAULT

    assert data.DEFAULT_DATA == DATA_DEFAULT == "fashion"  # the CLI's spelling agrees


def test_embedded_loads_every_split_at_32(embedded: data.EmbeddedSource) -> None:
    config = embedded.config
    assert embedded.name == "embedded"
    assert embedded.max_pixels == config.crop
    assert embedded.num_classes == len(embedded.classes) >= 10
    for split in data.SPLITS:
        part = embedded.load(split, 32)
        assert part.images.dtype == torch.uint8 and part.labels.dtype == torch.int64
        assert part.images.shape[1:] == (3, 32, 32) and part.images.is_contiguous()
        counts = torch.bincount(part.labels, minlength=embedded.num_classes)
        assert counts.tolist() == [config.count(split)] * embedded.num_classes
    assert embedded.load("train", 32) is embedded.load("train", 32)  # cached per size


def test_embedded_downsample_matches_block_mean(embedded: data.EmbeddedSource) -> None:
    native = embedded.load("val", embedded.max_pixels)
    half = embedded.load("val", embedded.max_pixels // 2)
    block = native.images[:4].float().unflatten(2, (-1, 2)).unflatten(4, (-1, 2)).mean((3, 5))
    assert torch.equal(half.images[:4], block.round().to(torch.uint8))
    assert embedded.load("val", 48).images.shape[-1] == 48  # non-integer factor path


def test_embedded_refuses_upsampling(embedded: data.EmbeddedSource) -> None:
    with pytest.raises(
        DataError, match=f"images are {embedded.max_pixels} px.*--upsample bilinear"
    ):
        embedded.load("train", embedded.max_pixels + 1)
    with pytest.raises(DataError, match="unknown split"):
        embedded.load("holdout", 32)


def test_embedded_build_is_deterministic(embedded: data.EmbeddedSource) -> None:
    again = emb._build_embedded(embedded.config)  # bypasses the per-process cache
    native = embedded.config.crop
    for split in data.SPLITS:
        assert torch.equal(again.splits[split].images, embedded.load(split, native).images)
        assert torch.equal(again.splits[split].labels, embedded.load(split, native).labels)
        assert np.array_equal(again.boxes[split], embedded.crop_boxes(split))
    assert embedded.fingerprint() == data.EmbeddedSource(embedded.config).fingerprint()
    assert embedded.fingerprint() != data.EmbeddedSource(EmbeddedConfig(seed=1)).fingerprint()


def test_embedded_crop_boxes_of_different_splits_never_overlap(
    embedded: data.EmbeddedSource,
) -> None:
    labels = {s: embedded.load(s, embedded.max_pixels).labels.numpy() for s in data.SPLITS}
    info = {entry["class"]: entry for entry in data.embedded_info()}
    for label, name in enumerate(embedded.classes):
        height, width = info[name]["size"]
        boxes = {s: embedded.crop_boxes(s)[labels[s] == label] for s in data.SPLITS}
        for split, split_boxes in boxes.items():
            assert len(split_boxes) == embedded.config.count(split)
            assert (split_boxes[:, :2] >= 0).all()
            assert (split_boxes[:, 2] <= height).all() and (split_boxes[:, 3] <= width).all()
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            # Every pair of boxes: they overlap iff both their row and column ranges do.
            ba, bb = boxes[a][:, None, :], boxes[b][None, :, :]
            rows = (ba[..., 0] < bb[..., 2]) & (bb[..., 0] < ba[..., 2])
            cols = (ba[..., 1] < bb[..., 3]) & (bb[..., 1] < ba[..., 3])
            assert not (rows & cols).any(), f"{name}: a {a} crop overlaps a {b} crop"


def test_embedded_crops_are_the_pixels_inside_their_boxes(
    embedded: data.EmbeddedSource,
) -> None:
    photo = emb._read_photo("text", grayscale=False)
    label = embedded.classes.index("text")
    part = embedded.load("test", embedded.max_pixels)
    rows = (part.labels == label).nonzero().flatten()[:5]
    for row in rows.tolist():
        top, left, bottom, right = embedded.crop_boxes("test")[row]
        expected = torch.from_numpy(photo[top:bottom, left:right].copy()).permute(2, 0, 1)
        assert torch.equal(part.images[row], expected)


def test_split_regions_are_disjoint_and_inside() -> None:
    for height, width in ((300, 451), (660, 550), (172, 448)):
        regions = split_regions(height, width, (0.6, 0.2, 0.2), gap=8)
        spans = sorted((r[1], r[3]) if width >= height else (r[0], r[2]) for r in regions.values())
        assert spans[0][0] == 0 and spans[-1][1] == max(height, width)
        assert spans[0][1] + 8 == spans[1][0] and spans[1][1] + 8 == spans[2][0]


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_split_tiles_deal_both_held_out_bands_to_val_and_test() -> None:
    config = EmbeddedConfig(tiles=2)
    for height, width in ((512, 512), (300, 451), (872, 1000), (427, 640)):
        bands = split_regions(height, width, config.fractions, config.gap)
        tiles = split_tiles(height, width, config)
        assert tiles["train"] == (bands["train"],)
        for split in ("val", "test"):
            # one piece of each held-out band, each inside it and big enough for a crop
            assert len(tiles[split]) == 2
            for band in ("val", "test"):
                inside = [
                    box for box in tiles[split] if all(
                        lo <= v <= hi for v, lo, hi in zip(
                            box, bands[band][:2] * 2, bands[band][2:] * 2, strict=True))
                ]  # fmt: skip
                assert len(inside) == 1
            assert all(min(b[2] - b[0], b[3] - b[1]) >= config.crop for b in tiles[split])
        boxes = [(s, b) for s, bs in tiles.items() for b in bs]
        for i, (s1, b1) in enumerate(boxes):
            assert all(not _overlap(b1, b2) for s2, b2 in boxes[i + 1 :] if s1 != s2)
    # too narrow for two crops across: one band each, as with tiles=1
    narrow = split_tiles(172, 448, config)
    assert narrow == {k: (v,) for k, v in split_regions(172, 448, config.fractions, 8).items()}
    assert split_tiles(512, 512, EmbeddedConfig(tiles=1)) == {
        k: (v,) for k, v in split_regions(512, 512, (0.5, 0.25, 0.25), 8).items()
    }


def test_tiled_embedded_keeps_train_and_draws_held_out_crops_from_both_bands(
    embedded: data.EmbeddedSource,
) -> None:
    tiled, banded = parse_data("embedded:tiles=2"), parse_data("embedded:tiles=1")
    assert tiled.fingerprint() == embedded.fingerprint()  # the default
    assert torch.equal(tiled.load("train", 32).images, banded.load("train", 32).images)
    assert "tiles" not in emb._config_fields(banded.config)  # 0.1-0.4's fingerprint, as was
    assert tiled.fingerprint() != banded.fingerprint()
    for split in ("val", "test"):
        labels = tiled.load(split, 32).labels
        boxes = tiled.crop_boxes(split)
        info = {e["class"]: e["size"] for e in data.embedded_info()}
        label = tiled.classes.index("camera")
        regions = split_tiles(*info["camera"], EmbeddedConfig(tiles=2))[split]
        mine = boxes[(labels == label).numpy()]
        hits = [sum(_overlap(tuple(b), r) for b in mine) for r in regions]
        assert all(h > 0 for h in hits) and sum(hits) == len(mine), hits


def test_embedded_skips_photos_too_small_for_the_crop() -> None:
    config = EmbeddedConfig(photos=("microaneurysms", "camera", "brick"), train=4, val=2, test=2)
    with pytest.warns(UserWarning, match="skipped photo 'microaneurysms'"):
        built = emb._build_embedded(config)
    assert built.classes == ("camera", "brick")


def test_embedded_info_and_licenses_match_skimage_docstrings() -> None:
    skimage_data = pytest.importorskip("skimage.data")
    info = data.embedded_info()
    assert [entry["class"] for entry in info] == list(parse_data("embedded").classes)
    for entry in info:
        doc = getattr(skimage_data, entry["class"]).__doc__.lower()
        assert "cc0" in doc or "public domain" in doc, entry["class"]
        assert set(entry) == {"class", "function", "file", "size", "license"}


def test_embedded_config_is_validated() -> None:
    with pytest.raises(DataError, match="unknown photo 'horse'"):
        EmbeddedConfig(photos=("horse", "camera"))
    with pytest.raises(DataError, match="sum to 1"):
        EmbeddedConfig(fractions=(0.5, 0.2, 0.2))


# --------------------------------------------------------------------------- imagefolder

_COLORS = {"cat": (220, 40, 40), "dog": (40, 200, 60), "fox": (40, 60, 220)}


def _write_image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (24, 18)):
    rng = np.random.default_rng(abs(hash(path.name)) % 1000)
    noise = rng.integers(-10, 10, size=(size[1], size[0], 3))
    pixels = np.clip(np.array(color) + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for name, color in _COLORS.items():
        for i in range(5):
            suffix = (".jpg", ".png", ".JPEG", ".webp", ".png")[i]
            _write_image(root / name / f"{name}{i}{suffix}", color)
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    return root


def _spec(root: Path) -> str:
    return f"imagefolder:{root}"


def test_imagefolder_loads_with_a_stratified_auto_split(folder: Path, tmp_path: Path) -> None:
    source = parse_data(_spec(folder), cache_dir=tmp_path / "cache")
    assert source.name == f"imagefolder:{folder.resolve()}"
    assert source.classes == ("cat", "dog", "fox")
    assert source.max_pixels == source.native_pixels == 18  # the smallest side, --upsample off
    assert source.with_upsample("bilinear").max_pixels is None
    train, val = source.load("train", 16), source.load("val", 16)
    assert train.images.shape == (12, 3, 16, 16) and val.images.shape == (3, 3, 16, 16)
    assert torch.bincount(val.labels).tolist() == [1, 1, 1]
    for label, color in enumerate(_COLORS.values()):
        mean = train.images[train.labels == label].float().mean((0, 2, 3))
        assert torch.allclose(mean, torch.tensor(color, dtype=torch.float), atol=12)
    with pytest.raises(DataError, match="no 'test' split"):
        source.load("test", 16)


def test_imagefolder_cache_is_reused_then_invalidated(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = parse_data(_spec(folder), cache_dir=cache).load("train", 16)
    files = list((cache / "imagefolder").glob("*.pt"))
    assert len(files) == 1 and not list((cache / "imagefolder").glob("*.tmp"))

    def no_decode(path: Path, pixels: int) -> np.ndarray:
        raise AssertionError(f"decoded {path} although it was cached")

    with monkeypatch.context() as patch:
        patch.setattr(imagefolder, "_decode_image", no_decode)
        second = parse_data(_spec(folder), cache_dir=cache).load("train", 16)
    assert torch.equal(first.images, second.images)
    assert torch.equal(first.labels, second.labels)

    _write_image(folder / "cat" / "new.png", _COLORS["cat"])
    source = parse_data(_spec(folder), cache_dir=cache)
    total = len(source.load("train", 16)) + len(source.load("val", 16))
    assert total == 16
    assert len(list((cache / "imagefolder").glob("*.pt"))) == 3


def test_imagefolder_cache_dir_from_environment(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALER_CACHE", str(tmp_path / "env-cache"))
    parse_data(_spec(folder)).load("val", 8)
    assert len(list((tmp_path / "env-cache" / "imagefolder").glob("*.pt"))) == 1


def test_imagefolder_fingerprint_tracks_content(folder: Path, tmp_path: Path) -> None:
    before = parse_data(_spec(folder), cache_dir=tmp_path).fingerprint()
    assert before == parse_data(_spec(folder), cache_dir=tmp_path).fingerprint()
    (folder / "fox" / "fox0.jpg").unlink()
    assert parse_data(_spec(folder), cache_dir=tmp_path).fingerprint() != before


def test_imagefolder_skips_corrupt_files_with_one_warning(folder: Path, tmp_path: Path) -> None:
    # Ten cat files give two val slots, so the class survives wherever x.jpg lands.
    for i in range(5, 9):
        _write_image(folder / "cat" / f"cat{i}.png", _COLORS["cat"])
    (folder / "cat" / "x.jpg").write_bytes(np.random.default_rng(0).bytes(300))
    source = parse_data(_spec(folder), cache_dir=tmp_path / "cache")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sizes = [len(source.load(split, 16)) for split in ("train", "val")]
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert messages and len(messages) == 1
    assert "skipped 1 unreadable file" in messages[0] and "cat/x.jpg" in messages[0]
    assert sum(sizes) == 19


def test_imagefolder_class_with_only_corrupt_files(tmp_path: Path) -> None:
    root = tmp_path / "images"
    for i in range(3):
        _write_image(root / "ok" / f"{i}.png", (10, 20, 30))
        (root / "bad").mkdir(parents=True, exist_ok=True)
        (root / "bad" / f"{i}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    source = parse_data(_spec(root), cache_dir=tmp_path / "cache")
    with (
        pytest.warns(UserWarning, match="unreadable"),
        pytest.raises(DataError, match="class 'bad' has no readable images"),
    ):
        source.load("train", 8)


def test_imagefolder_presplit_with_exif_rotation(tmp_path: Path) -> None:
    root = tmp_path / "images"
    for split in ("train", "val", "test"):
        for name, color in (("a", (200, 0, 0)), ("b", (0, 0, 200))):
            _write_image(root / split / name / f"{split}.png", color)
    # 40 x 20, red left half and blue right half; EXIF orientation 6 means "rotate
    # 90 degrees clockwise to display", which puts red on top and blue at the bottom.
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(root / "val" / "a" / "rotated.jpg", exif=exif, quality=95)

    source = parse_data(_spec(root), cache_dir=tmp_path / "cache")
    assert source.classes == ("a", "b")
    val = source.load("val", 16)
    assert len(val) == 3 and len(source.load("test", 16)) == 2
    # Files are served sorted by path, so val/a/rotated.jpg comes first.
    assert val.labels[0] == 0
    rotated = val.images[0].int()
    top, bottom = rotated[:, 1, 8], rotated[:, 14, 8]
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_imagefolder_presplit_classes_must_match(tmp_path: Path) -> None:
    root = tmp_path / "images"
    _write_image(root / "train" / "a" / "1.png", (1, 2, 3))
    _write_image(root / "train" / "b" / "1.png", (1, 2, 3))
    _write_image(root / "val" / "a" / "1.png", (1, 2, 3))
    with pytest.raises(DataError, match=r"classes differ from train/: missing \['b'\]"):
        parse_data(_spec(root), cache_dir=tmp_path)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda root: root, "does not exist"),
        (lambda root: (root.parent.mkdir(exist_ok=True), root.write_text("x"))[1], "is a file"),
        (lambda root: root.mkdir(), "has no images"),
        (lambda root: (root / "a").mkdir(parents=True), "has no images"),
        (lambda root: (root / "a" / "notes.txt").parent.mkdir(parents=True), "has no images"),
        (
            lambda root: (
                _write_image(root / "a" / "1.png", (0, 0, 0)),
                _write_image(root / "a" / "2.png", (0, 0, 0)),
                (root / "b").mkdir(),
            ),
            "class folder .*b has no images",
        ),
        (lambda root: _write_image(root / "train" / "a" / "1.png", (0, 0, 0)), "no val/"),
        (
            lambda root: (
                _write_image(root / "a" / "1.png", (0, 0, 0)),
                _write_image(root / "b" / "1.png", (0, 0, 0)),
            ),
            "has 1 image",
        ),
    ],
)
def test_imagefolder_invalid_folders(tmp_path: Path, make, match: str) -> None:
    root = tmp_path / "images"
    make(root)
    with pytest.raises(DataError, match=match) as caught:
        parse_data(_spec(root), cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert message.startswith(f"--data '{_spec(root)}': ") and "\n" not in message


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("foo:bar", "unknown scheme 'foo'; valid: fashion, fashion:KEY=VALUE,..., embedded"),
        ("", "empty; valid: fashion, fashion:KEY=VALUE,..., embedded"),
        ("   ", "empty"),
        ("Embedded", "unknown data source"),
        ("imagefolder:", "missing path; use imagefolder:PATH"),
        ("cifar10:", "missing path; use cifar10:PATH"),
        ("embedded:x", r"expected distinct KEY=VALUE items with KEY one of crop, "),
        ("embedded:tiles=2,tiles=3", "expected distinct KEY=VALUE"),
        ("embedded:tiles=two", "tiles must be a number, got 'two'"),
        ("embedded:tiles=9", "tiles must be an integer from 1 to 8, got 9"),
    ],
)
def test_parse_data_rejects_bad_specs(value: str, match: str) -> None:
    with pytest.raises(DataError, match=match) as caught:
        parse_data(value)
    assert "\n" not in str(caught.value) and isinstance(caught.value, ValueError)


# --------------------------------------------------------------------------- cifar


def _records(labels: list[int], ids: range, header: list[list[int]]) -> bytes:
    """Records whose R(0,0) is the label, G(0,0) the record id and B(31,31) is 200."""
    out = bytearray()
    for label, rid, head in zip(labels, ids, header, strict=True):
        planes = np.zeros((3, 32, 32), dtype=np.uint8)
        planes[0, 0, 0] = label
        planes[1, 0, 0] = rid
        planes[2, 31, 31] = 200
        planes[1, 5, 7] = 99  # a pixel away from the corners, in the G plane
        out += bytes(head) + planes.tobytes()
    return bytes(out)


def _write_cifar10(folder: Path, per_batch: int = 20) -> None:
    folder.mkdir(parents=True)
    for b in range(5):
        ids = range(b * per_batch, (b + 1) * per_batch)
        labels = [i % 10 for i in ids]
        blob = _records(labels, ids, [[label] for label in labels])
        (folder / f"data_batch_{b + 1}.bin").write_bytes(blob)
    labels = [(9 - i) % 10 for i in range(20)]
    (folder / "test_batch.bin").write_bytes(
        _records(labels, range(200, 220), [[label] for label in labels])
    )
    names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
    (folder / "batches.meta.txt").write_text(names + "\n")  # the official file ends blank


def _check_cifar_images(part: data.Split) -> None:
    images = part.images
    assert images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32)
    assert torch.equal(images[:, 0, 0, 0].long(), part.labels)
    assert (images[:, 2, 31, 31] == 200).all() and (images[:, 1, 5, 7] == 99).all()
    assert (images[:, 0, 31, 31] == 0).all() and (images[:, 2, 0, 0] == 0).all()


def test_cifar10_decodes_and_splits(tmp_path: Path) -> None:
    _write_cifar10(tmp_path / "cifar-10-batches-bin")
    source = parse_data(f"cifar10:{tmp_path}")  # the parent folder is accepted
    assert source.name == f"cifar10:{(tmp_path / 'cifar-10-batches-bin').resolve()}"
    assert source.classes[0] == "airplane" and source.num_classes == 10
    train, val, test = (source.load(s, 32) for s in data.SPLITS)
    for part in (train, val, test):
        _check_cifar_images(part)
    train_ids = set(train.images[:, 1, 0, 0].tolist())
    val_ids = set(val.images[:, 1, 0, 0].tolist())
    assert not train_ids & val_ids and train_ids | val_ids == set(range(100))
    assert torch.bincount(val.labels, minlength=10).tolist() == [1] * 10  # 10 % of 10 each
    assert test.images[:, 1, 0, 0].tolist() == [200 + i for i in range(20)]  # file order
    assert test.labels.tolist() == [(9 - i) % 10 for i in range(20)]
    assert source.load("train", 16).images.shape == (90, 3, 16, 16)
    with pytest.raises(DataError, match="images are 32 px"):
        source.load("train", 64)
    same = parse_data(f"cifar10:{tmp_path / 'cifar-10-batches-bin'}")
    assert same.fingerprint() == source.fingerprint()
    assert torch.equal(same.load("val", 32).images, val.images)


def test_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    fine = [i % 100 for i in range(200)]
    coarse = [f // 5 for f in fine]
    heads = [[c, f] for c, f in zip(coarse, fine, strict=True)]
    (folder / "train.bin").write_bytes(_records(fine, range(200), heads))
    (folder / "test.bin").write_bytes(_records(fine[:30], range(30), heads[:30]))
    (folder / "fine_label_names.txt").write_text("\n".join(f"c{i}" for i in range(100)))
    source = parse_data(f"cifar100:{folder}")
    assert source.num_classes == 100 and source.classes[42] == "c42"
    train, val, test = (source.load(s, 32) for s in data.SPLITS)
    for part in (train, val, test):
        _check_cifar_images(part)  # R(0,0) holds the fine label, so labels must be fine
    assert len(train) == 100 and len(val) == 100 and len(test) == 30
    assert test.labels.tolist() == fine[:30]


def test_cifar_missing_and_malformed_files(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    _write_cifar10(folder)
    (folder / "test_batch.bin").unlink()
    with pytest.raises(DataError, match="test_batch.bin is missing"):
        parse_data(f"cifar10:{folder}")
    (folder / "test_batch.bin").write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match="not a multiple of the 3073-byte"):
        parse_data(f"cifar10:{folder}")
    with pytest.raises(DataError, match="train.bin is missing"):
        parse_data(f"cifar100:{folder}")
    with pytest.raises(DataError, match="does not exist"):
        parse_data(f"cifar10:{tmp_path / 'nope'}")
