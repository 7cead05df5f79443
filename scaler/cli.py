"""The ``scaler`` command line: thin typer commands over the library.

Every command calls one library function and formats its result (rich tables, or JSON with
``--json``). Bad input raises ``ValueError`` in the library; :func:`main` turns it, and click's
own usage errors, into one line on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from scaler import __version__

app = typer.Typer(
    name="scaler",
    help="Compound model scaling (EfficientNet): build, count, search, plot, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
# Piped output keeps full-width tables instead of rich's 80-column fallback.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


class UserError(ValueError):
    """Bad input found by the CLI layer itself."""


def _version(value: bool) -> None:
    if value:
        print(f"scaler {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """Compound model scaling (Tan & Le, EfficientNet, 2019): build, count, search, export."""


def _print_json(payload: object) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=_jsonable) + "\n")


def _jsonable(value: object):
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _m(flops: float) -> str:
    return f"{flops / 1e6:,.1f}"


# --------------------------------------------------------------------------------------------
# info / family
# --------------------------------------------------------------------------------------------


def _spec_from_options(preset, depth, width, resolution, base_resolution, coefficients, phi):
    from scaler import spec as S
    from scaler.scaling import load_coefficients

    given = [x is not None for x in (depth, width, resolution)]
    if coefficients is not None:
        if preset is not None or any(given):
            raise UserError("--coefficients cannot be combined with --preset/--depth/--width")
        coeffs, base = load_coefficients(coefficients)
        return coeffs.spec(phi, base_resolution or base)
    if preset is not None:
        if any(given):
            raise UserError("--preset cannot be combined with --depth/--width/--resolution")
        return S.preset(preset, base_resolution or S.B0_RESOLUTION)
    base = S.B0_RESOLUTION if base_resolution is None else base_resolution
    return S.scale(
        1.0 if depth is None else depth,
        1.0 if width is None else width,
        base_resolution=base,
        pixels=base if resolution is None else resolution,
    )


@app.command()
def info(
    preset: Annotated[Optional[str], typer.Option(help="Official member b0..b7.")] = None,
    depth: Annotated[Optional[float], typer.Option(help="Depth multiplier d (> 0).")] = None,
    width: Annotated[Optional[float], typer.Option(help="Width multiplier w (> 0).")] = None,
    resolution: Annotated[
        Optional[int],
        typer.Option(help="Input size in pixels (8..2048); default: the base."),
    ] = None,
    base_resolution: Annotated[
        Optional[int],
        typer.Option(help="Pixels of the unscaled network (default 224)."),
    ] = None,
    coefficients: Annotated[
        Optional[Path],
        typer.Option(help="Coefficients file written by `scaler export`."),
    ] = None,
    phi: Annotated[float, typer.Option(help="φ to apply to --coefficients.")] = 1.0,
    classes: Annotated[int, typer.Option(help="Classifier outputs (>= 1).")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the per-stage table of a scaled network (the paper's Table 1) with its cost.

    FLOPs are fvcore's: one multiply-add counts as one flop.

    Examples:

      scaler info --preset b0

      scaler info --depth 1.2 --width 1.1 --resolution 258

      scaler info --coefficients coefficients.json --phi 3 --json
    """
    from scaler.complexity import breakdown, count

    spec = _spec_from_options(preset, depth, width, resolution, base_resolution, coefficients, phi)
    if classes < 1:
        raise UserError(f"--classes {classes} is invalid: it must be >= 1")
    rows = breakdown(spec, classes)
    total = count(spec, classes)
    if as_json:
        _print_json(
            {
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
        )
        return
    table = Table(title=f"EfficientNet {spec.describe()}, {spec.layers} blocks")
    for name in ("stage", "operator", "resolution", "channels", "layers"):
        table.add_column(name, justify="left" if name == "operator" else "right")
    for name in ("params", "MFLOPs*", "activations"):
        table.add_column(name, justify="right")
    for r in rows:
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
    table.add_row(
        "total",
        "",
        "",
        "",
        str(spec.layers),
        f"{total.params:,}",
        _m(total.flops),
        f"{total.activations:,}",
    )
    out.print(table)
    out.print(
        f"params {total.params / 1e6:.2f} M · FLOPs {total.gflops:.3f} G* · "
        f"activations {total.activations / 1e6:.2f} M"
    )
    out.print("* fvcore: one multiply-add = one flop; silu, sigmoid, mul and add are not counted.")


@app.command()
def family(
    alpha: Annotated[Optional[float], typer.Option(help="Depth coefficient α (> 0).")] = None,
    beta: Annotated[Optional[float], typer.Option(help="Width coefficient β (> 0).")] = None,
    gamma: Annotated[Optional[float], typer.Option(help="Resolution coefficient γ (> 0).")] = None,
    coefficients: Annotated[
        Optional[Path],
        typer.Option(help="Coefficients file written by `scaler export`."),
    ] = None,
    phi_max: Annotated[int, typer.Option(help="Largest φ (0..12).")] = 7,
    base_resolution: Annotated[
        Optional[int],
        typer.Option(help="Pixels of the unscaled network (default 224)."),
    ] = None,
    compare_official: Annotated[
        bool, typer.Option(help="Show the official B1..B7 next to each φ.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the family φ = 0..N of compound coefficients: nominal and measured cost.

    Nominal cost is (α·β²·γ²)^φ; measured cost is fvcore FLOPs ÷ the base's, for the real,
    rounded network. The paper's (1.2, 1.1, 1.15) at φ = 1 is nominally 1.92× but measures
    about 2.55× at 224 px, because ceil rounding turns 16 blocks into 23.

    Examples:

      scaler family --alpha 1.2 --beta 1.1 --gamma 1.15 --phi-max 7

      scaler family --coefficients coefficients.json --compare-official --json
    """
    from scaler import scaling
    from scaler.spec import B0_RESOLUTION, check_pixels

    if coefficients is not None:
        if any(v is not None for v in (alpha, beta, gamma)):
            raise UserError("--coefficients cannot be combined with --alpha/--beta/--gamma")
        coeffs, base = scaling.load_coefficients(coefficients)
    else:
        missing = [n for n, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)) if v is None]
        if missing:
            raise UserError(
                f"--{missing[0]} is missing: give --alpha, --beta and --gamma, "
                "or --coefficients FILE"
            )
        for name, value in (("--alpha", alpha), ("--beta", beta), ("--gamma", gamma)):
            if not (value > 0 and value < 100):
                raise UserError(f"{name} {value} is invalid: it must be a number in (0, 100)")
        coeffs, base = scaling.Coefficients(alpha, beta, gamma), B0_RESOLUTION
    if not 0 <= phi_max <= 12:
        raise UserError(f"--phi-max {phi_max} is invalid: it must be an integer in 0..12")
    base = check_pixels(base_resolution or base, "--base-resolution")
    rows = scaling.family(coeffs, phi_max, base)
    official = scaling.official_family(base) if compare_official else {}
    if as_json:
        payload = {
            "coefficients": dataclasses.asdict(coeffs),
            "base_resolution": base,
            "flops_unit": "fvcore: one multiply-add = one flop",
            "rows": rows,
        }
        if compare_official:
            payload["official"] = official
        _print_json(payload)
        return
    table = Table(
        title=f"Family of α={coeffs.alpha:.4g}, β={coeffs.beta:.4g}, γ={coeffs.gamma:.4g} "
        f"(α·β²·γ² = {coeffs.product:.3f}), base {base} px"
    )
    cols = [
        "φ",
        "d",
        "w",
        "r",
        "pixels",
        "layers",
        "params (M)",
        "GFLOPs*",
        "nominal ×",
        "measured ×",
    ]
    if compare_official:
        cols += ["official", "off. pixels", "off. params (M)", "off. measured ×"]
    for c in cols:
        table.add_column(c, justify="right")
    for r in rows:
        cells = [
            str(r.phi),
            f"{r.depth:.3f}",
            f"{r.width:.3f}",
            f"{r.resolution:.3f}",
            str(r.pixels),
            str(r.layers),
            f"{r.params / 1e6:.2f}",
            f"{r.flops / 1e9:.3f}",
            f"{r.nominal_cost:.2f}",
            f"{r.measured_cost:.2f}",
        ]
        if compare_official:
            o = official.get(f"b{r.phi}")
            cells += (
                [
                    f"B{r.phi}",
                    str(o.pixels),
                    f"{o.params / 1e6:.2f}",
                    f"{o.measured_cost:.2f}",
                ]
                if o
                else ["", "", "", ""]
            )
        table.add_row(*cells)
    out.print(table)
    out.print("* fvcore: one multiply-add = one flop. measured × = FLOPs ÷ base FLOPs.")


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------


def _error(message: str) -> None:
    sys.stderr.write("Error: " + " ".join(str(message).split()) + "\n")


def _is_usage_error(e: BaseException) -> bool:
    # click's UsageError family; typer >= 0.2x vendors click, so match by name, not by import.
    return any(c.__name__ == "UsageError" for c in type(e).__mro__) and hasattr(e, "format_message")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args or ["--help"], prog_name="scaler", standalone_mode=False)
    except KeyboardInterrupt:
        err.print("Interrupted.")
        return 130
    except ValueError as e:
        _error(str(e))
        return 2
    except Exception as e:
        if _is_usage_error(e):
            _error(e.format_message())
            return 2
        if type(e).__name__ == "Abort":
            err.print("Interrupted.")
            return 130
        raise
    return result if isinstance(result, int) else 0
