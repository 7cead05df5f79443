"""The export schema per family member, old exports read once, ``scaler build`` and its bad input.

Whether other libraries build the same network is tests/test_interop.py's job (it needs them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from scaler.exports import family_payload, load_export
from scaler.scaling import PAPER_COEFFICIENTS, Coefficients
from scaler.spec import PRESETS, family_dropout, round_channels

# The example export scaler 0.2 committed (schema 1, coefficients (1.0, 1.2, 1.14)).
EXAMPLE = Path(__file__).resolve().parent / "data" / "export-schema1.json"
# What scaler 0.5 exported for reports/embedded-2x-0.5 (schema 2, the same coefficients).
EXPORT_0_5 = (
    Path(__file__).resolve().parents[1] / "reports" / "embedded-2x-0.5" / "coefficients.json"
)


@pytest.fixture
def official(tmp_path) -> Path:
    path = tmp_path / "official.json"
    path.write_text(json.dumps(family_payload(Coefficients(*PAPER_COEFFICIENTS), 3, 224)))
    return path


def test_members_round_trip_through_json_and_yaml(official, tmp_path):
    data = json.loads(official.read_text())
    as_yaml = tmp_path / "official.yaml"
    as_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    a, b = load_export(official), load_export(as_yaml)
    assert a.members == b.members and a.version == 2
    assert [m.to_dict() for m in a.members] == data["family"]


def test_a_member_states_what_another_library_needs(official):
    m = json.loads(official.read_text())["family"][1]
    assert (m["depth"], m["width"], m["pixels"]) == (1.2, 1.1, 258)
    net = m["network"]
    assert net["stem"] == round_channels(32, 1.1) and net["head"] == round_channels(1280, 1.1)
    assert [s["layers"] for s in net["stages"]] == [2, 3, 3, 4, 4, 5, 2]  # ceil(1.2 × B0's)
    assert net["divisor"] == 8 and net["rounding"]["round_limit"] == 0.9
    assert m["macs"] > 0 and "flops" not in m
    timm = m["build"]["timm"]["kwargs"]
    assert (timm["channel_multiplier"], timm["depth_multiplier"]) == (1.1, 1.2)
    assert timm["pretrained_cfg_overlay"]["input_size"] == [3, 258, 258]
    assert m["build"]["torchvision"]["kwargs"]["last_channel"] == net["head"]
    assert m["build"]["keras"]["kwargs"]["default_size"] == 258
    assert m["build"]["tf"]["flags"]["input_image_size"] == 258


def _reads(monkeypatch) -> list[str]:
    """The files opened from here on: Path.read_text, Path.open and open all call io.open."""
    import builtins
    import io

    seen: list[str] = []
    real = io.open

    def counted(file, *a, **k):
        seen.append(str(file))
        return real(file, *a, **k)

    monkeypatch.setattr(io, "open", counted)
    monkeypatch.setattr(builtins, "open", counted)
    return seen


def test_an_export_of_0_5_is_read_once_and_gives_the_same_family(monkeypatch):
    data = json.loads(EXPORT_0_5.read_text())
    seen = _reads(monkeypatch)
    exp = load_export(EXPORT_0_5)
    assert seen == [str(EXPORT_0_5)]  # 0.5 read it three times
    assert exp.version == 2 and exp.base.name == "efficientnet-b0" and exp.cost_pixels == 224
    assert (exp.coefficients.alpha, exp.coefficients.beta) == (1.0, 1.2)
    assert [m.to_dict() for m in exp.members] == data["family"]
    assert [m.params for m in exp.members] == [
        5288548, 7328862, 10068874, 13677868, 19465868, 27299354, 38413868, 53847610
    ]  # fmt: skip
    assert [m.pixels for m in exp.members] == [224, 256, 293, 334, 382, 437, 499, 570]
    seen.clear()
    old = load_export(EXAMPLE)  # schema 1 of the same coefficients: recomputed, the same family
    assert seen == [str(EXAMPLE)] and old.members == exp.members


def test_family_info_and_build_read_an_export_once(cli, monkeypatch):
    seen = _reads(monkeypatch)
    for args in (["family"], ["info", "--phi", "1"], ["build", "--phi", "1", "--to", "timm"]):
        seen.clear()
        code, _, err = cli(*args, "--coefficients", EXPORT_0_5, "--json")
        assert code == 0, err
        assert seen.count(str(EXPORT_0_5)) == 1, (args, seen)


def test_the_torchvision_head_is_given_where_its_default_differs():
    # torchvision's default head is 4 × round(320·w): equal to round(1280·w) for B0..B7 only.
    for p in PRESETS.values():
        assert 4 * round_channels(320, p.width) == round_channels(1280, p.width)
    m = load_export(EXAMPLE).member(2)
    assert m.width == pytest.approx(1.44)
    assert m.build["torchvision"]["kwargs"]["last_channel"] == m.network.head == 1840
    assert 4 * round_channels(320, m.width) == 1856


def test_dropout_steps_as_the_official_family():
    assert [family_dropout(phi) for phi in range(8)] == [p.dropout for p in PRESETS.values()]
    assert family_dropout(-1) == 0.2 and family_dropout(12) == 0.5
    members = load_export(EXAMPLE).members
    assert [m.dropout for m in members] == [0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5]
    assert {m.drop_path for m in members} == {0.2}


def test_an_old_export_still_loads_and_builds():
    import scaler

    exp = load_export(EXAMPLE)
    old = json.loads(EXAMPLE.read_text())
    assert exp.version == 1 and [m.phi for m in exp.members] == list(range(8))
    assert [m.params for m in exp.members] == [r["params"] for r in old["family"]]
    assert [m.macs for m in exp.members] == [r["flops"] for r in old["family"]]
    model = scaler.build_member(EXAMPLE, 1)
    assert sum(p.numel() for p in model.parameters()) == old["family"][1]["params"]
    assert model.dropout.p == 0.2


def test_build_member_is_the_exported_network(official):
    import scaler

    exp = load_export(official)
    for m in exp.members:
        model = scaler.build_member(official, m.phi)
        assert sum(p.numel() for p in model.parameters()) == m.params
        assert model.spec.key == m.spec().key and model.dropout.p == m.dropout
        blocks = len(model.blocks)
        assert [b.drop_rate for b in model.blocks] == pytest.approx(
            [m.drop_path * i / blocks for i in range(blocks)]
        )
    assert scaler.build_member(official, 0, num_classes=10).classifier.out_features == 10


def test_cli_build_prints_the_network_and_the_lines_for_each_library(cli, official):
    code, out, err = cli("build", "--coefficients", official, "--phi", "2")
    assert code == 0, err
    m = load_export(official).member(2)
    assert f"built: {m.params:,} params (export: {m.params:,})" in out
    code, out, _ = cli("build", "--coefficients", official, "--phi", "2", "--to", "timm")
    assert code == 0 and "_gen_efficientnet(" in out
    assert f"channel_multiplier={m.width!r}" in out and f"input_size=(3, {m.pixels}" in out
    code, out, _ = cli("build", "--coefficients", official, "--phi", "2", "--to", "torchvision")
    assert code == 0 and f"last_channel={m.network.head}" in out
    code, out, _ = cli("build", "--coefficients", official, "--phi", "2", "--json")
    assert code == 0 and json.loads(out) == json.loads(official.read_text())["family"][2]


def _refused(cli, tmp_path, *args) -> str:
    before = sorted(tmp_path.iterdir())
    code, out, err = cli("build", *args)
    assert code == 2 and out == ""
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert sorted(tmp_path.iterdir()) == before  # nothing written
    return err


def test_bad_input_is_one_line(cli, official, tmp_path):
    data = json.loads(official.read_text())
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**data, "scaler_export": 3}))
    err = _refused(cli, tmp_path, "--coefficients", newer, "--phi", "1")
    assert "export schema version 3" in err and "reads versions 1, 2" in err
    err = _refused(cli, tmp_path, "--coefficients", official, "--phi", "4")
    assert "--phi 4 is outside the family exported in" in err and "valid φ are 0..3" in err
    err = _refused(cli, tmp_path, "--coefficients", official, "--phi", "1", "--to", "onnx")
    assert "--to 'onnx' is invalid: valid targets are timm, torchvision, keras, tf" in err
    data["family"][1]["network"]["head"] = 1416  # hand-edited: no longer what α, β, γ give
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    err = _refused(cli, tmp_path, "--coefficients", edited, "--phi", "1")
    assert "does not agree with itself at φ = 1" in err
    _refused(cli, tmp_path, "--coefficients", official, "--phi", "1", "--to", "timm", "--out", "x")


def test_family_and_info_refuse_another_schema_version(cli, official, tmp_path):
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**json.loads(official.read_text()), "scaler_export": 99}))
    for command in ("family", "info"):
        code, _, err = cli(command, "--coefficients", newer)
        assert code == 2 and "export schema version 99" in err
