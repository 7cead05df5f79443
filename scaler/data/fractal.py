"""Fractal images drawn from random iterated function systems, generated from a seed.

In the manner of FractalDB (Kataoka et al., ACCV 2020): each class is a random iterated
function system (IFS) of 2-4 contractive affine maps ``p -> A p + t``; an instance is a
rendering of the class's system with every map parameter jittered, its point cloud
flipped, rotated, scaled and moved inside the canvas, drawn in random colours over a
noisy gradient. So the class lives in the shape alone: colour, position and size tell
nothing. Systems whose attractor is nearly a line or a dot are redrawn (FractalDB's
filling-rate rule).

The chaos game runs vectorised in numpy over many chains of many instances at once:
each chain starts on the attractor (at a map's fixed point), so a short run of random
steps mixes it and every point it visits is kept. Nothing is downloaded; the same
:class:`FractalConfig` gives bit-identical images on the same machine and library versions.

The generator (down to :func:`render_split`) knows nothing of data sources;
:class:`FractalSource` at the end serves its arrays (``--data fractal``), downsampled and
cached in memory and, for big splits, on disk.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import torch
import torch.nn.functional as F

from scaler.data.base import (
    FORMAT_VERSION,
    DataSource,
    Split,
    default_cache_dir,
    digest,
    downsample,
    read_cache,
    write_cache,
)

__all__ = [
    "FRACTAL_VERSION",
    "FractalConfig",
    "FractalSource",
    "class_names",
    "class_systems",
    "parse_fractal",
    "render_split",
]

# Bumped whenever the images a config produces change, so old fingerprints and caches
# stop matching.
FRACTAL_VERSION: Final = 1
_SPLIT_INDEX: Final = {"train": 1, "val": 2, "test": 3}  # 0 is the class systems' stream

# Parallel chaos-game chains per image, and steps each runs before its points count.
# Chains start at a fixed point, which is on the attractor: the steps only spread them.
_CHAINS: Final = 256
_MIX_STEPS: Final = 8
# Largest spectral norm of a map's linear part, as drawn and after jitter: short chains
# need every map to shrink, and maps near 1 give attractors that barely converge.
_MAX_NORM: Final = 0.9
_JITTER_NORM: Final = 0.97
# The filling rate of a class system is measured on this grid with this many points.
_FILL_GRID: Final = 32
_FILL_POINTS: Final = 4096
# Rounds of 16 candidate systems before a class gives up (min_fill 0.12 takes 1, 0.5 ~4).
_MAX_ROUNDS: Final = 200
# Backgrounds add one of these many fixed noise fields (cheaper than fresh noise).
_NOISE_FIELDS: Final = 16
# Images painted at a time (see _composite).
_PAINT_CHUNK: Final = 8


@dataclass(frozen=True)
class FractalConfig:
    """Knobs of the fractal set; the set is a pure function of them."""

    # Number of classes (IFS). More classes make the task harder and the set bigger.
    classes: int = 32
    # Instances per class and split; every instance is a fresh jittered rendering.
    # 300/50/50 renders all splits in 10-17 s on one (busy) core at 128 px.
    train: int = 300
    val: int = 50
    test: int = 50
    # Side of the rendered images; larger sizes follow --upsample.
    # 128 lets resolution sweeps reach 2x a 64 px base; it divides 16, 32 and 64 exactly.
    native: int = 128
    # Chaos-game points per image (a multiple of 256). Fewer give sparser, dottier shapes.
    points: int = 8192
    # Each map parameter of an instance is the class's times U(1 - jitter, 1 + jitter):
    # 0 renders one shape per class (only pose and colour vary); 0.3 blurs classes together.
    jitter: float = 0.15
    # Instances are rotated by up to this many degrees either way (and flipped at random).
    rotate: float = 180.0
    # Smallest share of a 32 x 32 grid the class attractor must cover once fitted into it;
    # lower admits near-lines and dust, higher only blob-like systems.
    min_fill: float = 0.12
    # Seed of the class systems and of every instance.
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("classes", "train", "val", "test", "native", "points", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        checks = (
            ("classes", self.classes >= 2, "an integer >= 2"),
            ("train", self.train >= 1, "an integer >= 1"),
            ("val", self.val >= 1, "an integer >= 1"),
            ("test", self.test >= 1, "an integer >= 1"),
            ("native", 16 <= self.native <= 512, "an integer from 16 to 512"),
            ("points", self.points >= _CHAINS and self.points % _CHAINS == 0,
             f"a multiple of {_CHAINS}"),
            ("jitter", 0.0 <= self.jitter <= 0.5, "a number from 0 to 0.5"),
            ("rotate", 0.0 <= self.rotate <= 180.0, "a number of degrees from 0 to 180"),
            ("min_fill", 0.0 <= self.min_fill <= 0.5, "a number from 0 to 0.5"),
            ("seed", self.seed >= 0, "an integer >= 0"),
        )  # fmt: skip
        for name, ok, valid in checks:
            if not ok:
                raise ValueError(f"{name} must be {valid}, got {getattr(self, name)!r}")

    def count(self, split: str) -> int:
        return {"train": self.train, "val": self.val, "test": self.test}[split]


def parse_fractal(options: str) -> FractalConfig:
    """A config from ``key=value`` pairs separated by commas (``classes=64,train=500``)."""
    fields = {f.name: f for f in dataclasses.fields(FractalConfig)}
    valid = ", ".join(fields)
    values: dict[str, int | float] = {}
    for item in options.split(","):
        key, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise ValueError(f"expected key=value, got {item.strip()!r}; keys: {valid}")
        if key not in fields:
            raise ValueError(f"unknown key {key!r}; valid: {valid}")
        if key in values:
            raise ValueError(f"key {key!r} given twice")
        kind = int if fields[key].type == "int" else float
        try:
            values[key] = kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise ValueError(f"{key} must be {noun}, got {text!r}") from None
    return FractalConfig(**values)


def class_names(config: FractalConfig) -> tuple[str, ...]:
    """``ifs00``, ``ifs01``, ... (wider when there are over 100 classes)."""
    width = max(2, len(str(config.classes - 1)))
    return tuple(f"ifs{i:0{width}d}" for i in range(config.classes))


# --------------------------------------------------------------------------- chaos game


def _spectral_norm(linear: np.ndarray) -> np.ndarray:
    """Largest singular value of each 2 x 2 matrix ``[[a, b], [c, d]]`` in ``(..., 4)``."""
    a, b, c, d = np.moveaxis(linear, -1, 0)
    total = a * a + b * b + c * c + d * d
    det = a * d - b * c
    return np.sqrt((total + np.sqrt(np.maximum(total * total - 4 * det * det, 0.0))) / 2)


def _probabilities(maps: np.ndarray) -> np.ndarray:
    """Chaos-game weights of each map, ``(..., M)``: its area factor |det A|, as FractalDB."""
    det = np.abs(maps[..., 0] * maps[..., 3] - maps[..., 1] * maps[..., 2])
    det = np.maximum(det, 0.02 * det.max(axis=-1, keepdims=True) + 1e-6)
    return det / det.sum(axis=-1, keepdims=True)


def _chaos_game(
    maps: np.ndarray, steps: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Points of ``_CHAINS`` chains per system: maps ``(B, M, 6)`` as (a, b, c, d, e, f)
    for ``p -> [[a, b], [c, d]] p + (e, f)``; returns x and y, each ``(B, _CHAINS * steps)``.
    """
    batch, n_maps = maps.shape[:2]
    cumulative = np.cumsum(_probabilities(maps), axis=-1)[:, None, :-1].astype(np.float32)
    # Parameter rows (6, B * M): a gather then reads six contiguous rows.
    params = np.ascontiguousarray(maps.reshape(batch * n_maps, 6).T, dtype=np.float32)
    # Every step's map choice at once, as a column of ``params``, (steps, B * C).
    draws = rng.random((_MIX_STEPS + steps, batch, _CHAINS, 1), dtype=np.float32)
    choice = (draws > cumulative).sum(axis=-1, dtype=np.int32)
    choice += (np.arange(batch, dtype=np.int32) * n_maps)[:, None]
    choice = choice.reshape(_MIX_STEPS + steps, -1)
    # Start every chain at the fixed point of one map: (I - A) p = t.
    a, b, c, d, e, f = np.moveaxis(maps[:, 0], -1, 0)
    det = (1 - a) * (1 - d) - b * c
    x = np.repeat(((1 - d) * e + b * f) / det, _CHAINS).astype(np.float32)
    y = np.repeat((c * e + (1 - a) * f) / det, _CHAINS).astype(np.float32)
    # (B, steps, C): one row of points per system after a free reshape. Order is free.
    xs = np.empty((batch, steps, _CHAINS), dtype=np.float32)
    ys = np.empty_like(xs)
    for step in range(-_MIX_STEPS, steps):
        m = np.take(params, choice[step + _MIX_STEPS], axis=1)
        x, y = m[0] * x + m[1] * y + m[4], m[2] * x + m[3] * y + m[5]
        if step >= 0:
            xs[:, step], ys[:, step] = x.reshape(batch, _CHAINS), y.reshape(batch, _CHAINS)
    return xs.reshape(batch, -1), ys.reshape(batch, -1)


