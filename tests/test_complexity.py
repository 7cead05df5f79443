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


# ---- the exact parameter count and the closed-form cost model ------------------------------


def _per_layer_cost_model(spec, num_classes=1000, in_channels=3):
    """The cost model as first written: one step per layer (the closed form must equal it)."""
    from scaler.spec import SE_RATIO

    c = [0] * 6
    c[1] += in_channels * spec.stem * 9 + 2 * spec.stem
    level, cin = 1, spec.stem
    for stage in spec.stages:
        for i in range(stage.layers):
            mid, k = cin * stage.expand, stage.kernel
            squeeze = max(1, int(cin * SE_RATIO))
            if stage.expand != 1:
                c[level] += cin * mid + 2 * mid
            if i == 0 and stage.stride == 2:
                level += 1
            c[level] += mid * k * k + 2 * mid + mid
            c[0] += 2 * mid * squeeze
            c[level] += mid * stage.channels + 2 * stage.channels
            cin = stage.channels
    c[level] += cin * spec.head + 2 * spec.head + spec.head
    c[0] += spec.head * num_classes
    return tuple(c)


ODD_SPECS = [
    # (depth, width, pixels, classes, input channels); 1e-12 leaves every stage without blocks
    (0.3, 0.2, 33, 7, 1),
    (1e-12, 0.1, 64, 1, 3),
    (0.05, 0.7, 40, 1000, 3),
    (2.7, 1.37, 97, 13, 4),
    (1.1, 3.3, 123, 10, 2),
]


@pytest.mark.parametrize("name", ["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"])
def test_param_count_equals_the_built_network_for_every_preset(name):
    from scaler.complexity import param_count
    from scaler.model import build, count_params

    spec = preset(name)
    assert param_count(spec) == count_params(build(spec))
    assert param_count(spec, 10) == count_params(build(spec, 10))


@pytest.mark.parametrize("depth, width, pixels, classes, channels", ODD_SPECS)
def test_param_count_and_cost_model_on_odd_specs(depth, width, pixels, classes, channels):
    from scaler.complexity import cost_model, param_count
    from scaler.model import build, count_params

    spec = scale(depth, width, pixels=pixels)
    assert param_count(spec, classes, channels) == count_params(build(spec, classes, channels))
    model = cost_model(spec, classes, channels)
    assert model.coefficients == _per_layer_cost_model(spec, classes, channels)
    assert model.flops_at(pixels) == int(model.flops(pixels))


def test_param_count_pins_the_published_counts():
    from scaler.complexity import param_count

    published = [5_288_548, 7_794_184, 9_109_994, 12_233_232, 19_341_616]
    assert [param_count(preset(f"b{i}")) for i in range(5)] == published


def test_param_count_rejects_what_the_builder_rejects():
    from scaler.complexity import param_count

    for args, option in (((0,), "num_classes 0"), ((10, 0), "in_channels 0")):
        with pytest.raises(ValueError, match=option) as err:
            param_count(preset("b0"), *args)
        assert "\n" not in str(err.value)


def test_closed_forms_take_any_depth_instantly():
    import time
    from dataclasses import replace

    from scaler.complexity import cost_model, param_count

    spec = scale(4.0, 1.5, pixels=64)

    def deeper(k):
        return replace(spec, stages=tuple(replace(s, layers=s.layers * k) for s in spec.stages))

    start = time.perf_counter()
    huge = 10**6
    params, coefficients = param_count(deeper(huge)), cost_model(deeper(huge)).coefficients
    assert time.perf_counter() - start < 0.5
    # Later blocks of a stage are identical, so both are affine in the layer multiplier k;
    # k = 1 and 2 are checked one layer at a time, which pins k = 10^6.
    one, two = _per_layer_cost_model(deeper(1)), _per_layer_cost_model(deeper(2))
    assert coefficients == tuple(a + (huge - 1) * (b - a) for a, b in zip(one, two, strict=True))
    p1, p2 = param_count(deeper(1)), param_count(deeper(2))
    assert params == p1 + (huge - 1) * (p2 - p1)


def test_flops_at_is_exact_past_int64():
    from scaler.complexity import cost_model

    model = cost_model(preset("b0"))
    p = 10**8  # ~8e19 FLOPs: numpy's int64 would wrap
    expected = model.coefficients[0] + sum(
        c * (-(-p // 2**s)) ** 2 for s, c in enumerate(model.coefficients[1:], start=1)
    )
    assert model.flops_at(p) == expected > 2**63


def test_cost_model_and_param_count_do_not_import_torch():
    # `scaler family` needs only arithmetic: it must not pay torch's ~2 s import.
    code = (
        "import sys; from scaler.complexity import cost_model, param_count; "
        "from scaler.scaling import Coefficients, family; from scaler.spec import preset; "
        "param_count(preset('b7')); family(Coefficients(1.2, 1.1, 1.15), 12); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
