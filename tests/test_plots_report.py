"""Figures and reports of searches and sweeps, including awkward studies, and their bad inputs.

Studies are built without training where the test is about reading them: the search and sweep
studies are created with the real study attributes (configuration, kind, versions) and trials
added with optuna's ``create_trial``, with known accuracies so that the report's computed
findings can be checked. One tiny sweep runs end to end through the CLI (one network trained).
"""

from __future__ import annotations

import csv
import io
import json
import math

import optuna
import pytest
from conftest import TINY_ARGS, TINY_PROXY
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from scaler import plots as P
from scaler import report as R
from scaler import searches as S
from scaler import sweeps as W
from scaler.findings_sweeps import baseline_findings
from scaler.results import load_studies
from scaler.studies import versions
from scaler.sweep_config import DIMENSIONS

# One thread: on a shared 2-core machine two spinning threads slow tiny runs down many times.
SEARCH = S.SearchConfig(
    budget=2.0,
    proxy="quick",
    proxy_overrides=TINY_PROXY,
    alpha_range=(1.1, 1.2),
    beta_range=(1.1, 1.1),
    alpha_step=0.1,
    beta_step=0.1,
)
DIST = {"alpha": FloatDistribution(0.5, 2.0), "beta": FloatDistribution(0.5, 2.0)}


def _result(top1: list[float]) -> dict:
    mean = sum(top1) / len(top1)
    std = (sum((x - mean) ** 2 for x in top1) / (len(top1) - 1)) ** 0.5 if len(top1) > 1 else 0
    return {"top1_seeds": top1, "top1_mean": mean, "top1_std": std, "top5_mean": 90.0}


def _point(role, alpha, beta, gamma, cost_pixels, flops, cost_ratio, **extra) -> dict:
    return {
        "role": role,
        "alpha": alpha,
        "beta": beta,
        "gamma": gamma,
        "gamma_nominal": gamma,
        "cost_pixels": cost_pixels,
        "pixels": 16,
        "layers": 16,
        "params": 4_024_201,
        "flops": flops,
        "activations": 50_000,
        "nominal_cost": alpha * beta**2 * gamma**2,
        "cost_ratio": cost_ratio,
        "proxy_cost_ratio": flops / 4_633_536,
        "network_key": f"net-{alpha}-{beta}",
        "wall_time": 1.0,
        **extra,
    }


def make_search(url: str, name: str = "search") -> None:
    """A search study as `scaler search` leaves it, with every kind of trial."""
    from scaler.data import parse_data

    st = optuna.create_study(study_name=name, storage=url, direction="maximize")
    stored = SEARCH.stored()
    stored["data_fingerprint"] = parse_data(SEARCH.data).fingerprint()
    st.set_user_attr("kind", "search")
    st.set_user_attr("config", stored)
    st.set_user_attr("versions", versions())

    def add(state, attrs, value=None):
        params = {"alpha": attrs["alpha"], "beta": attrs["beta"]}
        st.add_trial(
            create_trial(
                state=state, value=value, params=params, distributions=DIST, user_attrs=attrs
            )
        )

    base = _point("base", 1.0, 1.0, 1.0, 224, 4_633_536, 1.0, **_result([49.0, 51.0]))
    add(TrialState.COMPLETE, {**base, "status": "trained"}, 50.0)
    paper = _point("paper", 1.2, 1.1, 1.02, 229, 8_648_736, 2.0003, **_result([60.0]))
    add(TrialState.COMPLETE, {**paper, "status": "trained"}, 60.0)
    twin = _point("grid", 1.1, 1.1, 1.02, 229, 8_648_736, 2.0003, **_result([60.0]))
    twin["network_key"] = paper["network_key"]
    add(TrialState.COMPLETE, {**twin, "status": "reused", "reused_from": 1}, 60.0)
    add(
        TrialState.FAIL,
        {"role": "grid", "alpha": 1.3, "beta": 1.05, "status": "failed",
         "reason": "DivergedError: training diverged (loss nan)"},
    )  # fmt: skip
    pruned = _point("grid", 1.0, 1.2, 1.13, 253, 9_000_000, 1.98)
    add(TrialState.PRUNED, {**pruned, "status": "pruned", "reason": "pruned at epoch 1"})
    bad = _point("grid", 1.4, 1.2, 0.9, 202, 12_000_000, 2.4)
    add(TrialState.PRUNED, {**bad, "status": "infeasible", "reason": "needs γ < 1 (γ = 0.900)"})


