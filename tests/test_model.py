"""The builder: parameter parity with the official family, forward/backward on every preset."""

import pytest
import torch

from scaler.model import build, count_params
from scaler.spec import PRESETS, preset, scale

# torchvision efficientnet_b0..b4, 1000 classes (REFERENCE.md).
OFFICIAL_PARAMS = {
    "b0": 5_288_548,
    "b1": 7_794_184,
    "b2": 9_109_994,
    "b3": 12_233_232,
    "b4": 19_341_616,
}


@pytest.mark.parametrize("name", OFFICIAL_PARAMS)
def test_param_parity(name):
    assert count_params(build(preset(name))) == OFFICIAL_PARAMS[name]


@pytest.mark.parametrize("name", list(PRESETS))
def test_forward_backward_every_preset(name):
    torch.manual_seed(0)
    spec = preset(name, base_pixels=16)  # small: b7 still has 55 blocks
    model = build(spec, num_classes=7).train()
    x = torch.randn(2, 3, spec.pixels, spec.pixels)
    out = model(x)
    assert out.shape == (2, 7)
    out.logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_classes_and_input_channels():
    model = build(scale(0.5, 0.5, pixels=32), num_classes=3, in_channels=1).eval()
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 3)


def test_stochastic_depth_grows_linearly():
    model = build(preset("b0"))
    rates = [b.drop_rate for b in model.blocks]
    # rate·i/N, as the official code and timm, torchvision and Keras schedule it.
    assert rates == pytest.approx([0.2 * i / 16 for i in range(16)])


def test_bad_classes():
    with pytest.raises(ValueError, match="num_classes"):
        build(preset("b0"), num_classes=0)


def test_zero_init_starts_every_residual_block_as_the_identity():
    spec = scale(2.0, 1.0, base_pixels=32)
    net = build(spec, 10, zero_init_residual=True).eval()
    plain = build(spec, 10).eval()
    residual = [b for b in net.blocks if b.residual]
    assert residual, "a depth-2 network has residual blocks"
    for block in residual:
        x = torch.randn(2, block.block[0][0].in_channels, 8, 8)
        assert torch.equal(block(x), x)
    # the first block of each stage has no shortcut, so it keeps its BN scale
    first = [b for b in net.blocks if not b.residual]
    assert all(float(b.block[-1][1].weight.detach().abs().sum()) > 0 for b in first)
    assert count_params(net) == count_params(plain)
    assert any(
        float(b.block[-1][1].weight.detach().abs().sum()) > 0 for b in plain.blocks if b.residual
    )