def _fill_rate(x: np.ndarray, y: np.ndarray, grid: int) -> np.ndarray:
    """Share of a ``grid`` x ``grid`` canvas each point cloud covers once fitted into it,
    aspect kept (so a line covers about 1/grid)."""
    x = x - x.min(axis=1, keepdims=True)
    y = y - y.min(axis=1, keepdims=True)
    span = np.maximum(x.max(axis=1), y.max(axis=1))[:, None] + 1e-9
    ix = np.minimum((x / span * grid).astype(np.int64), grid - 1)
    iy = np.minimum((y / span * grid).astype(np.int64), grid - 1)
    cells = np.arange(x.shape[0])[:, None] * grid * grid + iy * grid + ix
    hits = np.bincount(cells.ravel(), minlength=x.shape[0] * grid * grid)
    return (hits.reshape(x.shape[0], -1) > 0).mean(axis=1)


def _draw_maps(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` maps with parameters U(-1, 1), linear parts redrawn until contractive."""
    found = np.empty((0, 6))
    while len(found) < count:
        candidates = rng.uniform(-1.0, 1.0, size=(4 * count, 6))
        keep = _spectral_norm(candidates[:, :4]) < _MAX_NORM
        found = np.concatenate([found, candidates[keep]])
    return found[:count]


def _class_system(config: FractalConfig, label: int) -> np.ndarray:
    """The IFS of one class, ``(M, 6)``: the first random system that fills enough."""
    rng = np.random.default_rng([config.seed, 0, label])
    for _ in range(_MAX_ROUNDS):
        # A round of 16 candidates at once: the filling rate is one vectorised render.
        n_maps = int(rng.integers(2, 5))
        candidates = _draw_maps(rng, 16 * n_maps).reshape(16, n_maps, 6)
        x, y = _chaos_game(candidates, _FILL_POINTS // _CHAINS, rng)
        fill = _fill_rate(x, y, _FILL_GRID)
        good = np.flatnonzero(fill >= config.min_fill)
        if good.size:
            return candidates[good[0]]
    raise ValueError(f"no system of {_MAX_ROUNDS * 16} filled min_fill={config.min_fill}")


def class_systems(config: FractalConfig) -> list[np.ndarray]:
    """One ``(M, 6)`` array of maps (a, b, c, d, e, f) per class, M from 2 to 4."""
    return [_class_system(config, label) for label in range(config.classes)]


# --------------------------------------------------------------------------- rendering


def _jitter(system: np.ndarray, count: int, config: FractalConfig, rng: np.random.Generator):
    """``count`` jittered copies ``(count, M, 6)`` of one system, kept contractive."""
    scale = rng.uniform(1 - config.jitter, 1 + config.jitter, size=(count, *system.shape))
    maps = system[None] * scale
    norm = _spectral_norm(maps[..., :4])
    shrink = np.minimum(1.0, _JITTER_NORM / np.maximum(norm, 1e-12))
    maps[..., :4] *= shrink[..., None]
    return maps


def _place(x: np.ndarray, y: np.ndarray, size: int, config: FractalConfig, rng):
    """Flip, rotate, scale and move each point cloud ``(B, N)`` inside a ``size`` px
    canvas; returns every point's index into the flattened ``(B, size, size)`` counts."""
    batch = x.shape[0]
    f32 = np.float32
    flip = np.where(rng.random(batch) < 0.5, -1.0, 1.0).astype(f32)[:, None]
    angle = np.radians(rng.uniform(-config.rotate, config.rotate, size=batch))[:, None]
    cos, sin = np.cos(angle).astype(f32), np.sin(angle).astype(f32)
    x = x * flip
    x, y = cos * x - sin * y, sin * x + cos * y
    x -= x.min(axis=1, keepdims=True)
    y -= y.min(axis=1, keepdims=True)
    width, height = x.max(axis=1), y.max(axis=1)
    margin = max(1.0, size / 32)
    # The longer side covers 55-95 % of the canvas; the shape lands anywhere it fits.
    fit = rng.uniform(0.55, 0.95, size=batch) * (size - 2 * margin)
    scale = fit / np.maximum(np.maximum(width, height), 1e-9)
    left = margin + rng.random(batch) * (size - 2 * margin - width * scale)
    top = margin + rng.random(batch) * (size - 2 * margin - height * scale)
    # Every point lands inside by construction; the clip guards float rounding.
    col = (x * scale[:, None].astype(f32) + left[:, None].astype(f32)).astype(np.int32)
    row = (y * scale[:, None].astype(f32) + top[:, None].astype(f32)).astype(np.int32)
    np.clip(col, 0, size - 1, out=col)
    np.clip(row, 0, size - 1, out=row)
    return (np.arange(batch)[:, None] * (size * size) + row * size + col).ravel()


def _ramps(angles: torch.Tensor, size: int) -> torch.Tensor:
    """A linear 0..1 ramp across the canvas along each angle, ``(B, 1, S, S)``."""
    axis = torch.linspace(-0.5, 0.5, size)
    ramp = (
        torch.cos(angles)[:, None, None] * axis + torch.sin(angles)[:, None, None] * axis[:, None]
    )
    return (ramp / 1.42 + 0.5).unsqueeze(1)  # |cos| + |sin| <= sqrt(2): stays in 0..1


@functools.lru_cache(maxsize=4)
def _noise_bank(seed: int, size: int) -> torch.Tensor:
    """Fixed noise fields ``(_NOISE_FIELDS, 1, S, S)``; read-only."""
    rng = np.random.default_rng([seed, 4])
    return torch.from_numpy(rng.standard_normal((_NOISE_FIELDS, 1, size, size), np.float32))


def _looks(batch: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Each image's random appearance, drawn for the whole batch before any painting."""
    f32 = np.float32
    drawn = {
        # Two colours per image for the shape (bright) and the background (dark).
        "front": rng.uniform(0.35, 1.0, size=(batch, 2, 3, 1, 1)).astype(f32),
        "back": rng.uniform(0.0, 0.3, size=(batch, 2, 3, 1, 1)).astype(f32),
        "front_angle": rng.uniform(0, 2 * np.pi, size=batch).astype(f32),
        "back_angle": rng.uniform(0, 2 * np.pi, size=batch).astype(f32),
        "noise": rng.integers(0, _NOISE_FIELDS, size=batch),
        "amplitude": rng.uniform(0.01, 0.04, size=(batch, 1, 1, 1)).astype(f32),
    }
    return {key: torch.from_numpy(value) for key, value in drawn.items()}


def _paint(density: torch.Tensor, looks: dict[str, torch.Tensor], bank: torch.Tensor):
    """uint8 ``(B, 3, S, S)`` images from point counts ``(B, 1, S, S)``: the shape in a
    bright two-colour gradient over a dark two-colour gradient with mild noise."""
    size = density.shape[-1]
    # Each point becomes a 3 x 3 patch, so one-pixel structure survives downsampling:
    # two sums of 2 x 2 neighbours (shifted opposite ways) are the binomial [1 2 1]^2
    # filter, times 16, which the opacity's normalisation cancels.
    density = F.pad(density, (1, 1, 1, 1))
    density = density[..., 1:, :] + density[..., :-1, :]
    density = density[..., 1:, :] + density[..., :-1, :]
    density = density[..., 1:] + density[..., :-1]
    density = density[..., 1:] + density[..., :-1]
    # Opacity saturates at a quarter of the image's mean density over covered pixels,
    # so sparse and dense shapes look alike; isolated points stay faint.
    covered = (density > 0).sum(dim=(1, 2, 3), keepdim=True).clamp_(min=1)
    level = density.sum(dim=(1, 2, 3), keepdim=True) / covered / 4
    alpha = (density / level).clamp_(max=1.0)
    front, back = looks["front"], looks["back"]
    # torch.lerp, not a + t * (b - a): several times faster when t broadcasts over channels.
    front = torch.lerp(front[:, 0], front[:, 1], _ramps(looks["front_angle"], size))
    back = torch.lerp(back[:, 0], back[:, 1], _ramps(looks["back_angle"], size))
    back += bank[looks["noise"]] * looks["amplitude"]
    image = torch.lerp(back, front, alpha)
    return image.mul_(255).round_().clamp_(0, 255).to(torch.uint8)


def _composite(counts: torch.Tensor, config: FractalConfig, rng) -> torch.Tensor:
    """Paint point counts ``(B, 1, S, S)`` into uint8 images ``(B, 3, S, S)``."""
    batch, size = counts.shape[0], counts.shape[-1]
    looks = _looks(batch, rng)
    bank = _noise_bank(config.seed, size)
    images = torch.empty((batch, 3, size, size), dtype=torch.uint8)
    # A few images at a time keep every float temporary in cache: ~2.5x faster.
    for start in range(0, batch, _PAINT_CHUNK):
        part = slice(start, start + _PAINT_CHUNK)
        images[part] = _paint(counts[part], {k: v[part] for k, v in looks.items()}, bank)
    return images


def _render_class(
    config: FractalConfig, system: np.ndarray, count: int, rng: np.random.Generator
) -> torch.Tensor:
    size = config.native
    maps = _jitter(system, count, config, rng)
    x, y = _chaos_game(maps, config.points // _CHAINS, rng)
    pixels = _place(x, y, size, config, rng)
    counts = np.bincount(pixels, minlength=count * size * size)
    density = torch.from_numpy(counts.astype(np.float32)).view(count, 1, size, size)
    return _composite(density, config, rng)


def render_split(config: FractalConfig, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (uint8 ``N x 3 x native x native``) and labels (int64) of one split.

    Each (class, split) has its own random stream, so splits never share an instance
    and changing one count leaves the other splits' images as they were.
    """
    count = config.count(split)
    images = torch.empty(
        (config.classes * count, 3, config.native, config.native), dtype=torch.uint8
    )
    for label, system in enumerate(class_systems(config)):
        rng = np.random.default_rng([config.seed, _SPLIT_INDEX[split], label])
        images[label * count : (label + 1) * count] = _render_class(config, system, count, rng)
    labels = torch.arange(config.classes).repeat_interleave(count)
    return images, labels


# --------------------------------------------------------------------------- the source

# Splits of at least this many native pixels (about 2 s of rendering on one core) are
# kept on disk too: a worker process then loads in a fraction of a second.
_FRACTAL_DISK_PIXELS: Final = 25_000_000
_FRACTAL_MEMORY: dict[tuple[FractalConfig, str], Split] = {}


class FractalSource(DataSource):
    """Fractals of random iterated function systems, one per class, made from a seed."""

    def __init__(self, config: FractalConfig | None = None, cache_dir: Path | None = None):
        self.config = config or FractalConfig()
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        defaults = FractalConfig()
        changed = [
            f"{f.name}={getattr(self.config, f.name)}"
            for f in dataclasses.fields(FractalConfig)
            if getattr(self.config, f.name) != getattr(defaults, f.name)
        ]
        name = "fractal:" + ",".join(changed) if changed else "fractal"
        super().__init__(name, class_names(self.config), self.config.native)

    def fingerprint(self) -> str:
        return digest(
            {
                "kind": "fractal",
                "v": FORMAT_VERSION,
                "generator": FRACTAL_VERSION,
                "config": dataclasses.asdict(self.config),
            }
        )

    def cache_path(self, split: str) -> Path:
        """Disk cache file of ``split`` at native size."""
        return self.cache_dir / "fractal" / f"{self.fingerprint()}-{split}.pt"

    def native(self, split: str) -> Split:
        """``split`` at native size, rendered once per process (and read from disk if cached)."""
        key = (self.config, split)
        cached = _FRACTAL_MEMORY.get(key)
        if cached is None:
            cached = _FRACTAL_MEMORY[key] = self._read_or_render(split)
        return cached

    def _read_or_render(self, split: str) -> Split:
        config = self.config
        count = config.classes * config.count(split)
        on_disk = count * config.native**2 >= _FRACTAL_DISK_PIXELS
        path = self.cache_path(split)
        payload = read_cache(path, frozenset({"images", "labels"})) if on_disk else None
        shape = (count, 3, config.native, config.native)
        if payload is not None and tuple(payload["images"].shape) == shape:
            return Split(payload["images"], payload["labels"])
        images, labels = render_split(config, split)
        if on_disk:
            write_cache(path, {"images": images, "labels": labels})
        return Split(images, labels)

    def _load(self, split: str, pixels: int) -> Split:
        native = self.native(split)
        return Split(downsample(native.images, pixels), native.labels)
