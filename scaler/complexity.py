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
``warnings.catch_warnings`` so that ``python -W error`` runs stay clean. torch and the builder are
imported lazily too: :func:`cost_model` and :func:`param_count` are arithmetic on the Spec, and
``scaler family`` (which needs nothing else) answers without paying torch's import.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from scaler.bases import StageDef
from scaler.spec import Spec, Stage

if TYPE_CHECKING:
    import torch


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
    import torch

    from scaler.model import count_params

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
    from scaler.model import build

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
        base_pixels=spec.pixels,
        dropout=0.0,
    )


def torch_conv_linear_flops(spec: Spec, num_classes: int = 1000) -> int:
    """Conv + linear FLOPs by torch's FlopCounterMode (2 flops per multiply-add), batch 1."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from scaler.model import build

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
    import torch

    from scaler.model import build, count_params

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

    stem = spec.base.stem
    rows = [StageCost(1, stem_label(spec), spec.pixels, spec.stem, 1, *cost(["stem"]))]
    size, index = down(down(spec.pixels, stem.stride), 2 if stem.pool else 1), 0
    for number, (d, stage) in enumerate(zip(spec.base.stages, spec.stages, strict=True), start=2):
        names = [f"blocks.{index + i}" for i in range(stage.layers)]
        rows.append(
            StageCost(
                number,
                f"{stage.operator}, k{stage.kernel}x{stage.kernel}",
                size,
                d.outputs(stage.channels),
                stage.layers,
                *cost(names),
            )
        )
        size, index = down(size, stage.stride), index + stage.layers
    head = ["head", "pool", "classifier"]
    rows.append(
        StageCost(
            len(spec.stages) + 2,
            head_label(spec),
            size,
            spec.head or _last_channels(spec),
            1,
            *cost(head),
        )
    )
    return rows


def stem_label(spec: Spec) -> str:
    """The stem's row in a stage table: "Conv3x3" (B0), "Conv7x7 & MaxPool" (ResNet)."""
    k = spec.base.stem.kernel
    return f"Conv{k}x{k}" + (" & MaxPool" if spec.base.stem.pool else "")


def head_label(spec: Spec) -> str:
    """The head's row: "Conv1x1 & Pooling & FC", or "Pooling & FC" without a head conv."""
    return "Conv1x1 & Pooling & FC" if spec.head else "Pooling & FC"


