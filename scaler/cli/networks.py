"""``scaler info``, ``scaler family`` and ``scaler build``: one network's cost table, a family's
costs, one exported member built here or in another library."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from scaler.cli.common import BaseOpt, JsonOpt, base_option, out, print_json
from scaler.cli.latency import DeviceOpt, MeasureLatencyOpt, latency_settings

FLOPS_NOTE = "* fvcore: one multiply-add = one flop"


def _m(flops: float) -> str:
    return f"{flops / 1e6:,.1f}"


def info(
    preset: Annotated[Optional[str], typer.Option(help="Official member b0..b7.")] = None,
    depth: Annotated[Optional[float], typer.Option(help="Depth multiplier d (> 0).")] = None,
    width: Annotated[Optional[float], typer.Option(help="Width multiplier w (> 0).")] = None,
    resolution: Annotated[
        Optional[float],
        typer.Option(help="Resolution multiplier r (> 0) of --cost-pixels."),
    ] = None,
    pixels: Annotated[
        Optional[int],
        typer.Option(help="Input size in pixels (8..2048); default: --cost-pixels."),
    ] = None,
    cost_pixels: Annotated[
        Optional[int],
        typer.Option(help="Input size of the unscaled network (default 224)."),
    ] = None,
    coefficients: Annotated[
        Optional[Path],
        typer.Option(help="Coefficients file written by `scaler export`."),
    ] = None,
    phi: Annotated[float, typer.Option(help="φ to apply to --coefficients.")] = 1.0,
    classes: Annotated[int, typer.Option(help="Classifier outputs (>= 1).")] = 1000,
    base: BaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the per-stage table of a scaled network (the paper's Table 1) with its cost.

    FLOPs are fvcore's: one multiply-add counts as one flop.

    Examples:

      scaler info --preset b0

      scaler info --depth 1.2 --width 1.1 --pixels 258

      scaler info --coefficients coefficients.json --phi 3 --json

      scaler info --base resnet50 --depth 1.4 --width 1.2 --resolution 1.3
    """
    from scaler.complexity import summary

    sizes = (depth, width, resolution, pixels)
    spec = _info_spec(preset, sizes, cost_pixels, coefficients, phi, base_option(base))
    payload = summary(spec, classes)
    if as_json:
        print_json(payload)
        return
    _print_info(spec, payload)


def _info_spec(preset, sizes: tuple, cost_pixels, coefficients, phi: float, base):
    """The network `scaler info` shows: an export's member at φ, or the one the options name."""
    from scaler.exports import member_spec
    from scaler.scaling import network_spec

    depth, width, resolution, pixels = sizes
    if coefficients is None:
        return network_spec(
            preset, depth, width, pixels, cost_pixels, resolution=resolution, base=base
        )
    if preset is not None or any(x is not None for x in sizes):
        raise ValueError(
            "--coefficients cannot be combined with --preset/--depth/--width/--resolution/--pixels"
        )
    return member_spec(coefficients, phi, cost_pixels, base)


def uncounted(spec) -> str:
    """The element-wise ops fvcore leaves out, for the FLOPs footnote: "silu, sigmoid" for B0."""
    ops = list(spec.base.activations)
    if any(d.block == "mbconv" and d.se > 0 for d in spec.base.stages):
        ops.append("sigmoid")
    return ", ".join(ops)


def _print_info(spec, payload: dict) -> None:
    table = Table(title=f"{spec.base.label} {spec.describe()}, {spec.layers} blocks")
    for name in ("stage", "operator", "resolution", "channels", "layers"):
        table.add_column(name, justify="left" if name == "operator" else "right")
    for name in ("params", "MFLOPs*", "activations"):
        table.add_column(name, justify="right")
    for r in payload["stages"]:
        table.add_row(
            str(r.stage),
            r.operator,
            f"{r.resolution}x{r.resolution}",
            str(r.channels),
            str(r.layers),
            f"{r.params:,}",
            _m(r.flops),
            f"{r.activations:,}",
        )
    table.add_section()
    params, flops, acts = payload["params"], payload["flops"], payload["activations"]
    table.add_row("total", "", "", "", str(spec.layers), f"{params:,}", _m(flops), f"{acts:,}")
    out.print(table)
    out.print(
        f"params {params / 1e6:.2f} M · FLOPs {flops / 1e9:.3f} G* · activations {acts / 1e6:.2f} M"
    )
    out.print(f"{FLOPS_NOTE}; {uncounted(spec)}, mul and add are not counted.")


