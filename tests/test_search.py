"""The search: measured solve, dedupe, resume, refusal, export, bad inputs (tiny settings)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import TINY_PROXY

from scaler import searches as S
from scaler.candidates import realize_candidate
from scaler.exports import load_coefficients
from scaler.search_config import paper_at, parse_tolerance
from scaler.studies import load_study


def tiny(**kw) -> S.SearchConfig:
    base = dict(
        budget=2.0,
        proxy="quick",
        proxy_overrides=TINY_PROXY,
        alpha_range=(1.1, 1.2),
        beta_range=(1.1, 1.1),  # the grid is (1.1, 1.1) and the paper's (1.2, 1.1)
        alpha_step=0.1,
        beta_step=0.1,
        proxy_tolerance=0.6,  # a 16 px proxy's cost is a coarse staircase
        confirm=False,  # the confirmation stage has its own tests (test_confirm.py)
    )
    base.update(kw)
    return S.SearchConfig(**base)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('search') / 's.db'}"
    res = S.run(tiny(), study="tiny", storage=url)
    return res, url


@pytest.mark.slow
@pytest.mark.parametrize("alpha, beta", [(1.0, 1.0), (1.2, 1.1), (1.4, 1.0), (1.0, 1.2)])
def test_measured_solve_lands_within_tolerance(alpha, beta):
    cand = realize_candidate(tiny(), "grid", alpha, beta, num_classes=13, max_pixels=64)
    assert cand.infeasible == ""
    assert abs(cand.cost_ratio / 2.0 - 1) <= 0.05
    assert cand.gamma >= 1.0 and cand.nominal_cost != pytest.approx(cand.cost_ratio, abs=1e-3)


@pytest.mark.slow
def test_impossible_points_are_refused():
    cand = realize_candidate(tiny(), "grid", 1.4, 1.2, num_classes=13, max_pixels=64)
    assert "γ < 1" in cand.infeasible
    strict = realize_candidate(tiny(tolerance=1e-6), "grid", 1.2, 1.1, 13, 64)
    assert "misses the budget" in strict.infeasible


def test_search_trains_base_twice_and_dedupes(searched):
    res, _ = searched
    f = res.frame
    base = f[f["role"] == "base"].iloc[0]
    assert base["status"] == "trained" and base["seeds"] == 2
    # α = 1.1 and 1.2 round to the same layers and channels, and solve to the same pixels.
    cands = f[f["role"].isin(S.CANDIDATE_ROLES)]
    assert sorted(cands["alpha"]) == [1.1, 1.2]
    assert sorted(cands["status"]) == ["reused", "trained"]
    assert cands["network_key"].nunique() == 1
    reused = cands[cands["status"] == "reused"].iloc[0]
    trained = cands[cands["status"] == "trained"].iloc[0]
    assert reused["reused_from"] == trained["number"]
    assert reused["top1_mean"] == trained["top1_mean"]
    assert res.best is not None and res.best["role"] != "base"


def test_rerun_resumes_without_retraining(searched):
    res, url = searched
    again = S.run(tiny(), study="tiny", storage=url)
    assert len(again.frame) == len(res.frame)
    assert list(again.frame["value"]) == list(res.frame["value"])


@pytest.mark.slow
def test_interrupted_run_resumes(tmp_path):
    url = f"sqlite:///{tmp_path / 'i.db'}"
    seen = []

    def stop_at_second_trial(event):
        if event.kind == "trial_start":
            seen.append(event.trial)
            if len(seen) == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        S.run(tiny(), study="int", storage=url, progress=stop_at_second_trial)
    st = load_study("int", url)
    first = {t.number: t.value for t in st.get_trials() if t.state.name == "COMPLETE"}
    assert len(first) == 1 and [t.state.name for t in st.get_trials()].count("FAIL") == 1
    res = S.run(tiny(), study="int", storage=url)
    done = res.frame[res.frame["state"] == "COMPLETE"]
    assert sorted(done["role"]) == ["base", "grid", "paper"]
    for number, value in first.items():  # finished trials are kept, not redone
        assert done.set_index("number").loc[number, "value"] == value
    lost = res.frame[res.frame["state"] == "FAIL"].iloc[0]
    assert lost["status"] == "interrupted"
    # no reason of its own, so no stray "; " before the pointer to the redone trial
    assert re.fullmatch(r"trained again as trial \d+", lost["reason"])


def test_incompatible_resume_is_refused(searched):
    _, url = searched
    before = len(load_study("tiny", url).get_trials())
    with pytest.raises(ValueError, match=r"seeds: 1 → 2"):
        S.run(tiny(seeds=2), study="tiny", storage=url)
    assert len(load_study("tiny", url).get_trials()) == before


@pytest.mark.slow
def test_export_round_trip(searched, tmp_path, cli):
    res, url = searched
    out = tmp_path / "c.json"
    S.export("tiny", url, out)
    data = json.loads(out.read_text())
    coeffs, base = load_coefficients(out)
    best = res.best
    assert coeffs.alpha == pytest.approx(best["alpha"]) and base == 224
    assert [r["phi"] for r in data["family"]] == list(range(8))
    assert data["provenance"]["study"] == "tiny" and "torch" in data["provenance"]["versions"]
    code, text, _ = cli("family", "--coefficients", out, "--phi-max", "2", "--json")
    assert code == 0 and json.loads(text)["rows"][1]["pixels"] == data["at_budget"]["cost_pixels"]
    code, text, _ = cli("info", "--coefficients", out, "--phi", "1", "--json")
    assert code == 0 and json.loads(text)["pixels"] == data["at_budget"]["cost_pixels"]
    yaml_out = tmp_path / "c.yaml"
    S.export("tiny", url, yaml_out)
    assert load_coefficients(yaml_out)[0] == coeffs


def test_studies_lists_state(searched, cli):
    _, url = searched
    code, text, _ = cli("studies", "--storage", url, "--json")
    rows = json.loads(text)
    assert code == 0 and rows[0]["study"] == "tiny" and rows[0]["state"] == "finished"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--budget", "abc"], "budget"),
        (["--budget", "0"], "budget"),
        (["--budget", "-2x"], "budget"),
        (["--alpha-range", "0.9:1.2"], "--alpha-range"),
        (["--beta-range", "1.3:1.1"], "minimum exceeds"),
        (["--alpha-range", "x"], "--alpha-range"),
        (["--sampler", "bayes"], "--sampler"),
        (["--pruner", "x"], "--pruner"),
        (["--proxy", "huge"], "proxy"),
        (["--storage", "redis://localhost/0"], "--storage"),
        (["--data", "nope:x"], "--data"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_search_input(cli, tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("search", *args)
    assert code == 2 and err.startswith("Error: ") and err.count("\n") == 1, err
    assert needle in err and "Traceback" not in err
    assert not any(tmp_path.rglob("*.db"))  # no study created


def test_unreachable_storage_masks_password(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = "postgresql://scaler:hunter2@127.0.0.1:1/nowhere"
    code, out, err = cli("search", "--storage", url, "--proxy", "quick")
    assert code == 2 and err.count("\n") == 1 and "cannot be opened" in err
    assert "hunter2" not in out + err and "***" in err


@pytest.mark.slow
def test_export_bad_inputs(cli, searched, tmp_path, monkeypatch):
    _, url = searched
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("export", "missing")
    assert code == 2 and "does not exist" in err
    assert not Path("studies").exists() or not any(Path("studies").iterdir())
    code, _, err = cli("export", "nope", "--storage", url)
    assert code == 2 and "does not exist" in err
    code, _, err = cli("export", "tiny", "--storage", url, "--out", str(tmp_path))
    assert code == 2 and "directory" in err
    code, _, err = cli("export", "tiny", "--storage", url, "--format", "xml")
    assert code == 2 and "--format" in err


def test_export_without_finished_candidate(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 'e.db'}"
    optuna.create_study(study_name="empty", storage=url)
    with pytest.raises(ValueError, match="no finished candidate"):
        S.export("empty", url, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_python_api_resumes_the_same_study(searched):
    import scaler

    res, url = searched
    again = scaler.search(
        "2x",
        proxy="quick",
        study="tiny",
        storage=url,
        alpha_range=(1.1, 1.2),
        beta_range=(1.1, 1.1),
        alpha_step=0.1,
        beta_step=0.1,
        proxy_tolerance=0.6,
        confirm=False,
        **dict(TINY_PROXY),
    )
    assert list(again.frame["value"]) == list(res.frame["value"])
    assert again.best["number"] == res.best["number"]


@pytest.mark.slow
def test_every_default_candidate_trains_within_the_proxy_tolerance():
    cfg = S.SearchConfig()
    points = [paper_at(cfg.budget), *cfg.grid()]
    cands = [
        realize_candidate(cfg, "grid", a, b, num_classes=13, max_pixels=None) for a, b in points
    ]
    feasible = [c for c in cands if not c.infeasible]
    assert len(feasible) >= len(cands) // 2
    for c in feasible:  # every trained candidate costs the budget at the proxy, within 10 %
        assert abs(c.proxy_cost_ratio / cfg.budget - 1) <= cfg.proxy_limit
    assert any("at the proxy's input size" in c.infeasible for c in cands)  # the rule acts
    loose = S.SearchConfig(proxy_tolerance=0.99)
    loose_cands = [realize_candidate(loose, "grid", a, b, 13, None) for a, b in points]
    assert not any("at the proxy's input size" in c.infeasible for c in loose_cands)


def test_proxy_tolerance_is_validated():
    with pytest.raises(ValueError, match="--proxy-tolerance"):
        S.SearchConfig(proxy_tolerance=0.0).validate()
    with pytest.raises(ValueError, match="--proxy-tolerance 'x'"):
        parse_tolerance("x", "--proxy-tolerance")


def test_quick_smoke_runs_do_not_check_the_proxy_cost():
    assert S.SearchConfig().proxy_limit == 0.10
    assert S.SearchConfig(proxy="quick").proxy_limit is None
    assert S.SearchConfig(proxy="quick", proxy_tolerance=0.2).proxy_limit == 0.2
    quick = S.SearchConfig(proxy="quick")
    cands = [realize_candidate(quick, "grid", a, b, 13, None) for a, b in quick.grid()]
    assert not any("at the proxy's input size" in c.infeasible for c in cands)


@pytest.mark.slow
def test_a_search_without_a_finished_candidate_skips_its_confirmation(tmp_path):
    url = f"sqlite:///{tmp_path / 'none.db'}"
    cfg = tiny(proxy_tolerance=1e-6, confirm=True)  # every candidate misses at the proxy
    res = S.run(cfg, study="none", storage=url)
    cands = res.frame[res.frame["role"].isin(S.CANDIDATE_ROLES)]
    assert (cands["status"] == "infeasible").all() and len(cands)
    assert res.confirmation.chosen is None


def test_config_diff_lets_the_same_data_resume_under_another_name():
    from scaler.studies import config_diff

    old = {"data": "embedded", "data_fingerprint": "b2a698f3af0e8fdd", "seeds": 1}
    renamed = {**old, "data": "embedded:tiles=1"}
    assert config_diff(old, renamed) == []
    other = {**renamed, "data_fingerprint": "b1341a34e30056f4"}
    assert config_diff(old, other) == [
        "data: embedded → embedded:tiles=1",
        "data_fingerprint: b2a698f3af0e8fdd → b1341a34e30056f4",
    ]
    assert config_diff({"data": "a"}, {"data": "b"}) == ["data: a → b"]  # nothing pins it


def _search_study(rows):
    import pandas as pd

    from scaler.results import StudyData

    frame = pd.DataFrame(
        [
            dict(
                number=k,
                state="COMPLETE",
                status="trained",
                role=role,
                alpha=a,
                beta=1.0,
                gamma=1.0,
                cost_ratio=2.0 if role != "base" else 1.0,
                top1_mean=sum(runs) / len(runs),
                top1_std=None,
                top1_seeds=runs,
                seeds=len(runs),
                network_key=f"net{k}",
            )
            for k, (role, a, runs) in enumerate(rows)
        ]
    )
    return StudyData("s", "sqlite:///s.db", "search", {}, {}, frame)


def test_the_search_stage_tests_best_against_base_on_the_studys_pooled_sigma():
    from scaler.findings import _search_findings
    from scaler.results import noise

    # The base's two runs are identical; two other networks have repeated runs: σ is pooled
    # over all three (3 df, the leaderboard's noise line), not the base's σ of 0 on 1 df.
    s = _search_study(
        [
            ("base", 1.0, [70.0, 70.0]),
            ("grid", 1.2, [74.0, 76.0]),
            ("grid", 1.4, [71.0, 73.0]),
        ]
    )
    nz = noise(s.frame)
    assert (round(nz.sigma, 3), nz.dof) == (round((4 / 3) ** 0.5, 3), 3)
    text = _search_findings(s)[0]
    t = 5.0 / (nz.sigma * (2 / 2) ** 0.5)
    assert f"+5.00 points over the base (t = {t:.1f} with 3 df" in text
