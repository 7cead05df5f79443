"""Counting the cost of a realized network: FLOPs (fvcore), parameters and activations.

Conventions, stated once:

- **FLOPs are fvcore's: one multiply-add counts as one flop** (so "GFLOPs" here equals GMac).
  torch's own ``torch.utils.flop_counter.FlopCounterMode`` counts 2 flops per multiply-add;
  :func:`torch_conv_linear_flops` gives that second, independent count for cross-checks.
- fvcore counts convolutions, linear layers, batch norm and adaptive average pooling. It does
  not count element-wise ops (silu, sigmoid, mul, add, the SE gate's multiply): their per-op
  "unsupported" warnings are silenced on purpose; published EfficientNet figures omit them too.
- Counting runs on an eval-mode copy with batch 1: tracing a train-mode network would update its
  BatchNorm running statistics.
- Results are cached by (realized network, pixels, classes, input channels): many multipliers
  round to the same network, and the measured-budget solver asks for the same sizes repeatedly.

fvcore pulls in modules that emit DeprecationWarnings at import time; it is imported lazily inside
``warnings.catch_warnings`` so that ``python -W error`` runs stay clean.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from functools import lru_cache

import torch

from scaler.model import build, count_params
from scaler.spec import SE_RATIO, Spec


@dataclass(frozen=True)
class Complexity:
    """Cost of one network at one input size (batch 1)."""

    flops: int  # fvcore: one multiply-add = one flop
    params: int
    activations: int  # fvcore's activation count (conv/linear outputs)

    @property
    def gflops(self) -> float:
        return self.flops / 1e9


def _fvcore():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis
    # fvcore logs one line per skipped op kind (silu, mul, ...): expected, see module docstring.
    logging.getLogger("fvcore.nn.jit_analysis").setLevel(logging.ERROR)
    return FlopCountAnalysis, ActivationCountAnalysis


def measure(
    model: torch.nn.Module, pixels: int, in_channels: int = 3, activations: bool = True
) -> Complexity:
    """Count an arbitrary model's cost at ``pixels`` x ``pixels`` (on an eval-mode copy).

    ``activations=False`` skips the second trace (the count is then 0).
    """
    flop_analysis, act_analysis = _fvcore()
    # fvcore traces on the CPU in fp32; the original (maybe on a GPU, in train mode) is untouched.
    net = copy.deepcopy(model).cpu().float().eval()
    x = torch.zeros(1, in_channels, pixels, pixels)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about data-dependent control flow
        flops = flop_analysis(net, x)
        flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        total_flops, total_acts = int(flops.total()), 0
        if activations:
            acts = act_analysis(net, x)
            acts.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            total_acts = int(acts.total())
    return Complexity(flops=total_flops, params=count_params(net), activations=total_acts)


@lru_cache(maxsize=4096)
def _count_cached(key: tuple, spec: Spec, num_classes: int, in_channels: int) -> Complexity:
    del key  # part of the cache key only
    return measure(build(spec, num_classes, in_channels), spec.pixels, in_channels)


def count(spec: Spec, num_classes: int = 1000, in_channels: int = 3) -> Complexity:
    """Cost of the network a Spec realizes, cached by realized network and pixels."""
    # Multipliers are dropped from the key: equal realized networks share one count.
    return _count_cached(
        (spec.key, num_classes, in_channels), _canonical(spec), num_classes, in_channels
    )


def _canonical(spec: Spec) -> Spec:
    # lru_cache hashes every argument; give it a Spec whose multipliers do not split the cache.
    from dataclasses import replace

    return replace(
        spec,
        depth=0.0,
        width=0.0,
        resolution=0.0,
        base_resolution=spec.pixels,
        dropout=0.0,
    )


def torch_conv_linear_flops(spec: Spec, num_classes: int = 1000) -> int:
    """Conv + linear FLOPs by torch's FlopCounterMode (2 flops per multiply-add), batch 1."""
    from torch.utils.flop_counter import FlopCounterMode

    net = build(spec, num_classes).eval()
    x = torch.zeros(1, 3, spec.pixels, spec.pixels)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(x)
    ops = counter.get_flop_counts()["Global"]
    wanted = ("convolution", "addmm", "mm")
    return int(sum(v for op, v in ops.items() if str(op).split(".")[-1] in wanted))


@dataclass(frozen=True)
class StageCost:
    """One row of the paper's Table 1 with its cost: stem, each MBConv stage, head."""

    stage: int
    operator: str
    resolution: int  # input height = width of the stage
    channels: int
    layers: int
    params: int
    flops: int
    activations: int


