"""The confirmation stage: paired runs stored per image, the leaders trained again as trials of
the study, proxy fidelity, P(best), the test-split verdict, the edge warning and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY_PROXY

from scaler import confirm as C
from scaler import findings_confirm as F
from scaler import searches as S
from scaler.records import CONFIRM_ROLE, unpack_bits
from scaler.studies import load_study


def tiny(**kw) -> S.SearchConfig:
    # The quick cap trains the paper's point and the grid point farthest from it.
    base = dict(
        budget=2.0,
        proxy="quick",
        proxy_overrides=TINY_PROXY,
        alpha_range=(1.0, 1.2),
        beta_range=(1.0, 1.1),
        alpha_step=0.2,
        beta_step=0.1,
        confirm_top=2,
    )
    base.update(kw)
    return S.SearchConfig(**base)


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('confirm') / 'c.db'}"
    return S.run(tiny(), study="conf", storage=url), url


def test_confirmation_trials_join_the_study_with_paired_seeds(confirmed):
    res, _ = confirmed
    frame = res.frame
    conf = frame[frame["role"] == CONFIRM_ROLE]
    stored = load_study("conf", confirmed[1]).user_attrs[C.ATTR]
    assert stored["settings"] == {"top": 2, "seeds": 2, "smoke": True, "proxy_preset": "quick"}
    assert stored["proxy"]["images"] == 96  # 1.5 × the search's 64: a quick search's smoke run
    assert len(conf) == len(stored["points"]) >= 3
    assert set(conf["confirm_role"]) >= {"base", "paper"}
    for _, r in conf.iterrows():
        assert r["seed_list"] == [0, 1]  # seed k is the same seed for every network
        assert [unpack_bits(b).size for b in r["val_correct"]] == [650, 650]
        assert len(r["test_top1_seeds"]) == 2 and len(r["test_correct"]) == 2
        bits = np.mean([unpack_bits(b).mean() for b in r["val_correct"]])
        assert 100 * bits == pytest.approx(r["top1_mean"])  # the bits are the top-1
        search = frame.set_index("number").loc[r["confirm_of"]]
        assert search["role"] == r["confirm_role"] and search["pixels"] == r["pixels"]
    # The search's leaderboard and noise never mix the longer proxy in.
    assert not res.board["role"].eq(CONFIRM_ROLE).any()
    single = frame[(frame["role"] != "base") & (frame["seeds"] == 1)]
    assert single["top1_std"].isna().all()  # undefined for one run, not 0


def test_the_summary_reports_fidelity_p_best_and_the_test_split(confirmed):
    res, _ = confirmed
    c = res.confirmation
    assert c.state == "done" and len(c.rows) >= 3
    assert -1 <= c.tau <= 1 or np.isnan(c.tau)  # tiny runs may tie everywhere
    lo, hi = c.tau_interval
    assert np.isnan(lo) or -1 <= lo <= hi <= 1
    cands = [r for r in c.rows if r.role != "base"]
    assert sum(r.p_best for r in cands) == pytest.approx(1.0)
    assert c.noise.dof == sum(r.runs - 1 for r in c.rows)
    assert c.chosen is cands[0] and c.chosen.top1 == max(r.top1 for r in cands)
    t = c.test
    assert t.images == 650 and t.runs == 2
    assert t.chosen_interval[0] <= t.chosen <= t.chosen_interval[1]
    assert t.difference == pytest.approx(t.chosen - t.base)
    text = " ".join(F.sentences(c))
    assert "Kendall τ" in text and "test split" in text and "smoke run" in text


def test_rerun_resumes_without_training(confirmed):
    res, url = confirmed
    again = S.run(tiny(), study="conf", storage=url)
    assert again.frame["value"].fillna(-1).tolist() == res.frame["value"].fillna(-1).tolist()


def test_export_carries_the_statistics(confirmed, tmp_path):
    res, url = confirmed
    out = S.export("conf", url, tmp_path / "c.json")
    stats = json.loads(out.read_text())["statistics"]
    assert stats["chosen_by"] == "confirmation"
    conf = stats["confirmation"]
    assert conf["noise"]["dof"] >= 2 and conf["proxy_fidelity"]["networks"] >= 3
    assert conf["chosen"] == res.confirmation.chosen.trial
    assert conf["test"]["images"] == 650
    assert stats["search_noise"]["dof"] == 1 and stats["possibly_best_trials"] is None


def test_confirm_command_bad_input(confirmed, cli, tmp_path, monkeypatch):
    _, url = confirmed
    monkeypatch.chdir(tmp_path)
    before = load_study("conf", url)
    n, attrs = len(before.get_trials()), dict(before.user_attrs)
    for args, needle in [
        (["missing"], "does not exist"),
        (["conf", "--storage", url, "--top", "0"], "--top 0"),
        (["conf", "--storage", url, "--seeds", "1"], "--seeds 1"),
        (["conf", "--storage", url, "--images", "64"], "--images 64"),
        (["conf", "--storage", url, "--seeds", "3"], "confirmed with other settings"),
    ]:
        code, _, err = cli("confirm", *args)
        assert code == 2 and err.startswith("Error: ") and err.count("\n") == 1, err
        assert needle in err and "Traceback" not in err
    after = load_study("conf", url)
    assert len(after.get_trials()) == n and dict(after.user_attrs) == attrs  # nothing written
    assert not (tmp_path / "studies").exists()


def test_confirm_refuses_a_study_without_a_finished_candidate(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    S.run(tiny(confirm=False, trials=1, tolerance=1e-6), "e", url)  # every candidate infeasible
    code, _, err = cli("confirm", "e", "--storage", url)
    assert code == 2 and "no finished candidate" in err, err
    assert C.ATTR not in load_study("e", url).user_attrs


def test_confirm_alone_runs_and_a_shorter_proxy_is_refused(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    S.run(tiny(confirm=False, trials=1), "a", url)
    code, _, err = cli("confirm", "a", "--storage", url, "--images", "32")
    assert code == 2 and "must train longer" in err
    code, out, err = cli("confirm", "a", "--storage", url, "--top", "1", "--images", "96")
    assert code == 0, err
    assert "Proxy fidelity" in out and "test split" in out
    frame = S.result(load_study("a", url), url).frame
    assert (frame["role"] == CONFIRM_ROLE).sum() == 2  # the paper's point and the base


def test_edge_warning_names_the_option_to_widen():
    row = F.ConfirmedRow(1, 2, "grid", 1.0, 1.2, 1.14, 70.0, 1, 72.0, 1.0, 3)
    cfg = {"budget": 2.0, "alpha_range": [1.0, 1.4], "beta_range": [1.0, 1.2]}
    text = F.edge_warning(row, cfg)
    assert "--beta-range" in text and "--alpha-range" not in text  # α ≥ 1 is a wall above 1x
    assert "α = 1 at its minimum, a wall" in text and "β = 1.2 at its maximum)" in text
    inside = F.ConfirmedRow(1, 2, "grid", 1.2, 1.1, 1.2, 70.0, 1, 72.0, 1.0, 3)
    assert F.edge_warning(inside, cfg) == ""
