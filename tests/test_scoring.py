"""Scoring a run other ways: flip test-time augmentation, averaged weights with BatchNorm
recomputed, the variants a noise study measures, and the test that compares their noise."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import TINY_PROXY
from torch import nn

from scaler.averaging import Averager, start_step
from scaler.data import parse_data
from scaler.evaluation import evaluate, folded
from scaler.model import build
from scaler.proxy import resolve_proxy
from scaler.scaling import network_spec
from scaler.scoring import VARIANTS
from scaler.stats import paired_variance_ratio
from scaler.studies import proxy_json
from scaler.train import train


class _LeftRight(nn.Module):
    """Class 0 when the left half of the image is brighter, else class 1."""

    def forward(self, x):
        half = x.shape[3] // 2
        d = x[..., :half].mean(dim=(1, 2, 3)) - x[..., half:].mean(dim=(1, 2, 3))
        return torch.stack([d, -d], dim=1) * 10


def _halves(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.zeros(n, 3, 8, 8, dtype=torch.uint8)
    images[: n // 2, :, :, :4] = 200  # left bright: class 0
    images[n // 2 :, :, :, 4:] = 200
    labels = torch.tensor([0] * (n // 2) + [1] * (n - n // 2))
    return images, labels


def test_flip_averages_the_image_and_its_mirror():
    images, labels = _halves(10)
    model = _LeftRight()
    plain = evaluate(model, images, labels, device=torch.device("cpu"))
    flipped = evaluate(model, images, labels, device=torch.device("cpu"), tta="flip")
    assert plain.top1 == 100.0
    # the mirror says the opposite with the same confidence: the mean probability is 1/2 each
    assert flipped.loss == pytest.approx(math.log(2), abs=1e-5)
    with pytest.raises(ValueError, match="tta 'rot'"):
        evaluate(model, images, labels, tta="rot")


def test_swa_of_equal_weights_is_those_weights_and_bn_is_recomputed():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(256, 2))
    averager = Averager.of(model, ["swa", "ema"], first_step=3, ema_decay=0.9, seed=0)
    for step in range(1, 6):
        averager.after_step(step, model)  # the weights never change
    images, _ = _halves(40)
    norm = (torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1))
    for name in ("swa", "ema"):
        avg = averager.finish(
            name, images, norm, torch.device("cpu"), channels_last=False, bn_images=40
        )
        assert torch.equal(avg.module[0].weight, model[0].weight)
        bn = avg.module[1]
        assert int(bn.num_batches_tracked) > 0 and not torch.allclose(
            bn.running_mean, torch.zeros(4)
        )
    assert averager.averages["swa"].n_averaged.item() == 3  # steps 3, 4 and 5
    assert start_step(80, 0.5) == 41 and start_step(1, 0.5) == 1


def test_variants_score_one_run_every_way_and_the_proxy_scores_its_own():
    source = parse_data("fractal:classes=4,train=64,val=32,test=32,seed=3")
    spec = network_spec("b0", base_pixels=16)
    settings = resolve_proxy("quick", dict(TINY_PROXY))
    plain = train(spec, source, settings, test=True, variants=True)
    assert [v.name for v in plain.variants] == list(VARIANTS)
    last = plain.variants[0]
    assert last.name == "last" and last.val.top1 == plain.top1 and last.test.top1 == plain.test.top1
    assert all(v.seconds > 0 for v in plain.variants)
    swa = dataclasses.replace(settings, average="swa", tta="flip")
    scored = train(spec, source, swa, test=True)
    by_name = {v.name: v for v in plain.variants}
    # the same run scored the proxy's own way: training is untouched by the average
    assert scored.loss_curve == plain.loss_curve
    assert scored.top1 == by_name["swa+flip"].val.top1
    assert scored.test.top1 == by_name["swa+flip"].test.top1
    assert scored.variants == ()
    assert scored.val_top1_curve == (scored.top1,)  # the one val pass is the run's own scoring


def test_a_run_scored_another_way_pays_no_val_pass_on_its_last_weights(monkeypatch):
    import scaler.scoring
    import scaler.train

    calls, batchnorms = [], []

    def counted(model, images, *args, **kw):
        calls.append((len(images), kw.get("tta", "none")))
        batchnorms.append(sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()))
        return evaluate(model, images, *args, **kw)

    monkeypatch.setattr(scaler.train, "evaluate", counted)
    monkeypatch.setattr(scaler.scoring, "evaluate", counted)
    source = parse_data("fractal:classes=4,train=64,val=32,test=24,seed=3")
    spec = network_spec("b0", base_pixels=16)
    settings = resolve_proxy("quick", {**dict(TINY_PROXY), "average": "ema", "tta": "flip"})
    train(spec, source, settings, test=True)
    assert calls == [(128, "flip"), (96, "flip")]  # val and test, each once, the run's own way
    assert batchnorms == [0, 0]  # scored with BatchNorm folded into the convolutions
    calls.clear()
    train(spec, source, dataclasses.replace(settings, average="none", tta="none"), test=True)
    assert calls == [(128, "none"), (96, "none")]


def test_new_proxy_fields_are_validated_and_leave_study_names_alone():
    with pytest.raises(
        ValueError, match="average 'mean' is unknown: valid values are none, swa, ema"
    ):
        resolve_proxy("standard", {"average": "mean"})
    with pytest.raises(ValueError, match="tta"):
        resolve_proxy("standard", {"tta": "crop"})
    # 0.6's standard (last weights, no TTA) is named as before the fields existed; 0.7's
    # standard (EMA + flip) names both, so its studies are new ones.
    old = resolve_proxy("standard", {"average": "none", "tta": "none"})
    assert "average" not in proxy_json(old) and "tta" not in proxy_json(old)
    default = resolve_proxy("standard")
    assert '"average": "ema"' in proxy_json(default) and '"tta": "flip"' in proxy_json(default)
    assert '"average": "swa"' in proxy_json(dataclasses.replace(default, average="swa"))
    assert (
        "scored on swa from 0.5 of the run + flip tta"
        in dataclasses.replace(default, average="swa", tta="flip").describe()
    )


def test_pitman_morgan_holds_its_level_and_sees_a_halved_sigma():
    rng = np.random.default_rng(7)
    null, found = 0, 0
    trials = 2000
    for _ in range(trials):
        shared = rng.normal(0, 2, 12)
        a = shared + rng.normal(0, 2, 12)
        b = shared + rng.normal(0, 2, 12)
        null += paired_variance_ratio(a, b).p < 0.05
        quiet = 0.25 * shared + rng.normal(0, 0.5, 12)  # σ about half of b's
        found += paired_variance_ratio(quiet, b).p < 0.05
    # 5 % within 3 binomial standard errors of 2000 tests
    assert abs(null / trials - 0.05) < 3 * math.sqrt(0.05 * 0.95 / trials)
    assert found / trials > 0.5


def test_folded_batchnorm_scores_as_the_network_does():
    torch.manual_seed(0)
    model = build(network_spec("b0", base_pixels=32), 4)
    with torch.no_grad():  # BatchNorm statistics and affine weights far from their defaults
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    model.train()
    copy = folded(model)
    assert model.training  # its mode is left as it was
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in copy.modules())
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(copy(x), model.eval()(x), rtol=1e-4, atol=1e-4)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 4, (64,))
    cpu = torch.device("cpu")
    for tta in ("none", "flip"):
        a = evaluate(model, images, labels, device=cpu, tta=tta)
        b = evaluate(copy, images, labels, device=cpu, tta=tta)
        assert a.loss == pytest.approx(b.loss, rel=1e-4)


def test_a_network_fx_cannot_trace_is_scored_unfolded():
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x  # control flow on a tensor's value

    model = Branchy()
    assert folded(model) is model
