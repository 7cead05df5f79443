"""FLOPs parity with the published fvcore numbers and a cross-check against torch's counter."""

import subprocess
import sys

import pytest

from scaler.complexity import breakdown, count, torch_conv_linear_flops
from scaler.spec import preset, scale

# fvcore totals at native resolution, GMac (REFERENCE.md).
OFFICIAL_GMAC = {"b0": 0.4017, "b1": 0.7127, "b2": 1.0266, "b3": 1.8839, "b4": 4.5125}
# Conv + linear only, GMac.
CONV_LINEAR_GMAC = {"b0": 0.3858, "b1": 0.6868}


@pytest.mark.parametrize("name", OFFICIAL_GMAC)
def test_fvcore_parity(name):
    flops = count(preset(name)).flops / 1e9
    assert flops == pytest.approx(OFFICIAL_GMAC[name], rel=0.005)


@pytest.mark.parametrize("name", CONV_LINEAR_GMAC)
def test_torch_flop_counter_cross_check(name):
    # torch counts 2 flops per multiply-add; fvcore's conv + linear share must agree with it.
    torch_macs = torch_conv_linear_flops(preset(name)) / 2
    assert torch_macs / 1e9 == pytest.approx(CONV_LINEAR_GMAC[name], rel=0.001)
    assert torch_macs < count(preset(name)).flops  # fvcore also counts BN and pooling


def test_breakdown_sums_to_total():
    spec = scale(1.2, 1.1, pixels=96)
    rows = breakdown(spec)
    total = count(spec)
    assert sum(r.flops for r in rows) == total.flops
    assert sum(r.params for r in rows) == total.params
    assert [r.resolution for r in rows] == [96, 48, 48, 24, 12, 6, 6, 3, 3]


def test_cache_is_by_realized_network():
    a = count(scale(1.1, 1.05, pixels=40))
    b = count(scale(1.2, 1.05, pixels=40))  # rounds to the same network
    assert a is b


def test_counting_does_not_touch_train_mode_statistics():
    from scaler.complexity import measure
    from scaler.model import build

    model = build(scale(0.5, 0.5, pixels=32)).train()
    before = model.stem[1].running_mean.clone()
    measure(model, 32)
    assert model.training
    assert (model.stem[1].running_mean == before).all()


def test_runs_under_warnings_as_errors():
    code = (
        "from scaler.complexity import count; from scaler.spec import scale; "
        "count(scale(pixels=32))"
    )
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "depth, width, pixels, classes",
    [(1.0, 1.0, 224, 1000), (1.2, 1.1, 33, 13), (2.0, 0.5, 97, 10), (1.4, 1.8, 258, 1000)],
)
def test_cost_model_matches_fvcore(depth, width, pixels, classes):
    from scaler.complexity import cost_model

    spec = scale(depth, width, pixels=pixels)
    assert int(cost_model(spec, classes).flops(pixels)) == count(spec, classes).flops