@dataclass(frozen=True)
class CostModel:
    """fvcore FLOPs of one realized network as an exact function of the input size.

    Every op fvcore counts (conv, linear, batch norm, adaptive pooling) costs a constant times
    the area of a feature map, and EfficientNet's maps sit at five stride levels of side
    ceil(p / 2^s) (odd kernels with "same" padding and ResNet's 3x3/2 max pool all halve to the
    ceiling). So FLOPs(p) = c0 + sum_s c_s * ceil(p / 2^s)^2 (+ area * p^2 for a stride-1
    stem), with the c_s read off the
    realized network using fvcore's own per-op rules (conv: Cout * Cin/groups * k^2 per output
    pixel; eval batch norm: 2 per element; adaptive pooling: 1 per input element; linear:
    in * out). Tests pin it to fvcore's traced counts; the pixel solver uses it to scan every
    input size at once instead of tracing one network per size.
    """

    coefficients: tuple[int, ...]  # c0, c1..c5 (more levels for a base with more strides)
    area: int = 0  # FLOPs per input pixel: ops at full size (a stride-1 stem), p²

    def flops(self, pixels):
        """FLOPs at ``pixels`` (an int or a numpy array of ints), as numpy int64."""
        import numpy as np

        p = np.asarray(pixels, dtype=np.int64)
        total = np.full(p.shape, self.coefficients[0], dtype=np.int64) + self.area * p**2
        for s, c in enumerate(self.coefficients[1:], start=1):
            total = total + c * (-(-p // 2**s)) ** 2
        return total

    def flops_at(self, pixels: int) -> int:
        """FLOPs at one size as a Python int: exact at any size (int64 wraps past 9.2e18)."""
        p = int(pixels)
        c0, *levels = self.coefficients
        total = c0 + self.area * p * p
        return total + sum(c * (-(-p // 2**s)) ** 2 for s, c in enumerate(levels, start=1))


@dataclass(frozen=True)
class _BlockCost:
    """One block's parameters and fvcore FLOPs, split by where they run."""

    params: int
    expand: int  # FLOPs per pixel at the block's input level (before its stride): 1x1 convs
    spatial: int  # FLOPs per pixel at the block's output level: depthwise/kxk, SE pool, project
    fixed: int  # FLOPs at 1x1: the SE reduce and expand convs


def _conv(cin: int, cout: int, k: int = 1, groups: int = 1) -> int:
    """A bias-free conv + BN: its parameters, and equally its fvcore FLOPs per output pixel
    (conv: cout·cin/groups·k² multiply-adds; eval BN: 2 per element, as it has 2 per channel)."""
    return cout * (cin // groups) * k * k + 2 * cout


def _block_cost(cin: int, stage: Stage, d: StageDef, stride: int) -> _BlockCost:
    """What ``model.make_block`` builds for this stage costs (the builder's layout, read once)."""
    k, c = stage.kernel, stage.channels
    if d.block == "mbconv":
        mid = cin * stage.expand
        squeeze = max(1, int(cin * d.se)) if d.se > 0 else 0
        expand = _conv(cin, mid) if stage.expand != 1 else 0
        depthwise = _conv(mid, mid, k, groups=mid)
        project = _conv(mid, c)
        se_params = (mid * squeeze + squeeze) + (squeeze * mid + mid) if squeeze else 0
        return _BlockCost(
            params=expand + depthwise + se_params + project,
            expand=expand,
            spatial=depthwise + (mid if squeeze else 0) + project,  # SE pooling reads every element
            fixed=2 * mid * squeeze,
        )
    cout = d.outputs(c)
    shortcut = _conv(cin, cout) if stride != 1 or cin != cout else 0
    if d.block == "bottleneck":
        reduce = _conv(cin, c)  # runs before the stride, on the kxk conv
        spatial = _conv(c, c, k) + _conv(c, cout) + shortcut
        return _BlockCost(params=reduce + spatial, expand=reduce, spatial=spatial, fixed=0)
    spatial = _conv(cin, c, k) + _conv(c, c, k) + shortcut
    return _BlockCost(params=spatial, expand=0, spatial=spatial, fixed=0)


def _stages(spec: Spec):
    """Per stage with blocks: (stage, its first block, each later block, later-block count).

    A stage's first block takes the previous stage's channels (and its stride); the others are
    identical, which makes every total below closed-form in the number of layers.
    """
    cin = spec.stem
    for d, stage in zip(spec.base.stages, spec.stages, strict=True):
        if stage.layers < 1:
            continue  # the builder makes no block and leaves the channels as they are
        cout = d.outputs(stage.channels)
        first, later = _block_cost(cin, stage, d, stage.stride), _block_cost(cout, stage, d, 1)
        yield stage, first, later, stage.layers - 1
        cin = cout


def _last_channels(spec: Spec) -> int:
    """Channels entering the head: those of the last stage that has blocks."""
    pairs = zip(spec.base.stages, spec.stages, strict=True)
    outs = [d.outputs(s.channels) for d, s in pairs if s.layers > 0]
    return outs[-1] if outs else spec.stem


def _stem_params(spec: Spec, in_channels: int) -> int:
    return _conv(in_channels, spec.stem, spec.base.stem.kernel)


def cost_model(spec: Spec, num_classes: int = 1000, in_channels: int = 3) -> CostModel:
    """The exact FLOPs-versus-pixels function of the network ``spec`` realizes (any depth)."""
    stem = spec.base.stem
    c = [0] * 6
    levels = [0]  # FLOPs per pixel of the full-size input (a stride-1 stem)
    level = int(stem.stride == 2)

    def add(at: int, flops: int) -> None:
        target = levels if at == 0 else c
        while len(c) <= at:
            c.append(0)
        target[at] += flops

    add(level, _stem_params(spec, in_channels))  # stem conv + BN (the max pool is not counted)
    level += stem.pool
    for stage, first, later, n in _stages(spec):
        add(level, first.expand)  # 1x1 convs that run before the stride
        if stage.stride == 2:
            level += 1
        add(level, first.spatial + n * (later.expand + later.spatial))
        c[0] += first.fixed + n * later.fixed
    last = _last_channels(spec)
    # head conv + BN + global pool; without a head, the pool reads the last stage.
    add(level, last * spec.head + 3 * spec.head if spec.head else last)
    c[0] += (spec.head or last) * num_classes
    return CostModel(tuple(c), area=levels[0])


def train_memory(spec: Spec, batch_size: int, num_classes: int = 1000) -> int:
    """A rough upper estimate of one training run's GPU memory in bytes (for placement only).

    fvcore's activations (conv and linear outputs) per image, times the batch, times 2 bytes
    (bf16) and 4 (the block's other saved tensors: BN, SiLU, SE outputs, and their gradients);
    plus 16 bytes per parameter (fp32 weights, gradients, momentum, autocast copies).
    """
    cost = count(spec, num_classes)
    return cost.activations * batch_size * 2 * 4 + cost.params * 16


def param_count(spec: Spec, num_classes: int = 1000, in_channels: int = 3) -> int:
    """Exactly ``count_params(build(spec, num_classes, in_channels))``, without building."""
    if num_classes < 1:
        raise ValueError(f"num_classes {num_classes} is invalid: it must be >= 1")
    if in_channels < 1:
        raise ValueError(f"in_channels {in_channels} is invalid: it must be >= 1")
    total = _stem_params(spec, in_channels)  # stem conv (no bias) + BN
    for _, first, later, n in _stages(spec):
        total += first.params + n * later.params
    last = _last_channels(spec)
    if spec.head:
        total += _conv(last, spec.head)  # head conv (no bias) + BN
    return total + (spec.head or last) * num_classes + num_classes  # the classifier


def summary(spec: Spec, num_classes: int = 1000) -> dict:
    """A network's realized sizes, total cost and per-stage breakdown (``scaler info``)."""
    if num_classes < 1:
        raise ValueError(f"--classes {num_classes} is invalid: it must be >= 1")
    rows = breakdown(spec, num_classes)
    total = count(spec, num_classes)
    named = {} if spec.base.name == "efficientnet-b0" else {"base": spec.base.name}
    return {
        **named,
        "depth": spec.depth,
        "width": spec.width,
        "resolution": spec.resolution,
        "base_pixels": spec.base_pixels,
        "pixels": spec.pixels,
        "layers": spec.layers,
        "params": total.params,
        "flops": total.flops,
        "flops_unit": "fvcore: one multiply-add = one flop",
        "activations": total.activations,
        "stages": rows,
    }
