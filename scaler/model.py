"""The builder: MBConv (with or without SE), ResNet basic and bottleneck blocks, stochastic depth.

``build(spec)`` turns a realized :class:`~scaler.spec.Spec` into an ``nn.Module``, reading block
types, activations and stem from ``spec.base`` (:mod:`scaler.bases`). The layout follows the
official implementation and torchvision's, whose parameter counts the tests pin: stem conv +
BN + activation (+ ResNet's max pool), the stages, conv1x1 head + BN + activation (none for
ResNet), global average pool, dropout, linear classifier. For B0: stem conv3x3/s2, MBConv with
SE, SiLU.

BatchNorm uses the base's eps (1e-3 for B0 like the official code, 1e-5 for torchvision's bases)
and PyTorch's default momentum (0.1) instead of EfficientNet's official 0.01: proxy runs last a
few hundred steps, and with momentum 0.01 the running statistics would still be far from the
trained weights' when the held-out split is evaluated.
"""

from __future__ import annotations

import torch
from torch import nn

from scaler.bases import SE_RATIO, StageDef
from scaler.spec import Spec, Stage

BN_EPS = 1e-3
ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "relu6": nn.ReLU6}


def _act(name: str) -> nn.Module:
    return ACTIVATIONS[name](inplace=True)


def _conv_bn(
    cin: int,
    cout: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    act: str | None = "silu",
    eps: float = BN_EPS,
):
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=eps),
    ]
    if act:
        layers.append(_act(act))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel gating; the bottleneck is a ratio (SE_RATIO) of the block's *input* channels."""

    def __init__(self, channels: int, squeeze: int, act: str = "silu"):
        super().__init__()
        # A pooling module, not x.mean(): fvcore counts adaptive_avg_pool2d, as in the reference.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.act = _act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.pool(x)
        return x * torch.sigmoid(self.expand(self.act(self.reduce(s))))


