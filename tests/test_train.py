"""Tests of scaler.train and scaler.device: the trainer, its typed errors, devices, the bench.

Everything runs on the CPU with a tiny network (depth 0.5, width 0.25) at 32 px and a small
embedded set, so the whole file takes seconds on two cores.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from scaler import device as D
from scaler import train as T
from scaler.augment import random_resized_crop
from scaler.bench import BenchResult, bench
from scaler.data import EmbeddedConfig, EmbeddedSource
from scaler.device import for_device, select_device
from scaler.proxy import ProxyConfig, resolve_proxy
from scaler.spec import scale
from scaler.train import DivergedError, OutOfMemoryError, TrainResult, evaluate, train

TINY = scale(0.5, 0.25, pixels=32, base_pixels=32)


@pytest.fixture(scope="module")
def small() -> EmbeddedSource:
    # 20 train / 10 val crops per class: 260 images, epochs of 8 steps of 32.
    return EmbeddedSource(EmbeddedConfig(train=20, val=10, test=2))


def tiny(**overrides: object) -> ProxyConfig:
    # One thread: tiny layers gain nothing from two, and a shared machine stays responsive.
    base = ProxyConfig(epochs=2, batch_size=32, lr=0.05, warmup_epochs=0.5, device="cpu", threads=1)
    return dataclasses.replace(base, **overrides)


# --------------------------------------------------------------------------- devices


def test_select_device() -> None:
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device 'gpu' is unknown: valid devices are auto"):
        select_device("gpu")
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            select_device("cuda:0")


def test_learning_rate_warms_up_then_decays() -> None:
    lrs = [T._lr_at(step, 100, 10, 1.0) for step in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10], strict=False))
    assert all(a > b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert 0 < lrs[-1] < 0.01


# --------------------------------------------------------------------------- pieces


def test_random_resized_crop_stays_inside_each_image() -> None:
    x = torch.rand((8, 3, 16, 16), generator=torch.Generator().manual_seed(1))
    out = random_resized_crop(x, torch.Generator().manual_seed(0), 0.3)
    assert out.shape == x.shape
    # Bilinear samples inside the image are convex combinations of its pixels.
    assert (out.amin((1, 2, 3)) >= x.amin((1, 2, 3)) - 1e-6).all()
    assert (out.amax((1, 2, 3)) <= x.amax((1, 2, 3)) + 1e-6).all()
    again = random_resized_crop(x, torch.Generator().manual_seed(0), 0.3)
    assert torch.equal(out, again)


class _Fixed(nn.Module):
    """Scores classes 0, 1, 2, ... in decreasing order whatever the input."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.arange(classes, 0, -1).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1)


def test_evaluate_counts_top1_and_top5() -> None:
    images = torch.zeros((8, 3, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 0])
    scores = evaluate(_Fixed(13), images, labels, batch_size=3)
    assert scores.top1 == pytest.approx(25.0)  # the two 0s
    assert scores.top5 == pytest.approx(75.0)  # labels 0..4
    assert math.isfinite(scores.loss)
    # One top-1 hit per image, in order: what paired comparisons and bootstraps use.
    assert scores.correct.tolist() == [True] + [False] * 6 + [True]


# --------------------------------------------------------------------------- train


