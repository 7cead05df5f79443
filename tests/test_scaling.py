"""Budgets, coefficients, the family table and the measured-FLOPs solve."""

import math

import pytest

from scaler.complexity import count
from scaler.scaling import Coefficients, budget_phi, family, parse_budget, solve_pixels
from scaler.spec import scale


@pytest.mark.parametrize(
    "text, value", [("2x", 2.0), ("2", 2.0), ("4x", 4.0), ("0.5x", 0.5), (" 3X ", 3.0)]
)
def test_parse_budget(text, value):
    assert parse_budget(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "abc", "2y", "inf", "nan", "", "-2x", "1x"])
def test_parse_budget_rejects(text):
    with pytest.raises(ValueError, match="budget"):
        parse_budget(text)


def test_phi():
    assert budget_phi(2) == pytest.approx(1)
    assert budget_phi(4) == pytest.approx(2)
    assert budget_phi(0.5) == pytest.approx(-1)


def test_family_shows_the_rounding_gap():
    rows = family(Coefficients(1.2, 1.1, 1.15), phi_max=1)
    assert rows[0].measured_cost == pytest.approx(1.0)
    assert rows[1].nominal_cost == pytest.approx(1.92, abs=0.005)
    assert rows[1].measured_cost == pytest.approx(2.56, abs=0.02)
    assert rows[1].layers == 23 and rows[0].layers == 16


def test_coefficients_from_multipliers_round_trip():
    c = Coefficients.from_multipliers(1.44, 1.21, 1.3225, phi=2)
    assert (c.alpha, c.beta, c.gamma) == pytest.approx((1.2, 1.1, 1.15))
    with pytest.raises(ValueError):
        Coefficients(0, 1, 1)


@pytest.mark.slow
@pytest.mark.parametrize("depth, width", [(1.0, 1.0), (1.0, 1.2), (1.4, 1.0)])
def test_solve_lands_near_budget(depth, width):
    # 160 px keeps the test quick; the staircase of FLOPs against pixels is mild there.
    base = count(scale(base_pixels=160)).flops
    sol = solve_pixels(depth, width, 2 * base, 160)
    assert abs(sol.error) < 0.05
    # No other size is closer.
    for p in (sol.spec.pixels - 1, sol.spec.pixels + 1):
        other = count(scale(depth, width, base_pixels=160, pixels=p)).flops
        assert abs(other / sol.target - 1) >= abs(sol.error) - 1e-12


def test_solve_reports_unreachable_budget():
    base = count(scale(base_pixels=32)).flops
    sol = solve_pixels(1.0, 1.0, 0.001 * base, 32)
    assert sol.spec.pixels == 8 and sol.error > 0.05
    assert math.isfinite(sol.error)


def test_family_of_resolution_heavy_coefficients_passes_2048_px():
    rows = family(Coefficients(1.0, 1.0, 1.384), phi_max=7)
    assert rows[7].pixels > 2048 and rows[7].measured_cost > rows[6].measured_cost > 1
    assert [r.limit for r in rows[:7]] == [""] * 7 and rows[6].buildable
    assert rows[7].limit == f"{rows[7].pixels} px > 2048 px" and not rows[7].buildable


# ---- families from the exact cost model: limits, ceilings, speed -----------------------------


def _no_build(monkeypatch):
    import scaler.model

    def refuse(*args, **kwargs):
        raise AssertionError("a family table must not build networks")

    monkeypatch.setattr(scaler.model, "build", refuse)


def test_family_builds_nothing_and_matches_the_builder(monkeypatch):
    from scaler.complexity import param_count
    from scaler.model import build, count_params

    expected = count_params(build(Coefficients(1.2, 1.1, 1.15).spec(2)))
    b0_flops = count(scale()).flops  # fvcore traces a built network: before building is banned
    _no_build(monkeypatch)
    rows = family(Coefficients(1.2, 1.1, 1.15), phi_max=12)
    assert rows[2].params == expected == param_count(Coefficients(1.2, 1.1, 1.15).spec(2))
    assert [r.phi for r in rows] == list(range(13)) and all(r.buildable for r in rows)
    assert rows[0].flops == b0_flops and rows[0].params == 5_288_548


def test_family_rows_past_every_builder_limit_are_marked_and_serializable(monkeypatch):
    import dataclasses
    import json

    _no_build(monkeypatch)
    rows = family(Coefficients(2.0, 1.0, 1.0), phi_max=7)  # depth 2^φ: past 32 at φ = 6
    assert [r.limit for r in rows[:6]] == [""] * 6
    assert rows[6].limit == "depth 64 > 32" and rows[7].limit == "depth 128 > 32"
    assert rows[7].layers == 128 * 16 and rows[7].params > rows[6].params > 0
    assert rows[7].flops > rows[6].flops
    wide = family(Coefficients(1.0, 1.8, 1.2), phi_max=6)[6]  # w = 34, 672 px
    assert wide.limit == "width 34.01 > 32" and wide.pixels == 669
    tiny = family(Coefficients(1.0, 1.0, 0.5), phi_max=5)[5]  # 224 / 32 = 7 px
    assert tiny.limit == "7 px < 8 px" and tiny.flops > 0
    data = json.loads(json.dumps([dataclasses.asdict(r) for r in rows]))
    assert data[7]["limit"] == "depth 128 > 32" and data[0]["limit"] == ""