def make_sweep(url: str, name: str, cfg: W.SweepConfig, top1) -> None:
    """A sweep study as `scaler sweep` leaves it, every point finished with top1(point)."""
    p = W.prepare(cfg, name, url)
    st = W.create(p)
    for pt in p.points:
        attrs = {**pt.attrs(cfg.kind), **_result([top1(pt)]), "status": "trained"}
        attrs.update(params=1_000_000, activations=1, wall_time=1.0)
        dists = {k: FloatDistribution(0.01, 32.0) for k in ("depth", "width", "resolution")}
        params = {k: getattr(pt, k) for k in dists}
        st.add_trial(
            create_trial(
                state=TrialState.COMPLETE,
                value=attrs["top1_mean"],
                params=params,
                distributions=dists,
                user_attrs=attrs,
            )
        )


SINGLE = W.SweepConfig(
    kind="single",
    dims=DIMENSIONS,
    widths=(1.0, 1.4),  # 9.0 MFLOPs at 16 px
    depths=(1.0, 2.0),  # 10.0 MFLOPs
    resolutions=(1.0, 1.3),  # 7.5 MFLOPs: all within 1.5x of the search's 8.6 MFLOPs
    proxy="quick",
    proxy_overrides=TINY_PROXY,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('studies') / 'all.db'}"
    make_search(url)
    # Single dimensions reach 55 % at about the search's FLOPs: 5 points under its 60 %.
    make_sweep(url, "single", SINGLE, lambda pt: 50.0 if pt.value == 1.0 else 55.0)
    fig1 = W.SweepConfig(kind="width-by-baseline", proxy="quick", proxy_overrides=TINY_PROXY)
    make_sweep(url, "fig1", fig1, lambda pt: 40 + 5 * pt.width + 3 * pt.depth)
    # A sweep whose every point is over the cap: no finished trial.
    W.run(
        W.SweepConfig(kind="single", dims=("width",), widths=(1.0, 2.0), max_flops=1.0,
                      proxy="quick", proxy_overrides=TINY_PROXY),
        study="empty",
        storage=url,
    )  # fmt: skip
    optuna.create_study(study_name="bare", storage=url)  # not a scaler study, no trial
    return url


def _check_files(paths):
    assert paths
    for path in paths:
        data = path.read_bytes()
        assert len(data) > 1000, path
        if path.suffix == ".png":
            assert data.startswith(b"\x89PNG"), path
        else:
            assert b"<svg" in data[:2000], path
    assert not [p for p in paths[0].parent.iterdir() if p.name.endswith(".tmp")]


def test_figure1_has_four_labelled_lines(store):
    figs = P.figures_for(load_studies(["fig1"], store))
    ax = figs["scaling"].axes[0]
    _, labels = ax.get_legend_handles_labels()
    assert labels == ["d=1.0, r=1.0", "d=1.0, r=1.3", "d=2.0, r=1.0", "d=2.0, r=1.3"]
    assert ax.get_xscale() == "log"
    notes = [t.get_text() for t in ax.texts]
    assert "w=2.6" in notes and "base" in notes
    assert "fashion" in ax.get_title() and "quick" in ax.get_title()


def test_plot_search_and_sweeps(store, tmp_path):
    out = tmp_path / "figs"
    paths = R.plot_studies(["search", "single", "fig1"], store, out)
    names = sorted(p.name for p in paths)
    assert names == sorted(
        f"{stem}.{ext}"
        for stem in ("scaling", "search.map", "search.cost", "search.history")
        for ext in ("png", "svg")
    )
    _check_files(paths)
    ax = P.figures_for(load_studies(["search", "single"], store))["scaling"].axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert any(label.startswith("search best α=1.20") for label in labels)
    assert "depth d (w = r = 1)" in labels


def test_error_bars_and_gaps_in_frames():
    import pandas as pd

    rows = [
        dict(state="COMPLETE", series="a", label="a", flops=1e6, top1_mean=50.0, top1_std=1.0,
             seeds=2, value_name="w", point_value=1.0, depth=1.0, width=1.0, resolution=1.0),
        dict(state="COMPLETE", series="a", label="a", flops=2e6, top1_mean=55.0, top1_std=2.0,
             seeds=2, value_name="w", point_value=1.4, depth=1.0, width=1.4, resolution=1.0),
        dict(state="FAIL", series="a", label="a", flops=3e6, top1_mean=None, top1_std=None,
             seeds=None, value_name="w", point_value=1.8, depth=1.0, width=1.8, resolution=1.0),
    ]  # fmt: skip
    fig = P.plot_scaling([pd.DataFrame(rows)], "t")
    ax = fig.axes[0]
    assert ax.get_legend_handles_labels()[1] == ["a"]
    assert len(ax.containers) == 1 and ax.containers[0].has_yerr
    assert [t.get_text() for t in ax.texts] == ["base", "w=1.4"]
    empty = P.plot_scaling([pd.DataFrame(rows[2:])], "t")
    assert "no finished trial" in empty.axes[0].texts[0].get_text()