def family(
    alpha: Annotated[Optional[float], typer.Option(help="Depth coefficient α (> 0).")] = None,
    beta: Annotated[Optional[float], typer.Option(help="Width coefficient β (> 0).")] = None,
    gamma: Annotated[Optional[float], typer.Option(help="Resolution coefficient γ (> 0).")] = None,
    coefficients: Annotated[
        Optional[Path],
        typer.Option(help="Coefficients file written by `scaler export`."),
    ] = None,
    phi_max: Annotated[int, typer.Option(help="Largest φ (0..12).")] = 7,
    cost_pixels: Annotated[
        Optional[int],
        typer.Option(help="Input size of the unscaled network (default 224)."),
    ] = None,
    compare_official: Annotated[
        bool, typer.Option("--compare-official", help="Show the official B1..B7 next to each φ.")
    ] = False,
    base: BaseOpt = None,
    measure_latency: MeasureLatencyOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the family φ = 0..N of compound coefficients: nominal and measured cost.

    Nominal cost is (α·β²·γ²)^φ; measured cost is fvcore FLOPs ÷ the base's, for the real,
    rounded network. The paper's (1.2, 1.1, 1.15) at φ = 1 is nominally 1.92× but measures
    about 2.55× at 224 px, because ceil rounding turns 16 blocks into 23.

    Examples:

      scaler family --alpha 1.2 --beta 1.1 --gamma 1.15 --phi-max 7

      scaler family --coefficients coefficients.json --compare-official --json

      scaler family --base mobilenetv2 --alpha 1.2 --beta 1.1 --gamma 1.15 --phi-max 3
    """
    from scaler import exports, scaling
    from scaler.spec import check_pixels

    stated_by = exports.read_header(coefficients, "--coefficients") if coefficients else None
    net = exports.choose_base(base_option(base), stated_by)
    coeffs, stated = exports.family_coefficients(alpha, beta, gamma, stated_by)
    scaling.check_phi_max(phi_max)
    if compare_official and net.name != "efficientnet-b0":
        raise ValueError(f"--compare-official compares with EfficientNet B1..B7, not {net.name}")
    given = cost_pixels or (stated if coefficients else net.pixels)
    cost_pixels = check_pixels(given, "--cost-pixels")
    rows = scaling.family(coeffs, phi_max, cost_pixels, base=net)
    official = scaling.official_family(cost_pixels) if compare_official else {}
    timing = latency_settings(measure_latency, device)
    lats = _member_latency(coeffs, rows, cost_pixels, net, timing) if timing else None
    if as_json:
        print_json(_family_json(coeffs, cost_pixels, rows, official, net, lats))
        return
    _print_family(coeffs, cost_pixels, rows, official if compare_official else None, net, lats)


def _family_json(coeffs, cost_pixels: int, rows, official: dict, net, lats) -> dict:
    named = {} if net.name == "efficientnet-b0" else {"base": net.name}
    payload = {
        **named,
        "coefficients": dataclasses.asdict(coeffs),
        "cost_pixels": cost_pixels,
        "flops_unit": "fvcore: one multiply-add = one flop",
        "rows": rows,
    }
    if official:
        payload["official"] = official
    if lats is not None:
        payload["latency"] = [None if t is None else t.to_dict() for t in lats]
    return payload


def _member_latency(coeffs, rows, cost_pixels: int, net, settings):
    """Each buildable member's latency against φ = 0 (None past the builder's limits)."""
    from scaler.latency_runs import family_latency
    from scaler.scaling import member

    specs = [None if r.limit else member(coeffs, r.phi, cost_pixels, net)[0] for r in rows]
    return family_latency(specs, settings)


def _print_family(coeffs, cost_pixels: int, rows, official: dict | None, net, lats=None) -> None:
    whose = "Family" if net.name == "efficientnet-b0" else f"{net.label} family"
    table = Table(
        title=f"{whose} of α={coeffs.alpha:.4g}, β={coeffs.beta:.4g}, γ={coeffs.gamma:.4g} "
        f"(α·β²·γ² = {coeffs.product:.3f}), base {cost_pixels} px"
    )
    cols = ["φ", "d", "w", "r", "pixels", "layers", "params (M)", "GFLOPs*"]
    cols += ["nominal ×", "measured ×"]
    if official is not None:
        cols += ["official", "off. pixels", "off. params (M)", "off. measured ×"]
    if lats is not None:
        cols += ["latency (ms)", "latency ×"]
    for c in cols:
        table.add_column(c, justify="right")
    for r in rows:
        cells = [str(r.phi), f"{r.depth:.3f}", f"{r.width:.3f}", f"{r.resolution:.3f}"]
        cells += [f"{r.pixels}{'*' if r.limit else ''}", str(r.layers), f"{r.params / 1e6:.2f}"]
        cells += [f"{r.flops / 1e9:.3f}", f"{r.nominal_cost:.2f}", f"{r.measured_cost:.2f}"]
        if official is not None:
            o = official.get(f"b{r.phi}")
            cells += (
                [f"B{r.phi}", str(o.pixels), f"{o.params / 1e6:.2f}", f"{o.measured_cost:.2f}"]
                if o
                else ["", "", "", ""]
            )
        if lats is not None:
            t = lats[r.phi]
            cells += ["", ""] if t is None else [f"{t.seconds * 1e3:.2f}", f"{t.ratio:.2f}"]
        table.add_row(*cells)
    out.print(table)
    out.print(f"{FLOPS_NOTE}. measured × = FLOPs ÷ base FLOPs.")
    if lats is not None and lats[0] is not None:
        how = lats[0]
        out.print(
            f"latency: {how.mode} (batch {how.batch}) on {how.device}, {how.machine}; median of "
            "runs alternated with φ = 0's; × = the median per-pair ratio."
        )
    past = [f"φ = {r.phi} ({r.limit})" for r in rows if r.limit]
    if past:
        out.print(
            "* past the builder's limits, so never built; counted by the exact cost model: "
            + ", ".join(past)
        )


def build(
    coefficients: Annotated[
        Path, typer.Option(help="Export written by `scaler export` (JSON or YAML).")
    ],
    phi: Annotated[int, typer.Option(help="The family member φ to build (one the export has).")],
    to: Annotated[
        Optional[str],
        typer.Option(help="Print the lines that build it in timm | torchvision | keras | tf."),
    ] = None,
    base: Annotated[
        Optional[str],
        typer.Option(help="Check that the export scales this base (the file states its own)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build member φ of an exported family, here or in another library.

    Without --to: builds it as a PyTorch module (as `scaler.build_member(FILE, φ)` does) and
    prints its network; with --to: the few lines of Python that build the same network there.
    --json prints the member's record as exported (its arguments for every library included).

    Examples:

      scaler build --coefficients coefficients.json --phi 2

      scaler build --coefficients coefficients.json --phi 2 --to timm
    """
    from scaler.exports import check_member, choose_base, load_export
    from scaler.interop import check_target, snippet

    if to is not None:
        check_target(to)
    exp = load_export(coefficients, "--coefficients")
    choose_base(base_option(base), exp)
    if to is not None:
        check_target(to, exp.base)
    m = exp.member(phi)
    if to is not None:
        print(snippet(m, to), end="")
        return
    spec = check_member(exp, m)
    if as_json:
        print_json(m.to_dict())
        return
    _print_member(spec, m)