def breakdown(spec: Spec, num_classes: int = 1000, in_channels: int = 3) -> list[StageCost]:
    """Per-stage parameters, FLOPs and activations, in the layout of the paper's Table 1."""
    flop_analysis, act_analysis = _fvcore()
    net = build(spec, num_classes, in_channels).eval()
    x = torch.zeros(1, in_channels, spec.pixels, spec.pixels)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        flops = flop_analysis(net, x).unsupported_ops_warnings(False).by_module()
        acts = act_analysis(net, x).unsupported_ops_warnings(False).by_module()

    def cost(prefixes: list[str]) -> tuple[int, int, int]:
        mods = [net.get_submodule(p) for p in prefixes]
        return (
            sum(count_params(m) for m in mods),
            sum(int(flops.get(p, 0)) for p in prefixes),
            sum(int(acts.get(p, 0)) for p in prefixes),
        )

    def down(size: int, stride: int) -> int:
        return -(-size // stride)  # "same" padding: ceil(size / stride)

    rows = [StageCost(1, "Conv3x3", spec.pixels, spec.stem, 1, *cost(["stem"]))]
    size, index = down(spec.pixels, 2), 0
    for number, stage in enumerate(spec.stages, start=2):
        names = [f"blocks.{index + i}" for i in range(stage.layers)]
        rows.append(
            StageCost(
                number,
                f"{stage.operator}, k{stage.kernel}x{stage.kernel}",
                size,
                stage.channels,
                stage.layers,
                *cost(names),
            )
        )
        size, index = down(size, stage.stride), index + stage.layers
    head = ["head", "pool", "classifier"]
    rows.append(
        StageCost(
            len(spec.stages) + 2,
            "Conv1x1 & Pooling & FC",
            size,
            spec.head,
            1,
            *cost(head),
        )
    )
    return rows


@dataclass(frozen=True)
class CostModel:
    """fvcore FLOPs of one realized network as an exact function of the input size.

    Every op fvcore counts (conv, linear, batch norm, adaptive pooling) costs a constant times
    the area of a feature map, and EfficientNet's maps sit at five stride levels of side
    ceil(p / 2^s). So FLOPs(p) = c0 + sum_s c_s * ceil(p / 2^s)^2, with the c_s read off the
    realized network using fvcore's own per-op rules (conv: Cout * Cin/groups * k^2 per output
    pixel; eval batch norm: 2 per element; adaptive pooling: 1 per input element; linear:
    in * out). Tests pin it to fvcore's traced counts; the pixel solver uses it to scan every
    input size at once instead of tracing one network per size.
    """

    coefficients: tuple[int, ...]  # c0, c1..c5

    def flops(self, pixels):
        """FLOPs at ``pixels`` (an int or a numpy array of ints)."""
        import numpy as np

        p = np.asarray(pixels, dtype=np.int64)
        total = np.full(p.shape, self.coefficients[0], dtype=np.int64)
        for s, c in enumerate(self.coefficients[1:], start=1):
            total = total + c * (-(-p // 2**s)) ** 2
        return total


def cost_model(spec: Spec, num_classes: int = 1000, in_channels: int = 3) -> CostModel:
    """The exact FLOPs-versus-pixels function of the network ``spec`` realizes."""
    c = [0] * 6
    c[1] += in_channels * spec.stem * 9 + 2 * spec.stem  # stem conv + BN, at level 1
    level, cin = 1, spec.stem
    for stage in spec.stages:
        for i in range(stage.layers):
            mid, k = cin * stage.expand, stage.kernel
            squeeze = max(1, int(cin * SE_RATIO))
            if stage.expand != 1:
                c[level] += cin * mid + 2 * mid  # expand 1x1 + BN
            if i == 0 and stage.stride == 2:
                level += 1
            c[level] += mid * k * k + 2 * mid  # depthwise + BN
            c[level] += mid  # SE squeeze: pooling reads every element
            c[0] += 2 * mid * squeeze  # SE reduce and expand run at 1x1
            c[level] += mid * stage.channels + 2 * stage.channels  # project 1x1 + BN
            cin = stage.channels
    c[level] += cin * spec.head + 2 * spec.head + spec.head  # head conv + BN + global pool
    c[0] += spec.head * num_classes
    return CostModel(tuple(c))


def summary(spec: Spec, num_classes: int = 1000) -> dict:
    """A network's realized sizes, total cost and per-stage breakdown (``scaler info``)."""
    if num_classes < 1:
        raise ValueError(f"--classes {num_classes} is invalid: it must be >= 1")
    rows = breakdown(spec, num_classes)
    total = count(spec, num_classes)
    return {
        "depth": spec.depth,
        "width": spec.width,
        "resolution": spec.resolution,
        "base_resolution": spec.base_resolution,
        "pixels": spec.pixels,
        "layers": spec.layers,
        "params": total.params,
        "flops": total.flops,
        "flops_unit": "fvcore: one multiply-add = one flop",
        "activations": total.activations,
        "stages": rows,
    }
