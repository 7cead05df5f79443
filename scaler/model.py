"""The EfficientNet builder: MBConv blocks with squeeze-and-excitation and stochastic depth.

``build(spec)`` turns a realized :class:`~scaler.spec.Spec` into an ``nn.Module``. The layout
follows the official implementation (and torchvision's, whose parameter counts the tests pin):
stem conv3x3/s2 + BN + SiLU, the MBConv stages, conv1x1 head + BN + SiLU, global average pool,
dropout, linear classifier.

BatchNorm uses eps 1e-3 like the official code but PyTorch's default momentum (0.1) instead of the
official 0.01: proxy runs last a few hundred steps, and with momentum 0.01 the running statistics
would still be far from the trained weights' when the held-out split is evaluated.
"""

from __future__ import annotations

import torch
from torch import nn

from scaler.spec import DROP_CONNECT, SE_RATIO, Spec

BN_EPS = 1e-3


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=BN_EPS),
    ]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel gating; the bottleneck is SE_RATIO of the block's *input* channels."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        # A pooling module, not x.mean(): fvcore counts adaptive_avg_pool2d, as in the reference.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.act = nn.SiLU(inplace=True)

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
    """Inverted residual: expand 1x1, depthwise kxk, SE, project 1x1 (no activation)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        expand: int,
        kernel: int,
        stride: int,
        drop: float,
        zero_init: bool = False,
    ):
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn(cin, mid, 1))
        layers += [
            _conv_bn(mid, mid, kernel, stride, groups=mid),
            SqueezeExcite(mid, max(1, int(cin * SE_RATIO))),
            _conv_bn(mid, cout, 1, act=False),
        ]
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


class EfficientNet(nn.Module):
    """A scaled EfficientNet built from a Spec."""

    def __init__(
        self,
        spec: Spec,
        num_classes: int = 1000,
        in_channels: int = 3,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        self.spec = spec
        self.stem = _conv_bn(in_channels, spec.stem, 3, 2)
        total = spec.layers
        blocks: list[nn.Module] = []
        cin, index = spec.stem, 0
        for stage in spec.stages:
            for i in range(stage.layers):
                # rate·i/N as in the official code, timm, torchvision and Keras: 0 at the first
                # block, DROP_CONNECT·(N-1)/N at the last.
                drop = DROP_CONNECT * index / total
                stride = stage.stride if i == 0 else 1
                blocks.append(
                    MBConv(
                        cin,
                        stage.channels,
                        stage.expand,
                        stage.kernel,
                        stride,
                        drop,
                        zero_init_residual,
                    )
                )
                cin, index = stage.channels, index + 1
        self.blocks = nn.Sequential(*blocks)
        self.head = _conv_bn(cin, spec.head, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout)
        self.classifier = nn.Linear(spec.head, num_classes)
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
            if isinstance(m, MBConv):
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