def test_search_plots_show_every_kind_of_trial(store):
    figs = P.figures_for(load_studies(["search"], store))
    labels = figs["search.map"].axes[0].get_legend_handles_labels()[1]
    assert "infeasible (budget)" in labels and "failed / pruned" in labels
    assert "reused (identical network)" in labels and "best: 60.00 %" in labels
    notes = [t.get_text() for t in figs["search.map"].axes[0].texts]
    assert "γ=1.02 16px" in notes
    hist = figs["search.history"].axes[0].get_legend_handles_labels()[1]
    assert {"running best", "failed (no result)", "infeasible (no result)"} <= set(hist)


def test_studies_without_finished_trials_plot_and_report(store, tmp_path):
    paths = R.plot_studies(["empty", "bare"], store, tmp_path / "p")
    _check_files(paths)
    path = R.write_report(["empty"], store, tmp_path / "r")
    text = path.read_text()
    assert "empty has no finished trial yet (2 skipped)" in text
    assert "No finished trial yet: nothing to show." in text
    assert "exceed --max-flops" in (tmp_path / "r" / "trials.csv").read_text()
    text = R.write_report(["bare"], store, tmp_path / "b").read_text()
    assert "bare has no finished trial yet (no trials)" in text


def test_report_compound_beats_single_dimensions(store, tmp_path):
    path = R.write_report(["search", "single"], store, tmp_path / "rep", phi_max=2)
    assert path == tmp_path / "rep" / "README.md"
    text = path.read_text()
    # σ has 1 df here: the t-test (since 0.6, not 2 standard errors) cannot call 2.5 SE.
    assert "it beat no single dimension beyond the noise" in text
    assert "width: +5.00 points vs width w=1.4" in text and "t = 2.5 with 1 df → tied" in text
    assert "σ = 1.41 points" in text and "### Leaderboard" in text
    assert "### Nominal vs measured cost" in text and "### Exported coefficients" in text
    assert "At the proxy's pixels the trained candidates cost " in text
    assert "| 2 | 1.440 | 1.210 |" in text  # the family φ = 2 row: d = 1.2², w = 1.1²
    assert "![scaling.png](scaling.png)" in text and "[search.map.svg](search.map.svg)" in text
    for name in ("scaling.png", "scaling.svg", "search.map.png", "search.history.svg"):
        assert (tmp_path / "rep" / name).stat().st_size > 1000
    rows = list(csv.DictReader(io.StringIO((tmp_path / "rep" / "trials.csv").read_text())))
    assert {r["study"] for r in rows} == {"search", "single"}
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed[0]["state"] == "FAIL" and "DivergedError" in failed[0]["reason"]
    infeasible = [r for r in rows if r["status"] == "infeasible"][0]
    assert infeasible["state"] == "PRUNED" and "γ < 1" in infeasible["reason"]
    assert json.loads(rows[0]["top1_seeds"]) == [49.0, 51.0]


def test_compound_beats_single_dimensions_with_enough_degrees_of_freedom(store):
    from scaler.findings import _compound_findings, match
    from scaler.results import Noise

    studies = load_studies(["search", "single"], store)
    shows, _ = _compound_findings(studies, Noise(1.41, 20, 10))  # the same σ on 10 df
    assert "it beat every single dimension at equal measured FLOPs" in shows[0]
    assert "t = 2.5 with 10 df → better" in shows[0]
    compound = studies[0].finished.sort_values("top1_mean").iloc[-1]
    singles = studies[1].finished.assign(dim="width")
    (m,) = match(compound, singles, Noise(1.41, 20, 1))
    assert (m.df, m.verdict, m.test.direction) == (1, "tied", "")  # t(1 df) needs 12.7 SE