@pytest.mark.slow
def test_tiny_run_learns() -> None:
    # 40 train crops per class; 6 epochs reach ~35-45 % val top-1 over seeds (chance: 7.7 %).
    source = EmbeddedSource(EmbeddedConfig(train=40, val=20, test=2))
    result = train(TINY, source, tiny(epochs=6, eval_every_epoch=False))
    assert isinstance(result, TrainResult)
    chance = 100 / source.num_classes
    assert result.top1 > 2.5 * chance, result
    assert result.top5 > result.top1
    assert result.loss_curve[-1] < result.loss_curve[0]
    assert len(result.val_top1_curve) == 1  # evaluated once, at the end
    assert result.pixels == 32 and result.device == "cpu" and result.params > 0
    assert result.images_seen == 6 * (len(source.load("train", 32)) // 32) * 32
    assert result.images_per_s > 0 and result.wall_time > 0


def test_same_seed_is_bit_identical_and_another_seed_differs(small: EmbeddedSource) -> None:
    rng_before = torch.get_rng_state()
    threads_before = torch.get_num_threads()
    first = train(TINY, small, tiny())
    second = train(TINY, small, tiny())
    other = train(TINY, small, tiny(), seed=1)
    assert first.loss_curve == second.loss_curve
    assert first.val_top1_curve == second.val_top1_curve
    assert (first.top1, first.top5, first.val_loss) == (second.top1, second.top5, second.val_loss)
    assert other.loss_curve != first.loss_curve and other.seed == 1
    assert len(first.loss_curve) == first.epochs == 2
    assert len(first.val_top1_curve) == 1  # evaluated once, at the end, unless asked for more
    each = train(TINY, small, dataclasses.replace(tiny(), eval_every_epoch=True))
    assert len(each.val_top1_curve) == 2 and each.val_top1_curve[-1] == first.top1
    # The run neither consumed the caller's global RNG nor kept its thread setting.
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads_before


def test_the_test_split_is_scored_only_when_asked(small: EmbeddedSource) -> None:
    plain = train(TINY, small, tiny())
    scored = train(TINY, small, tiny(), test=True)
    assert plain.test is None and scored.top1 == plain.top1  # scoring test changes nothing
    n_test = len(small.load("test", TINY.pixels))
    assert scored.test.correct.shape == (n_test,)
    assert 100 * scored.test.correct.float().mean().item() == pytest.approx(scored.test.top1)
    assert 100 * scored.val_correct.float().mean().item() == pytest.approx(scored.top1)
    assert "val_correct" not in scored.to_dict() and "test_top1" in scored.to_dict()


def test_images_overrides_epochs(small: EmbeddedSource) -> None:
    result = train(TINY, small, tiny(epochs=50, images=200, eval_every_epoch=False))
    # 260 train images make 8 steps of 32 per epoch; 200 images round up to 7 steps.
    assert result.images_seen == 7 * 32 and result.epochs == 1
    assert len(result.val_top1_curve) == 1


def test_callback_runs_once_per_epoch_and_its_errors_propagate(small: EmbeddedSource) -> None:
    calls: list[tuple[int, float]] = []
    ticks: list[tuple[int, int]] = []
    result = train(
        TINY,
        small,
        tiny(epochs=3, eval_every_epoch=False),
        callback=lambda epoch, top1: calls.append((epoch, top1)),
        progress=lambda epoch, epochs, loss, ips: ticks.append((epoch, epochs)),
    )
    assert [epoch for epoch, _ in calls] == [1, 2, 3]
    assert tuple(top1 for _, top1 in calls) == result.val_top1_curve
    assert ticks == [(1, 3), (2, 3), (3, 3)]

    class Pruned(Exception):
        pass

    def prune(epoch: int, top1: float) -> None:
        raise Pruned(f"epoch {epoch}")

    with pytest.raises(Pruned, match="epoch 1"):
        train(TINY, small, tiny(epochs=3), callback=prune)


def test_huge_learning_rate_raises_diverged(small: EmbeddedSource) -> None:
    with pytest.raises(DivergedError, match="lower the learning rate") as info:
        train(TINY, small, tiny(lr=1e6, warmup_epochs=0.0))
    assert "\n" not in str(info.value)


def test_nan_loss_is_caught_at_its_step(small: EmbeddedSource, monkeypatch) -> None:
    real = T.F.cross_entropy

    def poisoned(logits: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return real(logits, *args, **kwargs) * float("nan")

    monkeypatch.setattr(T.F, "cross_entropy", poisoned)
    with pytest.raises(DivergedError, match="epoch 1, step 1 of"):
        train(TINY, small, tiny())


def test_allocation_failures_become_out_of_memory_errors(
    small: EmbeddedSource, monkeypatch
) -> None:
    class Hungry(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB")

    monkeypatch.setattr(T, "build", lambda spec, classes, **_: Hungry())
    with pytest.raises(OutOfMemoryError, match="batch 32 at 32 px.*lower batch_size"):
        train(TINY, small, tiny())


# --------------------------------------------------------------------------- bench


def test_bench_measures_both_loops(small: EmbeddedSource) -> None:
    result = bench(TINY, small, tiny(batch_size=16), rounds=1, images=32, workers=1)
    assert isinstance(result, BenchResult)
    assert len(result.scaler_rounds) == len(result.reference_rounds) == 1
    assert result.scaler_images_per_s > 0 and result.reference_images_per_s > 0
    assert result.ratio == pytest.approx(result.scaler_images_per_s / result.reference_images_per_s)
    assert (result.batch_size, result.images, result.pixels, result.workers) == (16, 32, 32, 1)
    assert "ratio" in result.describe()


def test_cuda_batch_scales_the_lr_linearly_and_only_on_cuda():
    cfg = ProxyConfig(batch_size=64, lr=0.01, cuda_batch_size=256)
    assert for_device(cfg, torch.device("cpu")) is cfg
    gpu = for_device(cfg, torch.device("cuda"))
    assert (gpu.batch_size, gpu.lr, gpu.warmup_epochs) == (256, 0.04, cfg.warmup_epochs)
    plain = ProxyConfig()
    assert for_device(plain, torch.device("cuda")) is plain
    with pytest.raises(ValueError, match="cuda_batch_size"):
        ProxyConfig(cuda_batch_size=0)


def test_a_compiled_network_is_compiled_once_per_process_and_reseeded(
    small: EmbeddedSource, monkeypatch
) -> None:
    # torch.compile stands in as a counting wrapper: what is tested is the cache around it.
    compiles: list[nn.Module] = []

    def fake_compile(module: nn.Module) -> nn.Module:
        compiles.append(module)
        return module

    monkeypatch.setattr(D.torch, "compile", fake_compile)
    monkeypatch.setattr(D, "_COMPILED", {})
    cfg = resolve_proxy("quick", {"images": 64, "compile": True, "base_pixels": 32})
    first = train(TINY, small, cfg, seed=1)
    again = train(TINY, small, cfg, seed=1)
    other_seed = train(TINY, small, cfg, seed=2)
    plain = train(TINY, small, dataclasses.replace(cfg, compile=False), seed=2)
    assert len(compiles) == 1  # one network, three runs
    # The cached copy takes each run's own initial weights: results equal uncompiled runs.
    assert first.top1 == again.top1
    assert other_seed.top1 == plain.top1
    assert other_seed.loss_curve == plain.loss_curve
    wider = scale(0.5, 0.5, pixels=32, base_pixels=32)
    train(wider, small, cfg, seed=1)
    train(TINY, small, dataclasses.replace(cfg, base_pixels=32), seed=1)
    assert len(compiles) == 2  # another network compiles; the first is still cached
