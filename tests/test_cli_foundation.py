"""`scaler info`, `scaler family`, `--version` and their bad inputs."""

import json

import pytest

from scaler import __version__


def test_info_b0(cli):
    code, out, _ = cli("info", "--preset", "b0")
    assert code == 0
    assert "5,288,548" in out and "401.7" in out
    assert "224x224" in out and "7x7" in out and "MBConv6, k5x5" in out


def test_info_json(cli):
    code, out, _ = cli("info", "--depth", "1.2", "--width", "1.1", "--pixels", "64", "--json")
    data = json.loads(out)
    assert code == 0 and data["layers"] == 23 and data["pixels"] == 64
    assert len(data["stages"]) == 9
    assert sum(s["flops"] for s in data["stages"]) == data["flops"]


@pytest.mark.slow
def test_family_json_has_nominal_and_measured(cli):
    code, out, _ = cli(
        "family",
        "--alpha",
        "1.2",
        "--beta",
        "1.1",
        "--gamma",
        "1.15",
        "--phi-max",
        "2",
        "--cost-pixels",
        "64",
        "--json",
        "--compare-official",
    )
    data = json.loads(out)
    assert code == 0 and len(data["rows"]) == 3
    assert data["rows"][1]["nominal_cost"] == pytest.approx(1.92, abs=0.01)
    assert data["rows"][1]["measured_cost"] > 2.5
    assert set(data["official"]) == {f"b{i}" for i in range(8)}


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0 and __version__ in out


def test_help_has_examples(cli):
    for command in ("info", "family"):
        code, out, _ = cli(command, "--help")
        assert code == 0 and "Examples" in out and "scaler " + command in out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["info", "--depth", "0"], "depth"),
        (["info", "--depth", "-1"], "depth"),
        (["info", "--width", "-0.5"], "width"),
        (["info", "--depth", "abc"], "--depth"),
        (["info", "--pixels", "4"], "--pixels 4 px is invalid: it must be between 8 and 2048"),
        (["info", "--pixels", "5000"], "between 8 and 2048"),
        (["info", "--resolution", "9.5"], "--resolution 9.5 is invalid: it gives 2128 px"),
        (["info", "--resolution", "64"], "resolution 64.0 is invalid: it must be <= 32 (for pix"),
        (["info", "--resolution", "0"], "resolution 0"),
        (["info", "--resolution", "2", "--pixels", "64"], "cannot be combined"),
        (["info", "--depth", "32", "--width", "32"], "past the ceiling"),
        (["info", "--preset", "b9"], "b0, b1"),
        (["info", "--preset", "b0", "--depth", "2"], "--preset"),
        (
            ["family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi-max", "-1"],
            "--phi-max",
        ),
        (["family", "--alpha", "x", "--beta", "1.1", "--gamma", "1.15"], "--alpha"),
        (["family", "--alpha", "-1", "--beta", "1.1", "--gamma", "1.15"], "--alpha"),
        (["family", "--beta", "1.1"], "--alpha"),
        (["family", "--coefficients", "/nonexistent.json"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args, needle):
    code, out, err = cli(*args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("Error: ")
    assert needle in err
    assert "Traceback" not in err + out
