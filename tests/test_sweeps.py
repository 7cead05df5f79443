"""Sweeps: points and labels, dedupe of the shared point, --max-flops, resume, bad inputs.

One real sweep trains two tiny networks once per module; everything else plans points (exact
cost model, no training) or skips every point with a tiny --max-flops.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import TINY_ARGS, TINY_PROXY

from scaler import sweep_config as C
from scaler import sweeps as W
from scaler.sweep_points import num, sweep_points

# One thread: on a shared 2-core machine two spinning threads slow tiny runs down many times.


def tiny(**kw) -> W.SweepConfig:
    base: dict = dict(proxy="quick", proxy_overrides=TINY_PROXY)
    base.update(kw)
    return W.SweepConfig(**base)


# width and resolution share (1, 1, 1); w = 1.4 (9.0 MFLOPs at 16 px) is over the cap and
# r = 1.3 (21 px, 7.5 MFLOPs) under it: two networks are trained.
SWEPT = dict(
    kind="single",
    dims=("width", "resolution"),
    widths=(1.0, 1.4),
    resolutions=(1.0, 1.3),
    max_flops=8e6,
)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('sweep') / 's.db'}"
    events = []
    res = W.run(tiny(**SWEPT), study="single", storage=url, progress=events.append)
    return res, url, events


def test_figure1_points_and_labels():
    points = sweep_points(tiny(kind="width-by-baseline"), num_classes=13, max_pixels=64)
    assert len(points) == 4 * 5
    labels = list(dict.fromkeys(p.label for p in points))
    assert labels == ["d=1.0, r=1.0", "d=1.0, r=1.3", "d=2.0, r=1.0", "d=2.0, r=1.3"]
    for p in points:
        assert p.value_name == "w" and p.value == p.width
        assert f"d={num(p.depth)}, r={num(p.resolution)}" == p.series
        assert p.pixels == (21 if p.resolution == 1.3 else 16)  # round(1.3 × 16 px)
        assert p.skip == ""
    assert sorted({p.width for p in points}) == list(C.FIG1_WIDTHS)


def test_single_and_compound_points(tmp_path):
    pts = sweep_points(tiny(kind="single", dims=C.DIMENSIONS), 13, None)
    by = {d: [p for p in pts if p.series == d] for d in C.DIMENSIONS}
    assert [p.width for p in by["width"]] == list(C.FIG3_WIDTHS)
    assert [p.depth for p in by["depth"]] == list(C.FIG3_DEPTHS)
    assert [p.resolution for p in by["resolution"]] == list(C.FIG3_RESOLUTIONS)
    assert all(p.depth == p.resolution == 1 for p in by["width"])
    # The shared (1, 1, 1) point is one network in every series: trained once, reused.
    assert len({p.network_key for p in pts if p.value == 1.0}) == 1
    coeffs = tmp_path / "c.json"
    coeffs.write_text(json.dumps({"coefficients": {"alpha": 1.2, "beta": 1.1, "gamma": 1.15}}))
    cpts = sweep_points(tiny(kind="compound", coefficients=str(coeffs), phi_max=2), 13, 64)
    assert [p.phi for p in cpts] == [0, 1, 2]
    assert cpts[2].depth == pytest.approx(1.44) and cpts[2].width == pytest.approx(1.21)
    assert cpts[2].pixels == round(1.15**2 * 16)
    assert cpts[0].network_key == by["width"][0].network_key


def test_compound_sweep_stores_its_coefficients(tmp_path):
    coeffs = tmp_path / "c.json"
    coeffs.write_text(json.dumps({"coefficients": {"alpha": 1.2, "beta": 1.1, "gamma": 1.15}}))
    url = f"sqlite:///{tmp_path / 'c.db'}"
    cfg = tiny(kind="compound", coefficients=str(coeffs), phi_max=2, max_flops=1.0)
    res = W.run(cfg, study="fam", storage=url)
    assert list(res.skipped["phi"]) == [0, 1, 2] and res.points.empty
    assert res.config["coefficients"] == {"alpha": 1.2, "beta": 1.1, "gamma": 1.15}
    assert set(res.frame["label"]) == {"compound α=1.2, β=1.1, γ=1.15"}
    # Other coefficients in the same file name are another family: refused on resume.
    coeffs.write_text(json.dumps({"coefficients": {"alpha": 1.3, "beta": 1.1, "gamma": 1.15}}))
    with pytest.raises(ValueError, match=r"coefficients.alpha: 1.2 → 1.3"):
        W.run(cfg, study="fam", storage=url)


def test_max_flops_and_max_pixels_skip():
    pts = sweep_points(tiny(kind="single", dims=("resolution",), resolutions=(1.0, 4.5)), 13, 64)
    assert pts[0].skip == "" and "data serve at most 64 px" in pts[1].skip
    pts = sweep_points(tiny(kind="width-by-baseline", max_flops=10e6), 13, 64)
    kept = [p for p in pts if not p.skip]
    assert kept and all(p.flops <= 10e6 for p in kept)
    assert all("exceed --max-flops" in p.skip for p in pts if p.flops > 10e6)


def test_sweep_trains_dedupes_and_skips(swept):
    res, _, events = swept
    f = res.frame
    assert set(f["series"]) == {"width", "resolution"}
    assert set(f["label"]) == {"width w (d = r = 1)", "resolution r (d = w = 1)"}
    trained = f[f["status"] == "trained"]
    assert sorted(trained["point_value"]) == [1.0, 1.3]  # the base once, r = 1.3
    reused = f[f["status"] == "reused"].iloc[0]
    base = trained[trained["point_value"] == 1.0].iloc[0]
    assert reused["reused_from"] == base["number"] and reused["top1_mean"] == base["top1_mean"]
    skipped = res.skipped
    assert list(skipped["point_value"]) == [1.4] and skipped.iloc[0]["state"] == "PRUNED"
    assert "exceed --max-flops" in skipped.iloc[0]["reason"]
    assert len(res.points) == 3
    for col in ("pixels", "layers", "params", "flops", "activations", "network_key"):
        assert res.points[col].notna().all(), col
    kinds = [e.kind for e in events]
    assert kinds.count("trial_start") == 2 and kinds.count("trial_end") == 2
    assert "epoch" in kinds


def test_rerun_resumes_and_refuses_other_config(swept):
    res, url, _ = swept
    again = W.run(tiny(**SWEPT), study="single", storage=url)
    assert list(again.frame["number"]) == list(res.frame["number"])  # nothing new queued
    with pytest.raises(ValueError, match=r"seeds: 1 → 2"):
        W.run(tiny(**SWEPT, seeds=2), study="single", storage=url)
    with pytest.raises(ValueError, match=r"resolutions"):
        W.run(tiny(**{**SWEPT, "resolutions": (1.0,)}), study="single", storage=url)
    st = W.load_sweep("single", url)
    assert len(st.frame) == len(res.frame)


def test_failed_point_does_not_stop_the_sweep(tmp_path, monkeypatch):
    from scaler import runner

    def fake_train(trial, job, source, settings, emit=None):
        if job.spec.stem != 32:  # the widened network fails, the base trains
            raise RuntimeError("out of memory\n(simulated)")
        for key, value in (("top1_seeds", [42.0]), ("top1_mean", 42.0), ("status", "trained")):
            trial.set_user_attr(key, value)
        return 42.0

    monkeypatch.setattr(runner, "train_point", fake_train)
    url = f"sqlite:///{tmp_path / 'f.db'}"
    cfg = tiny(kind="single", dims=("width",), widths=(1.4, 1.0))
    res = W.run(cfg, study="f", storage=url)
    failed = res.frame[res.frame["status"] == "failed"].iloc[0]
    assert (
        failed["state"] == "FAIL" and failed["reason"] == "RuntimeError: out of memory (simulated)"
    )
    assert list(res.points["point_value"]) == [1.0]
    again = W.run(cfg, study="f", storage=url)  # a failure with a reason is not retried
    assert len(again.frame) == 2


def test_study_attrs(swept):
    from scaler.studies import load_study

    _, url, _ = swept
    st = load_study("single", url)
    assert st.user_attrs["kind"] == "sweep" and st.user_attrs["sweep"] == "single"
    assert st.user_attrs["config"]["dims"] == ["width", "resolution"]
    assert "torch" in st.user_attrs["versions"] and st.user_attrs["max_flops"] == 8e6
    t = st.trials[0]
    for key in ("sweep", "series", "label", "depth", "width", "resolution", "pixels", "layers"):
        assert key in t.user_attrs, key


def test_default_name_and_storage(tmp_path, monkeypatch):
    from scaler.data import parse_data

    monkeypatch.chdir(tmp_path)
    p = W.prepare(tiny(kind="width-by-baseline", max_flops=1))
    assert p.study_name.startswith("sweep-width-by-baseline-fashion-quick-")
    assert len(p.study_name.rsplit("-", 1)[1]) == 6
    assert p.storage_url == f"sqlite:///studies/{p.study_name}.db"
    fp = parse_data("fashion").fingerprint()
    # Threads change speed, not results: same default study.
    assert W.default_study_name(tiny(proxy_overrides=(*TINY_PROXY, ("threads", 2))), fp) == (
        W.default_study_name(tiny(), fp)
    )
    assert "single-width-depth" in W.default_study_name(
        tiny(kind="single", dims=("width", "depth")), fp
    )


def test_cli_sweep_all_skipped_then_higher_cap_is_same_study(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    args = ["sweep", "width-by-baseline", "--widths", "1,1.4", "--baselines", "1:1,2:1.3"]
    args += ["--study", "fig1", "--storage", url, *TINY_ARGS]
    code, out, err = cli(*args, "--max-flops", "1k")
    assert code == 0, err
    assert out.count("exceed --max-flops 1 kFLOPs") == 4 and "next: scaler plot fig1" in out
    res = W.load_sweep("fig1", url)
    assert len(res.skipped) == 4 and res.points.empty
    # The cap is not part of the configuration: another cap resumes the same study.
    code, out, err = cli(*args, "--max-flops", "2k")
    assert code == 0, err
    res = W.load_sweep("fig1", url)
    assert len(res.frame) == 4 and res.frame["reason"].str.contains("2 kFLOPs").all()


@pytest.mark.parametrize(
    "text, value",
    [("50M", 50e6), ("1.2G", 1.2e9), ("3e7", 3e7), ("750k", 750e3), ("40 MFLOPs", 40e6)],
)
def test_parse_flops(text, value):
    assert C.parse_flops(text) == (pytest.approx(value), "proxy")
    assert C.parse_flops(text + "@cost") == (pytest.approx(value), "cost")
    assert C.parse_flops(text + "@proxy") == (pytest.approx(value), "proxy")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["single", "--dim", "height"], "--dim 'height' is unknown"),
        (["single", "--dim", ""], "--dim"),
        (["single", "--dim", "width", "--widths", ""], "--widths '' is invalid"),
        (["single", "--dim", "width", "--widths", "1,x"], "'x' is not a number"),
        (["single", "--dim", "width", "--widths", "1,-2"], "--widths value -2.0"),
        (["single", "--dim", "width", "--depths", "1,2"], "--depths does not apply"),
        (["single", "--dim", "depth", "--depths", "0"], "--depths value 0.0"),
        (["width-by-baseline", "--baselines", "1:1,2"], "--baselines"),
        (["width-by-baseline", "--max-flops", "lots"], "--max-flops"),
        (["width-by-baseline", "--max-flops", "0"], "--max-flops"),
        (["width-by-baseline", "--seeds", "0"], "--seeds"),
        (["width-by-baseline", "--proxy", "huge"], "proxy"),
        (["compound", "--coefficients", "missing.json"], "--coefficients"),
    ],
)
def test_bad_sweep_input(cli, tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("sweep", *args)
    assert code == 2 and err.startswith("Error: ") and err.count("\n") == 1, err
    assert needle in err and "Traceback" not in err
    assert not any(tmp_path.rglob("*.db"))  # no study created


def test_bad_phi_max(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.json").write_text(json.dumps({"coefficients": {"alpha": 1.2, "beta": 1.1,
                                                                  "gamma": 1.15}}))  # fmt: skip
    code, _, err = cli("sweep", "compound", "--coefficients", "c.json", "--phi-max", "-1")
    assert code == 2 and "--phi-max -1" in err and err.count("\n") == 1
    with pytest.raises(ValueError, match="--phi-max"):
        dataclasses.replace(tiny(kind="compound", coefficients="c.json"), phi_max=-1).validate()
    assert not any(tmp_path.rglob("*.db"))


def test_sweep_help_has_examples(cli):
    for cmd in (
        ["sweep"],
        ["sweep", "width-by-baseline"],
        ["sweep", "single"],
        ["sweep", "compound"],
    ):
        code, out, _ = cli(*cmd, "--help")
        assert code == 0 and "Examples:" in out, cmd


def test_runs_of_one_seed_at_threads_1_and_2_are_not_paired():
    import pandas as pd

    from scaler.findings_sweeps import compare_caveats, compare_verdicts
    from scaler.results import StudyData

    def row(series, runs, threads):
        return dict(
            state="COMPLETE",
            status="trained",
            role="sweep",
            series=series,
            label=series,
            cost_flops=1e8,
            flops=1e7,
            top1_mean=sum(runs) / len(runs),
            top1_seeds=runs,
            seed_list=[0, 1],
            threads=threads,
        )

    same = pd.DataFrame([row("compound", [70.0, 72.0], 1), row("width", [60.0, 61.0], 1)])
    (v,) = compare_verdicts(same)
    assert v.n == 2 and v.verdict == "compound higher"
    mixed = pd.DataFrame([row("compound", [70.0, 72.0], 1), row("width", [60.0, 61.0], 2)])
    (v,) = compare_verdicts(mixed)
    assert v.n == 0 and v.verdict.startswith("not tested: no seed pairs")
    assert "nan" not in v.describe()
    study = StudyData("cmp", "sqlite:///c.db", "sweep", {}, {}, mixed)
    assert compare_caveats(study)[0] == (
        "cmp: its runs were made at different CPU thread counts (1, 2): runs of one seed are "
        "not paired across them."
    )