class StochasticDepth(nn.Module):
    """Drops the residual branch per sample with probability ``p`` during training."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:.4f}"


class MBConv(nn.Module):
    """Inverted residual: expand 1x1, depthwise kxk, SE, project 1x1 (no activation).

    ``se`` 0 leaves out the SE (MobileNetV2's inverted residual, with ``act`` relu6).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        expand: int,
        kernel: int,
        stride: int,
        drop: float,
        zero_init: bool = False,
        *,
        se: float = SE_RATIO,
        act: str = "silu",
        eps: float = BN_EPS,
    ):
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn(cin, mid, 1, act=act, eps=eps))
        layers.append(_conv_bn(mid, mid, kernel, stride, groups=mid, act=act, eps=eps))
        if se > 0:
            layers.append(SqueezeExcite(mid, max(1, int(cin * se)), act))
        layers.append(_conv_bn(mid, cout, 1, act=None, eps=eps))
        self.block = nn.Sequential(*layers)
        self.drop_rate = drop  # kept for inspection; only residual blocks can drop
        self.residual = stride == 1 and cin == cout
        self.drop = StochasticDepth(drop) if self.residual else nn.Identity()
        self.zero_init = zero_init and self.residual

    def reset_branch(self) -> None:
        """Zero the last BN's scale of a residual branch, so the block starts as the identity.

        Goyal et al. 2017 (§5.1): a deep stack of identity blocks trains like a shallow one at
        first; without it, short proxy runs of deep members fail to optimise at all.
        """
        if self.zero_init:
            nn.init.zeros_(self.block[-1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + self.drop(out) if self.residual else out


class ResidualBlock(nn.Module):
    """ResNet's basic (two kxk convs) or bottleneck (1x1, kxk, 1x1) block, as torchvision's.

    The stride sits on the kxk convolution (ResNet v1.5); a 1x1 projection with BN is the
    shortcut where the stride or the channels change; the activation follows the sum.
    """

    def __init__(
        self,
        cin: int,
        channels: int,
        expand: int,
        kernel: int,
        stride: int,
        drop: float,
        zero_init: bool = False,
        *,
        bottleneck: bool = True,
        act: str = "relu",
        eps: float = BN_EPS,
    ):
        super().__init__()
        cout = channels * expand if bottleneck else channels
        if bottleneck:
            layers = [
                _conv_bn(cin, channels, 1, act=act, eps=eps),
                _conv_bn(channels, channels, kernel, stride, act=act, eps=eps),
                _conv_bn(channels, cout, 1, act=None, eps=eps),
            ]
        else:
            layers = [
                _conv_bn(cin, cout, kernel, stride, act=act, eps=eps),
                _conv_bn(cout, cout, kernel, act=None, eps=eps),
            ]
        self.block = nn.Sequential(*layers)
        self.shortcut = (
            _conv_bn(cin, cout, 1, stride, act=None, eps=eps)
            if stride != 1 or cin != cout
            else nn.Identity()
        )
        self.drop_rate = drop
        self.drop = StochasticDepth(drop)
        self.act = _act(act)
        self.zero_init = zero_init

    def reset_branch(self) -> None:
        """Zero the branch's last BN scale (torchvision's ``zero_init_residual``)."""
        if self.zero_init:
            nn.init.zeros_(self.block[-1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shortcut(x) + self.drop(self.block(x)))


def make_block(
    d: StageDef, cin: int, stage: Stage, stride: int, drop: float, zero_init: bool, eps: float
) -> nn.Module:
    """One block of a realized stage (its type, SE and activation from the base's row ``d``)."""
    if d.block == "mbconv":
        return MBConv(
            cin,
            stage.channels,
            stage.expand,
            stage.kernel,
            stride,
            drop,
            zero_init,
            se=d.se,
            act=d.activation,
            eps=eps,
        )
    return ResidualBlock(
        cin,
        stage.channels,
        stage.expand,
        stage.kernel,
        stride,
        drop,
        zero_init,
        bottleneck=d.block == "bottleneck",
        act=d.activation,
        eps=eps,
    )


class EfficientNet(nn.Module):
    """A scaled network built from a Spec (EfficientNet, or another base's stage table)."""

    def __init__(
        self,
        spec: Spec,
        num_classes: int = 1000,
        in_channels: int = 3,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        self.spec = spec
        base, eps = spec.base, spec.base.bn_eps
        stem = base.stem
        self.stem = _conv_bn(
            in_channels, spec.stem, stem.kernel, stem.stride, act=stem.activation, eps=eps
        )
        if stem.pool:
            self.stem.append(nn.MaxPool2d(3, 2, 1))
        total = spec.layers
        blocks: list[nn.Module] = []
        cin, index = spec.stem, 0
        for d, stage in zip(base.stages, spec.stages, strict=True):
            for i in range(stage.layers):
                # rate·i/N as in the official code, timm, torchvision and Keras: 0 at the first
                # block, rate·(N-1)/N at the last.
                drop = base.drop_connect * index / total
                stride = stage.stride if i == 0 else 1
                blocks.append(make_block(d, cin, stage, stride, drop, zero_init_residual, eps))
                cin, index = d.outputs(stage.channels), index + 1
        self.blocks = nn.Sequential(*blocks)
        # No head convolution (ResNet): the classifier reads the last stage's channels.
        self.head = (
            _conv_bn(cin, spec.head, 1, act=base.head.activation, eps=eps)
            if spec.head
            else nn.Identity()
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout)
        self.classifier = nn.Linear(spec.head or cin, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # Official initialisers: fan-out normal for convs, uniform 1/sqrt(classes) for the FC.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / m.out_features**0.5
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, MBConv | ResidualBlock):
                m.reset_branch()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


def build(
    spec: Spec, num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False
) -> EfficientNet:
    """Build the network a Spec describes.

    ``zero_init_residual`` starts every residual branch at zero (its last BN's scale); parameter
    and FLOP counts are unchanged. Proxy runs turn it on (``ProxyConfig.zero_init``).
    """
    if num_classes < 1:
        raise ValueError(f"num_classes {num_classes} is invalid: it must be >= 1")
    if in_channels < 1:
        raise ValueError(f"in_channels {in_channels} is invalid: it must be >= 1")
    return EfficientNet(spec, num_classes, in_channels, zero_init_residual)


def count_params(model: nn.Module) -> int:
    """Number of parameters (sum of numel)."""
    return sum(p.numel() for p in model.parameters())
