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
    base = count(scale(base_resolution=160)).flops
    sol = solve_pixels(depth, width, 2 * base, 160)
    assert abs(sol.error) < 0.05
    # No other size is closer.
    for p in (sol.spec.pixels - 1, sol.spec.pixels + 1):
        other = count(scale(depth, width, base_resolution=160, pixels=p)).flops
        assert abs(other / sol.target - 1) >= abs(sol.error) - 1e-12


def test_solve_reports_unreachable_budget():
    base = count(scale(base_resolution=32)).flops
    sol = solve_pixels(1.0, 1.0, 0.001 * base, 32)
    assert sol.spec.pixels == 8 and sol.error > 0.05
    assert math.isfinite(sol.error)


def test_family_of_resolution_heavy_coefficients_passes_2048_px():
    rows = family(Coefficients(1.0, 1.0, 1.384), phi_max=7)
    assert rows[7].pixels > 2048 and rows[7].measured_cost > rows[6].measured_cost > 1