def test_report_says_what_a_comparison_needs(store, tmp_path):
    text = R.write_report(["search"], store, tmp_path / "s", phi_max=1).read_text()
    assert "needs single-dimension sweeps" in text
    # The base's 2 runs give 1 degree of freedom: too few to say which candidates could be best.
    assert "search: which candidates could be the best is not stated: no usable noise" in text
    # ... nor to test the best against the base: no t on a σ of 1 df (0.5 printed t = 11.0).
    (best,) = [line for line in text.splitlines() if "search: the best candidate is" in line]
    assert "points over the base, untested (no usable noise estimate" in best
    assert "t = " not in best and "p = " not in best
    text = R.write_report(["fig1"], store, tmp_path / "f").read_text()
    assert "needs a search or a compound sweep" in text
    assert "At equal FLOPs, d=2.0, r=1.0 is" in text


@pytest.mark.slow
def test_cli_end_to_end(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    code, out, err = cli(
        "sweep", "single", "--dim", "width", "--widths", "1", "--study", "e", "--storage", url,
        *TINY_ARGS,
    )  # fmt: skip
    assert code == 0, err
    assert "width w (d = r = 1)" in out and "trained" in out
    code, out, err = cli("plot", "e", "--storage", url, "--out", tmp_path / "plots")
    assert code == 0, err
    assert out.count("wrote ") == 2 and (tmp_path / "plots" / "scaling.svg").exists()
    code, out, err = cli("report", "e", "--storage", url, "--out", tmp_path / "rep")
    assert code == 0, err
    assert "README.md" in out and (tmp_path / "rep" / "trials.csv").exists()


@pytest.mark.parametrize("command", ["plot", "report"])
def test_bad_plot_and_report_input(cli, store, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(command, "missing")
    assert code == 2 and err.count("\n") == 1 and "study 'missing' does not exist" in err
    out = tmp_path / "out"
    code, _, err = cli(command, "search", "nope", "--storage", store, "--out", out)
    assert code == 2 and err.count("\n") == 1 and "'nope' does not exist" in err
    assert not out.exists()  # nothing half-written
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    code, _, err = cli(command, "search", "--storage", store, "--out", a_file)
    assert code == 2 and err.count("\n") == 1 and "is a file" in err
    assert a_file.read_text() == "keep me"
    assert not (tmp_path / "reports").exists() and not (tmp_path / "studies").exists()


def test_help_has_examples(cli):
    for cmd in ("plot", "report"):
        code, out, _ = cli(cmd, "--help")
        assert code == 0 and "Examples:" in out


def test_history_ticks_are_whole_trials_and_report_floats_are_short(store):
    from matplotlib.ticker import MaxNLocator

    (search,) = load_studies(["search"], store)
    fig = P.plot_search_history(search.frame)
    locator = fig.axes[0].xaxis.get_major_locator()
    assert isinstance(locator, MaxNLocator) and locator._integer
    assert R._flatten({"alpha_step": 0.19999999999999996, "r": [0.30000000000000004]}) == [
        ("alpha_step", "0.2"),
        ("r", "[0.3]"),
    ]


def _fig1_frame(gap: float, spread: float):
    import pandas as pd

    rows = []
    for series, label, shift, flops in (
        ("a", "d=1.0, r=1.0", 0.0, (10e6, 20e6, 40e6)),
        ("b", "d=2.0, r=1.0", gap, (15e6, 30e6)),
    ):
        for i, f in enumerate(flops):
            mean = 50.0 + 5 * math.log2(f / 10e6) + shift
            # The spread is run noise, not a seed's effect (the pooled model blocks on seed):
            # which seed is high alternates from point to point.
            seeds = [mean - spread, mean + spread][:: 1 if i % 2 else -1]
            rows.append(
                dict(
                    series=series,
                    label=label,
                    flops=f,
                    top1_mean=mean,
                    seeds=2,
                    top1_seeds=seeds,
                    status="trained",
                    role="sweep",
                )
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "gap, spread, verdict",
    [(4.0, 0.5, "holds"), (-4.0, 0.5, "is contradicted"), (0.5, 3.0, "is not shown")],
)
def test_figure1_verdict_is_a_t_test_on_the_sweeps_own_noise(gap, spread, verdict):
    frame = _fig1_frame(gap, spread)
    lines = baseline_findings(frame, frame)
    assert lines[-1].startswith(
        f"The paper's ordering (every deeper or higher-resolution "
        f"baseline above d=1.0, r=1.0 at equal FLOPs) {verdict}"
    )
    assert "df, two-sided p = " in lines[0] and f"{gap:+.2f} points" in lines[0]
