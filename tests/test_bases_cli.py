"""``--base`` through the commands: bad stage tables exit 2 in one line, every base's family and
measured solve, a search that stores and reports its base, and the compare sweep (Tables 3, 7)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import mean, stdev

import pytest
import yaml
from conftest import TINY_ARGS, TINY_DATA

from scaler.bases import BASES, RESNET18, get_base
from scaler.scaling import base_flops, solve_dimension, solve_pixels

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "small-hybrid.yaml"


def _write_table(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    edit(data)
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d["stages"][0].pop("channels"), "stages[0].channels is missing"),
        (lambda d: d["stages"][1].update(repeats=-2), "stages[1].repeats -2 is invalid"),
        (
            lambda d: d["stages"][2].update(stride=4),
            "stages[2].stride 4 is invalid: it must be 1 or 2",
        ),
        (lambda d: d["stages"][0].update(block="dense"), "stages[0].block 'dense' is unknown"),
        (lambda d: d["head"].update(activation="gelu"), "head.activation 'gelu' is unknown"),
        (lambda d: d["stem"].update(kernel=-3), "stem.kernel -3 is invalid"),
        (lambda d: d.pop("stages"), "stages is missing"),
        (lambda d: d.update(extra=1), "extra is unknown: valid fields are name"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        ("info",),
        ("family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15"),
        ("search", "--proxy", "quick"),
        ("sweep", "compare", "--budget", "2x"),
    ],
)
def test_bad_stage_tables_exit_2_in_one_line(cli, tmp_path, monkeypatch, edit, needle, command):
    monkeypatch.chdir(tmp_path)
    path = _write_table(tmp_path, edit)
    code, out, err = cli(*command, "--base", path)
    assert code == 2, (out, err)
    assert err.startswith("Error: --base ") and err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err and not any(tmp_path.rglob("*.db"))  # nothing written


def test_unknown_base_and_a_preset_of_another_base(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("info", "--base", "vgg16")
    assert code == 2 and "--base 'vgg16' is unknown: valid bases are efficientnet-b0" in err
    code, _, err = cli("info", "--base", "resnet50", "--preset", "b1")
    assert code == 2 and "--preset b1 is an EfficientNet member" in err
    code, _, err = cli("train", "--base", "nope.yaml", *TINY_ARGS)
    assert code == 2 and "does not exist" in err


@pytest.mark.parametrize("name", list(BASES))
def test_info_json_gives_the_base_and_its_pinned_counts(cli, name):
    from test_bases import FVCORE_FLOPS, TORCHVISION_PARAMS

    code, out, err = cli("info", "--base", name, "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["params"] == TORCHVISION_PARAMS[name]
    assert payload["flops"] == FVCORE_FLOPS[name]
    assert payload.get("base", "efficientnet-b0") == name  # B0's payload is as before bases


@pytest.mark.parametrize("name", [*BASES, str(EXAMPLE)])
def test_family_and_measured_solve_for_every_base(cli, name):
    base = get_base(name)
    code, out, err = cli(
        "family", "--base", name, "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--json"
    )
    assert code == 0, err
    rows = json.loads(out)["rows"]
    unscaled = base_flops(base.pixels, 1000, base)
    assert rows[0]["flops"] == unscaled and rows[0]["measured_cost"] == 1.0
    assert all(b["flops"] > a["flops"] for a, b in zip(rows, rows[1:], strict=False))
    for budget in (2.0, 4.0):
        sol = solve_pixels(1.2, 1.1, budget * unscaled, base.pixels, base=base)
        assert abs(sol.error) < 0.05 and sol.spec.base == base
        for dim in ("depth", "width", "resolution"):
            value, flops = solve_dimension(dim, budget * unscaled, base.pixels, base=base)
            assert value > 1 and abs(flops / (budget * unscaled) - 1) < 0.08, (dim, value, flops)


def test_search_stores_and_reports_its_base_and_exports_it(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--base", "mobilenetv2", "--budget", "2x", "--trials", "1", "--no-confirm"]
    args += ["--data", TINY_DATA]
    code, out, err = cli("search", *args, *TINY_ARGS, "--study", "mb", "--proxy-tolerance", "0.5")
    assert code == 0, err
    from scaler.studies import load_study, stored_config

    config = stored_config(load_study("mb", "sqlite:///studies/mb.db"))
    assert config["base"] == "mobilenetv2" and "base_table" not in config
    code, _, err = cli("report", "mb", "--storage", "sqlite:///studies/mb.db", "--out", "r")
    assert code == 0, err
    text = (tmp_path / "r" / "README.md").read_text()
    assert "Setup: mobilenetv2 · embedded" in text and "| base | mobilenetv2 |" in text
    code, _, err = cli("export", "mb", "--storage", "sqlite:///studies/mb.db", "--out", "e.json")
    assert code == 0, err
    exported = json.loads((tmp_path / "e.json").read_text())
    assert exported["base"] == "mobilenetv2" and "build" not in exported["family"][1]
    code, out, err = cli("build", "--coefficients", "e.json", "--phi", "1")
    assert code == 0 and "MobileNetV2" in out, err
    code, _, err = cli("build", "--coefficients", "e.json", "--phi", "1", "--to", "timm")
    assert code == 2 and "builds EfficientNet families only" in err
    code, _, err = cli("export", "mb", "--storage", "sqlite:///studies/mb.db", "--base", "resnet50")
    assert code == 2 and "--base resnet50 does not match" in err
    # The same study name with another base is refused, not mixed in.
    code, _, err = cli("search", *args, *TINY_ARGS, "--study", "mb", "--base", "resnet18")
    assert code == 2 and "different configuration" in err and "base" in err


# ----------------------------------------------------------------------------------------------
# the compare sweep
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """A tiny compare sweep of ResNet-18 at 2×, two paired seeds, on the small embedded set."""
    from scaler.cli import main

    folder = tmp_path_factory.mktemp("compare")
    url = f"sqlite:///{folder / 'c.db'}"
    args = ["sweep", "compare", "--base", "resnet18", "--budget", "2x", "--seeds", "2"]
    args += ["--data", TINY_DATA]
    code = main([*args, *TINY_ARGS, "--study", "cmp", "--storage", url])
    assert code == 0
    return url, folder


def test_compare_points_sit_at_equal_measured_flops(compared):
    from scaler.sweeps import load_sweep

    res = load_sweep("cmp", compared[0])
    done = res.points.set_index("series")
    assert list(done.index) == ["base", "compound", "depth", "width", "resolution"]
    assert res.config["base"] == "resnet18" and res.config["budget"] == 2.0
    cost = done["cost_flops"].astype(float)
    assert (cost.drop("base") / cost["base"]).between(1.9, 2.1).all()
    # One dimension each; the compound is the paper's (1.2, 1.1) at φ = 1 with γ solved.
    assert done.loc["depth", ["width", "resolution"]].tolist() == [1.0, 1.0]
    assert done.loc["compound", ["depth", "width"]].tolist() == [1.2, 1.1]
    assert all(len(s) == 2 for s in done["top1_seeds"])


def test_compare_verdicts_are_paired_t_tests(compared):
    from scaler.findings_sweeps import compare_verdicts
    from scaler.stats import two_sided_p
    from scaler.sweeps import load_sweep

    res = load_sweep("cmp", compared[0])
    rows = res.points.set_index("series")
    versus = compare_verdicts(res.frame)
    assert [v.dim for v in versus] == ["depth", "width", "resolution"]
    mine = dict(
        zip(rows.loc["compound", "seed_list"], rows.loc["compound", "top1_seeds"], strict=True)
    )
    for v in versus:
        theirs = dict(zip(rows.loc[v.dim, "seed_list"], rows.loc[v.dim, "top1_seeds"], strict=True))
        diffs = [mine[s] - theirs[s] for s in mine]
        assert v.n == 2 and v.df == 1 and v.diff == pytest.approx(mean(diffs))
        if stdev(diffs) > 0:
            t = mean(diffs) / (stdev(diffs) / math.sqrt(2))
            assert v.t == pytest.approx(t) and v.p == pytest.approx(two_sided_p(t, 1))
        assert v.verdict in ("compound higher", "compound lower", "not resolved by the noise")


def test_compare_report_has_the_table_3_layout(compared, cli):
    url, folder = compared
    code, out, err = cli("report", "cmp", "--storage", url, "--out", folder / "r")
    assert code == 0, err
    text = (folder / "r" / "README.md").read_text()
    assert "### Compound against one dimension (the paper's Table 3 layout)" in text
    assert "| depth only (d=" in text and "paired t (df)" in text
    assert text.count("cmp (resnet18 at 2×): compound vs ") == 3
    assert (folder / "r" / "cmp.compare.png").is_file()


def test_verdict_logic_on_made_up_runs():
    import pandas as pd

    from scaler.findings_sweeps import compare_verdicts

    def row(series, tops):
        return {
            "series": series,
            "label": series,
            "state": "COMPLETE",
            "role": "sweep",
            "top1_mean": mean(tops),
            "top1_seeds": tops,
            "seed_list": list(range(len(tops))),
            "cost_flops": 2e8,
        }

    frame = pd.DataFrame(
        [
            row("compound", [50.0, 52.0, 51.0, 53.0]),
            row("depth", [40.0, 42.1, 40.9, 43.0]),  # 10 points lower on every seed
            row("width", [51.0, 50.0, 52.0, 52.5]),  # mixed signs
        ]
    )
    depth, width = compare_verdicts(frame)
    assert depth.verdict == "compound higher" and depth.df == 3 and depth.p < 1e-4
    assert width.verdict == "not resolved by the noise" and width.level == pytest.approx(0.975)
    one = compare_verdicts(pd.DataFrame([row("compound", [50.0]), row("depth", [40.0])]))[0]
    assert one.n == 1 and one.verdict.startswith("not tested")


def test_compare_needs_a_budget_and_valid_compound(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("sweep", "compare", "--budget", "1x")
    assert code == 2 and "budget" in err
    code, _, err = cli("sweep", "compare", "--budget", "4x", "--compound", "1.4")
    assert code == 2 and "--compound '1.4' is invalid: give D:W" in err
    assert RESNET18.name == "resnet18" and not any(tmp_path.rglob("*.db"))
