"""The builder lines for other libraries: a family member's exact arguments in timm,
torchvision, Keras and the official TensorFlow code, and the Python that ``scaler build --to``
prints.

The libraries take the multipliers and round them themselves, each with the same rule as
scaler (channels to the nearest multiple of 8, +8 under 90 %; layers up), so only what they
would get wrong is given explicitly:

- torchvision's head defaults to 4 × round(320·w), which equals round(1280·w) for B0–B7 only
  (w = 1.44: 1856 against 1840 channels), so ``last_channel`` is always given;
- timm keeps the input size only in its ``pretrained_cfg``, hence ``pretrained_cfg_overlay``;
- Keras and the official code take it as ``default_size`` and ``--input_image_size``.

Their EfficientNet builders make EfficientNet only: a family of another base has no build
section (:mod:`scaler.exports` leaves it out) and ``--to`` refuses it. A member here is a
:class:`scaler.exports.Member` (read by its attributes; this module imports no export code).
"""

from __future__ import annotations

from typing import Any

from scaler.bases import EFFICIENTNET_B0, Base

BN_EPS = 1e-3  # the official BatchNorm epsilon (Keras and official TF have it by default)
TARGETS = ("timm", "torchvision", "keras", "tf")


def build_arguments(m) -> dict[str, dict[str, Any]]:
    """The call and its exact keyword arguments in timm, torchvision, Keras and official TF."""
    return {"timm": _timm(m), "torchvision": _torchvision(m), "keras": _keras(m), "tf": _tf(m)}


def _timm(m) -> dict[str, Any]:
    p = m.pixels
    return {
        # timm.create_model("efficientnet_b0", channel_multiplier=...) fails: the variant
        # passes its own multipliers. The variant here only names the pretrained config.
        "call": "timm.models.efficientnet._gen_efficientnet",
        "kwargs": {
            "variant": "efficientnet_b0",
            "channel_multiplier": m.width,
            "depth_multiplier": m.depth,
            "pretrained": False,
            "num_classes": m.num_classes,
            "drop_rate": m.dropout,
            "drop_path_rate": m.drop_path,
            "bn_eps": BN_EPS,
            "pretrained_cfg_overlay": {"input_size": [3, p, p], "test_input_size": [3, p, p]},
        },
    }


def _torchvision(m) -> dict[str, Any]:
    return {
        "call": "torchvision.models.efficientnet.EfficientNet",
        "config": {
            "call": "torchvision.models.efficientnet._efficientnet_conf",
            "kwargs": {"arch": "efficientnet_b0", "width_mult": m.width, "depth_mult": m.depth},
        },
        # last_channel: torchvision's default head is 4 × round(320·w), not round(1280·w).
        "kwargs": {
            "dropout": m.dropout,
            "stochastic_depth_prob": m.drop_path,
            "num_classes": m.num_classes,
            "last_channel": m.network.head,
        },
        # torchvision's B0–B4 keep PyTorch's eps of 1e-5; the official code has 1e-3.
        "norm_layer": {"call": "torch.nn.BatchNorm2d", "kwargs": {"eps": BN_EPS}},
        "input_size": m.pixels,
    }


def _keras(m) -> dict[str, Any]:
    return {
        "call": "keras.src.applications.efficientnet.EfficientNet",
        "kwargs": {
            "width_coefficient": m.width,
            "depth_coefficient": m.depth,
            "default_size": m.pixels,
            "dropout_rate": m.dropout,
            "drop_connect_rate": m.drop_path,
            "depth_divisor": m.network.divisor,
            "weights": None,
            "classes": m.num_classes,
        },
    }


def _tf(m) -> dict[str, Any]:
    return {
        "call": "efficientnet_builder.build_model",
        "source": "github.com/tensorflow/tpu models/official/efficientnet",
        "kwargs": {
            "model_name": "efficientnet-b0",
            "override_params": {
                "width_coefficient": m.width,
                "depth_coefficient": m.depth,
                "dropout_rate": m.dropout,
                "survival_prob": 1.0 - m.drop_path,
                "depth_divisor": m.network.divisor,
                "num_classes": m.num_classes,
            },
        },
        "flags": {"input_image_size": m.pixels},
    }