def _print_member(spec, m) -> None:
    from scaler.complexity import head_label, stem_label
    from scaler.model import build as build_network
    from scaler.model import count_params

    net = build_network(spec, m.num_classes)
    params = count_params(net)
    table = Table(title=f"φ = {m.phi}: {spec.base.label} {spec.describe()}, {spec.layers} blocks")
    for name in ("stage", "operator", "stride", "channels", "layers"):
        table.add_column(name, justify="left" if name == "operator" else "right")
    # Stages numbered as in the paper's Table 1 and `scaler info`: 1 is the stem, 9 the head.
    stem = spec.base.stem
    table.add_row("1", stem_label(spec), str(stem.stride * 2**stem.pool), str(spec.stem), "1")
    for i, (d, s) in enumerate(zip(spec.base.stages, spec.stages, strict=True), start=2):
        table.add_row(
            str(i),
            f"{s.operator}, k{s.kernel}x{s.kernel}",
            str(s.stride),
            str(d.outputs(s.channels)),
            str(s.layers),
        )
    head = str(spec.head or net.classifier.in_features)
    table.add_row(str(len(spec.stages) + 2), head_label(spec), "1", head, "1")
    out.print(table)
    out.print(
        f"built: {params:,} params (export: {m.params:,}) · {m.macs / 1e9:.3f} GMACs · "
        f"input {m.pixels}x{m.pixels} · dropout {m.dropout:g} · drop-path {m.drop_path:g} (·i/N)"
    )