def test_realize_equals_scale_wherever_scale_accepts():
    from scaler.scaling import builder_limit, cost_spec, member

    for coeffs in [(1.2, 1.1, 1.15), (1.0, 1.0, 1.384), (1.9, 1.3, 0.9), (0.7, 0.8, 1.05)]:
        c = Coefficients(*coeffs)
        for phi in range(9):
            spec, limit = member(c, phi, 224)
            if not limit:
                assert spec == c.spec(phi)
                assert builder_limit(spec) == ""
    assert cost_spec(1.2, 1.1, 1.0, 96) == scale(1.2, 1.1, 1.0, base_pixels=96)


def test_the_builder_multiplier_limit_is_the_specs():
    from scaler.spec import MAX_MULTIPLIER as MAX_BUILD_MULTIPLIER

    scale(MAX_BUILD_MULTIPLIER, MAX_BUILD_MULTIPLIER, pixels=8)
    for kwargs in (
        {"depth": MAX_BUILD_MULTIPLIER * 1.001},
        {"width": MAX_BUILD_MULTIPLIER * 1.001},
    ):
        with pytest.raises(ValueError):
            scale(pixels=8, **kwargs)


def test_family_past_the_flops_ceiling_is_one_line_and_fast(monkeypatch):
    import time

    _no_build(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(ValueError) as err:
        family(Coefficients(3, 3, 3), phi_max=12)
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("--phi-max 12 is invalid for α=3, β=3, γ=3: φ = 3 already has ")
    assert "FLOPs, past the ceiling of 1e15; use --phi-max 2 or less" in message
    assert len(family(Coefficients(3, 3, 3), phi_max=2)) == 3  # the advice holds


def test_family_past_the_parameter_ceiling_names_the_largest_phi(monkeypatch):
    from scaler.scaling import MAX_FAMILY_PARAMS

    _no_build(monkeypatch)
    c = Coefficients(2, 2, 1)  # params grow about 8x per φ, FLOPs stay under their ceiling
    with pytest.raises(
        ValueError, match=r"^--phi-max 9 is invalid for α=2, β=2, γ=1: φ = 6 "
    ) as err:
        family(c, phi_max=9)
    assert "parameters, past the ceiling of 1e12; use --phi-max 5 or less" in str(err.value)
    rows = family(c, phi_max=5)
    assert rows[5].params <= MAX_FAMILY_PARAMS and rows[5].limit == ""  # d = w = 32: buildable


def _export(tmp_path, alpha, beta, gamma):
    import json

    path = tmp_path / "coefficients.json"
    path.write_text(json.dumps({"coefficients": {"alpha": alpha, "beta": beta, "gamma": gamma}}))
    return path


def test_member_spec_past_the_builders_pixels_names_phi(tmp_path):
    from scaler.exports import member_spec

    path = _export(tmp_path, 1.0, 1.0, 1.384)
    assert member_spec(path, phi=6).pixels == 1574
    with pytest.raises(ValueError) as err:
        member_spec(path, phi=7)
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        "--phi 7 gives a network past the builder's limit (2179 px > 2048 px): "
        f"`scaler family --coefficients {path} --phi-max 7` shows its cost"
    )
    with pytest.raises(ValueError, match=r"^--phi 7.5 gives a network past .*px\)$"):
        member_spec(path, phi=7.5)  # no family row to point at


def test_member_spec_past_the_builders_depth_and_overflow(tmp_path):
    from scaler.exports import member_spec

    with pytest.raises(ValueError, match=r"^--phi 6 gives a network past the builder's limit "):
        member_spec(_export(tmp_path, 2.0, 1.0, 1.0), phi=6)
    with pytest.raises(ValueError, match=r"^--phi 1e\+06 is invalid: .* overflows$"):
        member_spec(_export(tmp_path, 2.0, 1.0, 1.0), phi=1e6)


def test_report_marks_family_rows_past_the_builders_limit():
    # the report's family table (its other tables are pinned in test_plots_report.py).
    from scaler.report_search import family_table as _family_table

    lines = _family_table(Coefficients(1.0, 1.0, 1.384), 7, 224)
    rows = lines[0].splitlines()
    assert "| 1574 |" in rows[8] and "| 2179* |" in rows[9]
    assert lines[2] == (
        "\\* Past the builder's limit, so never built: parameters and FLOPs are exact, from the "
        "Spec alone. φ = 7 (2179 px > 2048 px)."
    )
    assert _family_table(Coefficients(1.2, 1.1, 1.15), 3, 224)[1:] == [""]  # nothing to mark
