"""Base networks: parity with torchvision at multiplier 1, the exact counts at any size, every
base trains, stage tables from YAML and their one-line errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from scaler.bases import BASES, EFFICIENTNET_B0, MOBILENETV2, RESNET18, RESNET50, get_base
from scaler.complexity import breakdown, cost_model, count, param_count, torch_conv_linear_flops
from scaler.model import build, count_params
from scaler.spec import round_channels, scale

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# torchvision's published parameter counts (models.mobilenet_v2, resnet18, resnet50; 1000 classes).
TORCHVISION_PARAMS = {
    "efficientnet-b0": 5_288_548,
    "mobilenetv2": 3_504_872,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
}
# fvcore FLOPs at 224 px (one multiply-add = one flop; BatchNorm counted, 2 per element).
FVCORE_FLOPS = {
    "efficientnet-b0": 401_659_392,
    "mobilenetv2": 314_193_216,
    "resnet18": 1_819_065_856,
    "resnet50": 4_111_512_576,
}
# torchvision's published GFLOPS (conv and linear multiply-adds only): an independent count.
TORCHVISION_GFLOPS = {
    "efficientnet-b0": 0.39,
    "mobilenetv2": 0.30,
    "resnet18": 1.81,
    "resnet50": 4.09,
}


@pytest.mark.parametrize("name", list(BASES))
def test_parity_with_torchvision_at_multiplier_1(name):
    spec = scale(base=get_base(name))
    assert count_params(build(spec)) == TORCHVISION_PARAMS[name]
    assert param_count(spec) == TORCHVISION_PARAMS[name]
    assert count(spec).flops == FVCORE_FLOPS[name]
    macs = torch_conv_linear_flops(spec) / 2  # torch counts 2 flops per multiply-add
    assert macs / 1e9 == pytest.approx(TORCHVISION_GFLOPS[name], abs=0.005)


@pytest.mark.parametrize("name", list(BASES))
@pytest.mark.parametrize(("depth", "width", "pixels"), [(1.0, 1.0, 97), (1.7, 1.37, 131)])
def test_exact_counts_match_the_built_network(name, depth, width, pixels):
    spec = scale(depth, width, base=get_base(name), pixels=pixels)
    cost = count(spec, 10)
    assert param_count(spec, 10) == cost.params == count_params(build(spec, 10))
    assert cost_model(spec, 10).flops_at(pixels) == cost.flops
    rows = breakdown(spec, 10)
    assert sum(r.flops for r in rows) == cost.flops
    assert sum(r.params for r in rows) == cost.params


@pytest.mark.parametrize("name", list(BASES))
def test_forward_backward_every_base(name):
    torch.manual_seed(0)
    spec = scale(1.2, 1.1, base=get_base(name), pixels=32)
    model = build(spec, num_classes=5, zero_init_residual=True).train()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 5)
    out.logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_each_base_scales_by_its_own_conventions():
    # MobileNetV2's head never shrinks (torchvision's last_channel); B0's does.
    assert scale(width=0.5, base=MOBILENETV2).head == 1280
    assert scale(width=0.5).head == round_channels(1280, 0.5) == 640
    assert scale(width=1.5, base=MOBILENETV2).head == 1920
    # A bottleneck's channels are its inner width; it puts out 4 × that.
    wide = scale(width=2.0, base=RESNET50)
    assert [s.channels for s in wide.stages] == [128, 256, 512, 1024]
    assert build(wide).classifier.in_features == 4096
    assert scale(width=2.0, base=RESNET50).head == 0  # no head convolution
    # Depth rounds up per stage for every base: 2·[2, 2, 2, 2] and ceil(1.5·3) = 5.
    assert [s.layers for s in scale(2.0, base=RESNET18).stages] == [4, 4, 4, 4]
    assert [s.layers for s in scale(1.5, base=RESNET50).stages] == [5, 6, 9, 5]


def test_base_is_part_of_the_network_identity():
    b0, mb = scale(pixels=64), scale(base=MOBILENETV2, pixels=64)
    # B0's key and key string are those of the studies written before bases existed.
    assert b0.key_str == "s32_c16-24-40-80-112-192-320_l1-2-2-3-3-4-1_h1280_p64"
    assert mb.key_str.startswith("mobilenetv2_") and mb.key != b0.key
    assert count(b0).flops != count(mb).flops


def test_stochastic_depth_and_dropout_follow_the_base():
    assert [b.drop_rate for b in build(scale(base=RESNET50)).blocks] == [0.0] * 16
    assert build(scale(base=RESNET50)).dropout.p == 0.0
    assert build(scale(base=MOBILENETV2)).dropout.p == 0.2
    assert build(scale()).blocks[-1].drop_rate == pytest.approx(0.2 * 15 / 16)


# ----------------------------------------------------------------------------------------------
# stage tables from YAML
# ----------------------------------------------------------------------------------------------


def test_the_example_mobilenetv2_table_is_the_builtin():
    base = get_base(str(EXAMPLES / "mobilenetv2.yaml"))
    assert dataclasses.replace(base, name=MOBILENETV2.name, title=MOBILENETV2.title) == MOBILENETV2
    assert param_count(scale(base=base)) == 3_504_872


def test_the_example_hybrid_with_a_stride_1_stem_counts_exactly():
    base = get_base(str(EXAMPLES / "small-hybrid.yaml"))
    assert base.pixels == 64 and base.stem.stride == 1
    for pixels in (64, 33):
        spec = scale(1.3, 1.2, base=base, pixels=pixels)
        cost = count(spec)
        assert cost_model(spec).area > 0  # the stem runs at full size
        assert cost_model(spec).flops_at(pixels) == cost.flops
        assert param_count(spec) == cost.params


def test_a_table_round_trips_through_its_dict():
    from scaler.bases import from_dict

    for base in BASES.values():
        back = from_dict(base.to_dict())
        assert (
            dataclasses.replace(back, title=base.title, dropout_by_phi=base.dropout_by_phi) == base
        )


def _table(**changes) -> dict:
    data = RESNET18.to_dict()
    for path, value in changes.items():
        node, *keys = path.split("__")
        target = data
        if node == "stage":
            target, keys = data["stages"][1], keys
        elif node != "top":
            target = data[node]
        if value is None:
            target.pop(keys[0])
        else:
            target[keys[0]] = value
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"stage__stride": 3}, r"stages\[1\]\.stride 3 is invalid: it must be 1 or 2"),
        ({"stage__block": "dense"}, r"stages\[1\]\.block 'dense' is unknown: valid are mbconv"),
        ({"stage__activation": "gelu"}, r"activation 'gelu' is unknown: valid are silu, relu"),
        ({"stage__repeats": -1}, r"stages\[1\]\.repeats -1 is invalid: it must be an integer in"),
        ({"stage__channels": None}, r"stages\[1\]\.channels is missing"),
        ({"stage__kernel": 4}, r"stages\[1\]\.kernel 4 is invalid: it must be odd"),
        ({"stage__se": 0.25}, r"stages\[1\]\.se 0.25 is invalid: .* mbconv option"),
        ({"stage__width": 2}, r"stages\[1\]\.width is unknown: valid fields are block"),
        ({"stem__channels": -8}, r"stem\.channels -8 is invalid"),
        ({"head__width": "shrink"}, r"head\.width 'shrink' is unknown: valid are scale, grow"),
        ({"top__dropout": 1.5}, r"dropout 1.5 is invalid: it must be a number in \[0, 1\)"),
        ({"top__stages": None}, r"stages is missing"),
    ],
)
def test_bad_tables_are_refused_in_one_line(changes, message):
    from scaler.bases import from_dict

    with pytest.raises(ValueError, match=message) as e:
        from_dict(_table(**changes), "--base t.yaml")
    assert "\n" not in str(e.value) and str(e.value).startswith("--base t.yaml: ")


def test_unknown_base_names_the_valid_ones():
    with pytest.raises(ValueError, match="--base 'vgg16' is unknown: valid bases are"):
        get_base("vgg16")
    with pytest.raises(ValueError, match="does not exist"):
        get_base("missing.yaml")
    assert get_base(None) is EFFICIENTNET_B0 and get_base("ResNet50") is RESNET50


def test_the_stored_base_reads_back():
    from scaler.bases import from_config, stored

    assert stored(EFFICIENTNET_B0) == {} and from_config({}) == EFFICIENTNET_B0
    assert stored(RESNET50) == {"base": "resnet50"} and from_config(stored(RESNET50)) == RESNET50
    own = get_base(str(EXAMPLES / "small-hybrid.yaml"))
    assert set(stored(own)) == {"base", "base_table"} and from_config(stored(own)) == own
