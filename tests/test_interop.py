"""Exported members build the same network in timm, torchvision and Keras (verified, not assumed).

Two exported families, φ = 0..3: the paper's coefficients (1.2, 1.1, 1.15), exported in the
current schema, and scaler 0.2's committed example (tests/data/export-schema1.json). Each
member is built in each library by executing the exact lines ``scaler build --to LIB`` prints,
and compared with ``scaler.build_member``: parameter counts (Keras: trainable ones, since it
counts BatchNorm statistics as non-trainable parameters), the output shape of the stem, of each
of the seven stages and of the head at the member's input size, dropout, and the stochastic-depth
schedule.

These libraries need a torchvision that the CPU build of torch cannot load, so they live in an
environment of their own (``.ci/run`` makes one); elsewhere every test here is skipped, saying so.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 on the torch backend, before import

# The example export scaler 0.2 committed (schema 1, coefficients (1.0, 1.2, 1.14)).
EXAMPLE = Path(__file__).resolve().parent / "data" / "export-schema1.json"
PHIS = (0, 1, 2, 3)
FAMILIES = ("official", "example")


def _library(name: str):
    """The module, or a skip naming it (an import that fails for any reason is absent here);
    a failure where SCALER_TEST_INTEROP is set (.ci/run's interop step), so CI cannot skip."""
    try:
        return importlib.import_module(name)
    except Exception as e:  # torchvision beside the CPU torch fails with RuntimeError, not Import
        reason = (
            f"{name} is not importable here ({type(e).__name__}: {e}): the interop tests run in "
            "the environment .ci/run builds (CUDA build of torch, torchvision, timm, keras)"
        )
        if os.environ.get("SCALER_TEST_INTEROP"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    from scaler.exports import family_payload, load_export
    from scaler.scaling import PAPER_COEFFICIENTS, Coefficients

    path = tmp_path_factory.mktemp("interop") / "official.json"
    path.write_text(json.dumps(family_payload(Coefficients(*PAPER_COEFFICIENTS), 3, 224)))
    return {"official": load_export(path), "example": load_export(EXAMPLE)}


def _hook_shapes(modules) -> tuple[list, list]:
    shapes, handles = [], []
    for m in modules:
        handles.append(m.register_forward_hook(lambda _m, _i, o: shapes.append(tuple(o.shape[1:]))))
    return shapes, handles


def _torch_shapes(model, modules, pixels: int) -> list[tuple[int, int, int]]:
    """(C, H, W) after each of ``modules`` for one image of ``pixels`` x ``pixels``."""
    import torch

    shapes, handles = _hook_shapes(modules)
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, pixels, pixels))
    for h in handles:
        h.remove()
    return shapes


def _scaler(exp, phi):
    """scaler's network, its parameter count, stage shapes, dropout and drop-path rates."""
    import scaler

    m = exp.member(phi)
    model = scaler.build_member(exp, phi)
    last, ends = -1, []
    for stage in m.network.stages:
        last += stage.layers
        ends.append(model.blocks[last])
    shapes = _torch_shapes(model, [model.stem, *ends, model.head], m.pixels)
    params = sum(p.numel() for p in model.parameters())
    drops = [b.drop_rate for b in model.blocks]
    return m, params, shapes, model.dropout.p, drops


def _run_snippet(m, target: str):
    from scaler.interop import snippet

    scope: dict = {}
    exec(snippet(m, target), scope)  # the exact lines `scaler build --to TARGET` prints
    return scope["model"]


@pytest.mark.parametrize("phi", PHIS)
@pytest.mark.parametrize("family", FAMILIES)
def test_timm_builds_the_same_network(exports, family, phi):
    _library("timm")
    m, params, shapes, dropout, drops = _scaler(exports[family], phi)
    model = _run_snippet(m, "timm")
    assert sum(p.numel() for p in model.parameters()) == params == m.params
    stages = [model.bn1, *model.blocks, model.bn2]
    assert _torch_shapes(model, stages, m.pixels) == shapes
    assert model.pretrained_cfg["input_size"] == (3, m.pixels, m.pixels)
    assert model.drop_rate == dropout == m.dropout
    blocks = [b for stage in model.blocks for b in stage]
    assert [getattr(b.drop_path, "drop_prob", 0.0) for b in blocks] == pytest.approx(drops)