# ----------------------------------------------------------------------------------------------
# the lines `scaler build --to TARGET` prints
# ----------------------------------------------------------------------------------------------


def _py(value: Any) -> str:
    """A value as Python source: lists as tuples (timm's input sizes are tuples)."""
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{k}={_py(v)}" for k, v in value.items()) + ")"
    return repr(value)


def _call(name: str, kwargs: dict[str, Any], first: str = "", indent: str = "") -> str:
    """``name(first, k=v, ...)``, one argument a line; long dict arguments one key a line."""
    args = [first] if first else []
    for k, v in kwargs.items():
        flat = f"{k}={_py(v)}"
        if isinstance(v, dict) and len(flat) > 80:
            flat = f"{k}=" + _call("dict", v, indent=indent + "    ")
        args.append(flat)
    inner = "".join(f"{indent}    {a},\n" for a in args)
    return f"{name}(\n{inner}{indent})"


def snippet(m, target: str) -> str:
    """The few lines of Python that build member ``m`` in ``target`` (one of TARGETS)."""
    check_target(target, m.base)
    b = build_arguments(m)[target]
    head = f"# EfficientNet φ = {m.phi}: {m.params:,} parameters, input 3x{m.pixels}x{m.pixels}"
    lines = {"timm": _timm_lines, "torchvision": _torchvision_lines, "keras": _keras_lines}
    lines_of = lines.get(target, lambda b: _tf_lines(b, m.pixels))
    return "\n".join([head, *lines_of(b)]) + "\n"


def _timm_lines(b: dict[str, Any]) -> list[str]:
    module, name = b["call"].rsplit(".", 1)
    kwargs = dict(b["kwargs"])
    variant = _py(kwargs.pop("variant"))
    return [f"from {module} import {name}", "", "model = " + _call(name, kwargs, variant)]


def _torchvision_lines(b: dict[str, Any]) -> list[str]:
    module, name = b["call"].rsplit(".", 1)
    conf, norm = b["config"], b["norm_layer"]
    _, cname = conf["call"].rsplit(".", 1)
    ckw = dict(conf["kwargs"])
    arch = _py(ckw.pop("arch"))
    eps = ", ".join(f"{k}={_py(v)}" for k, v in norm["kwargs"].items())
    return [
        "from functools import partial",
        "",
        "import torch",
        f"from {module} import {name}, {cname}",
        "",
        f"blocks, _ = {cname}({arch}, " + ", ".join(f"{k}={_py(v)}" for k, v in ckw.items()) + ")",
        "model = "
        + _call(name, {**b["kwargs"], "norm_layer": None}, "blocks").replace(
            "norm_layer=None", f"norm_layer=partial({norm['call']}, {eps})"
        ),
    ]


def _keras_lines(b: dict[str, Any]) -> list[str]:
    module, name = b["call"].rsplit(".", 1)
    return [f"from {module} import {name}", "", "model = " + _call(name, b["kwargs"])]


def _tf_lines(b: dict[str, Any], pixels: int) -> list[str]:
    module, _ = b["call"].rsplit(".", 1)
    kwargs = {"training": True, **b["kwargs"]}
    return [
        f"# {b['source']}; train with main.py --input_image_size={pixels}",
        f"import {module}",
        "",
        "logits, endpoints = " + _call(b["call"], kwargs, "images"),
    ]


def check_target(target: str, base: Base = EFFICIENTNET_B0) -> str:
    """``target`` if another library scaler writes arguments for, else a one-line ValueError."""
    if target not in TARGETS:
        raise ValueError(f"--to {target!r} is invalid: valid targets are {', '.join(TARGETS)}")
    if base != EFFICIENTNET_B0:
        raise ValueError(
            f"--to {target} builds EfficientNet families only, and this export scales "
            f"{base.name}: build it here (scaler build without --to, or scaler.build_member)"
        )
    return target