@pytest.mark.parametrize("phi", PHIS)
@pytest.mark.parametrize("family", FAMILIES)
def test_torchvision_builds_the_same_network(exports, family, phi):
    _library("torchvision")
    m, params, shapes, dropout, drops = _scaler(exports[family], phi)
    model = _run_snippet(m, "torchvision")
    assert sum(p.numel() for p in model.parameters()) == params == m.params
    assert _torch_shapes(model, list(model.features), m.pixels) == shapes
    assert model.classifier[0].p == dropout == m.dropout
    blocks = [b for stage in model.features[1:8] for b in stage]
    assert [b.stochastic_depth.p for b in blocks] == pytest.approx(drops)
    assert model.features[0][1].eps == model.features[8][1].eps == 1e-3


def test_torchvision_needs_the_exported_head(exports):
    # Without last_channel torchvision's head is 4 × round(320·w): 1856 channels at w = 1.44.
    _library("torchvision")
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

    m = exports["example"].member(2)
    blocks, _ = _efficientnet_conf("efficientnet_b0", width_mult=m.width, depth_mult=m.depth)
    default = EfficientNet(blocks, dropout=m.dropout)
    assert default.features[8][0].out_channels == 1856 != m.network.head == 1840
    assert sum(p.numel() for p in default.parameters()) - m.params == 23_456


def _keras_shapes(model) -> list[tuple[int, int, int]]:
    """(C, H, W) of the stem, the last layer of each stage block1..block7, and the head."""
    names = [layer.name for layer in model.layers]
    ends = ["stem_activation"]
    for i in range(1, 8):
        ends.append([n for n in names if n.startswith(f"block{i}")][-1])
    ends.append("top_activation")
    shapes = [tuple(model.get_layer(n).output.shape[1:]) for n in ends]
    return [(c, h, w) for h, w, c in shapes]  # Keras is channels-last


@pytest.mark.parametrize("phi", PHIS)
@pytest.mark.parametrize("family", FAMILIES)
def test_keras_builds_the_same_network(exports, family, phi):
    _library("keras")
    import numpy as np

    m, params, shapes, dropout, drops = _scaler(exports[family], phi)
    model = _run_snippet(m, "keras")
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == params == m.params
    assert _keras_shapes(model) == shapes
    assert model.get_layer("top_dropout").rate == dropout == m.dropout
    # Keras adds a drop layer only to blocks with a skip and a rate > 0, named after the block.
    keras_drops = {x.name: x.rate for x in model.layers if x.name.endswith("_drop")}
    assert keras_drops == pytest.approx(_residual_drops(exports[family], phi))


def _residual_drops(exp, phi) -> dict[str, float]:
    """scaler's drop-path rates of blocks with a skip, by Keras' block names (block2b_drop)."""
    import scaler

    blocks = iter(scaler.build_member(exp, phi).blocks)
    rates = {}
    for s, stage in enumerate(exp.member(phi).network.stages, start=1):
        for j in range(stage.layers):
            b = next(blocks)
            if b.residual and b.drop_rate > 0:
                rates[f"block{s}{chr(ord('a') + j)}_drop"] = b.drop_rate
    return rates


@pytest.mark.parametrize(
    ("base", "builder"),
    [("mobilenetv2", "mobilenet_v2"), ("resnet18", "resnet18"), ("resnet50", "resnet50")],
)
def test_torchvision_bases_are_the_same_network(base, builder):
    """scaler's --base at multiplier 1 is torchvision's network: the same tensors in the same
    order, and with torchvision's weights loaded into it, the same outputs."""
    import torch

    from scaler.bases import get_base
    from scaler.model import build
    from scaler.spec import scale

    tv = _library("torchvision")
    theirs = getattr(tv.models, builder)(weights=None).eval()
    ours = build(scale(base=get_base(base), pixels=64)).eval()
    a, b = theirs.state_dict(), ours.state_dict()
    assert [tuple(v.shape) for v in a.values()] == [tuple(v.shape) for v in b.values()]
    ours.load_state_dict(dict(zip(b, a.values(), strict=True)))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)
