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
        confirm_max_seeds=2,  # a race of one round, as 2 fixed seeds (tests/test_confirm_race.py)
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
    assert stored["settings"] == {
        "top": 2,
        "seeds": "auto",  # raced by default
        "max_seeds": 2,
        "smoke": True,
        "proxy_preset": "quick",
    }
    assert stored["proxy"]["images"] == 96  # 1.5 × the search's 64: a quick search's smoke run
    assert len(conf) == len(stored["points"]) >= 3
    assert set(conf["confirm_role"]) >= {"base", "paper"}
    for _, r in conf.iterrows():
        assert r["seed_list"] == [0, 1]  # seed k is the same seed for every network
        # the default data: 150 val images a class, 10 classes
        assert [unpack_bits(b).size for b in r["val_correct"]] == [1500, 1500]
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
    assert t.images == 1500 and t.runs == 2
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
    assert conf["test"]["images"] == 1500
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
        (["conf", "--storage", url, "--seeds", "many"], "--seeds 'many'"),
        (["conf", "--storage", url, "--seeds", "2", "--max-seeds", "3"], "--max-seeds 3"),
        (["conf", "--storage", url, "--max-seeds", "1"], "--max-seeds 1"),
        (["conf", "--storage", url, "--max-seeds", "4"], "confirmed with other settings"),
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


# The committed reports/embedded-2x-0.5 confirmation (2 paired seeds per network), as a frame.
EMBEDDED = (  # search #, role, α, β, search top-1, val top-1 per seed, test top-1 per seed
    (4, "grid", 1.0, 1.2, 78.46, [80.154, 81.692], [80.308, 74.0]),
    (3, "grid", 1.4, 1.0, 73.69, [80.462, 74.154], [82.308, 72.0]),
    (9, "grid", 1.4, 1.1, 69.54, [73.846, 80.462], [75.692, 79.077]),
    (0, "base", 1.0, 1.0, 74.08, [77.846, 75.385], [79.231, 82.462]),
    (1, "paper", 1.2, 1.1, 68.46, [78.769, 73.385], [78.0, 71.077]),
)


def embedded_frame():
    import pandas as pd

    rows = []
    for k, (trial, role, a, b, search, val, test) in enumerate(EMBEDDED):
        common = dict(state="COMPLETE", alpha=a, beta=b, gamma=1.0, seed_list=[0, 1])
        rows.append(dict(common, number=trial, role=role, top1_mean=search, seeds=1))
        rows.append(
            dict(
                common,
                number=10 + k,
                role=CONFIRM_ROLE,
                confirm_of=trial,
                top1_mean=float(np.mean(val)),
                top1_std=float(np.std(val, ddof=1)),
                seeds=2,
                top1_seeds=val,
                test_top1_seeds=test,
            )
        )
    attrs = {"confirm": {"settings": {"seeds": 2}, "proxy": {}, "points": list(EMBEDDED)}}
    return pd.DataFrame(rows), attrs


def test_the_test_split_verdict_is_a_t_interval_on_the_pooled_test_sigma():
    frame, attrs = embedded_frame()
    t = F.summarize(frame, attrs, {}).test
    # σ pooled over the 5 networks' 2 test runs each: 4.65 on 5 df (a 2-seed bootstrap of the
    # crops gave -10.92 to +3.08)
    assert (round(t.sigma, 2), t.dof) == (4.65, 5)
    assert t.difference == pytest.approx(-3.69, abs=0.01)
    lo, hi = t.difference_interval
    assert (round(lo, 1), round(hi, 1)) == (-15.6, 8.3)
    assert t.t == pytest.approx(t.difference / (t.sigma * np.sqrt(2 / 2)))
    assert t.verdict == "not distinguishable from the base at 95 %"
    text = F._test_sentence(F.summarize(frame, attrs, {}))
    assert "(-15.64 to +8.25; t = -0.79, 5 df, on σ = 4.65 points pooled" in text


def test_p_best_comes_from_the_runs_not_the_val_images():
    frame, attrs = embedded_frame()
    c = F.summarize(frame, attrs, {})
    probs = {r.trial: r.p_best for r in c.rows if r.role != "base"}
    assert probs[4] == pytest.approx(0.70, abs=0.02)  # the image bootstrap said 0.80
    assert sum(probs.values()) == pytest.approx(1.0)
    assert "t posterior with the pooled σ" in " ".join(F.sentences(c))


def test_fidelity_states_its_exact_permutation_p_and_no_95_interval_over_2_seeds():
    frame, attrs = embedded_frame()
    c = F.summarize(frame, attrs, {})
    assert c.tau == pytest.approx(0.6)
    assert c.tau_p == pytest.approx(14 / 120)  # orders of 5 with τ ≥ 0.6: 1 + 4 + 9
    text = F._fidelity_sentence(c)
    assert "95 %" not in text and "exact one-sided permutation p = 0.12" in text
    assert c.to_dict()["proxy_fidelity"]["p"] == pytest.approx(14 / 120)


def test_an_unresolved_choice_is_said_in_one_note_with_its_numbers():
    frame, attrs = embedded_frame()
    c = F.summarize(frame, attrs, {})
    assert (
        "Not resolved: 4 of 4 confirmed candidates are possibly best at 95 % (σ = 3.48 points, "
        "5 df); the coefficients are the highest mean's, (1.0, 1.2), not a resolved choice."
    ) in c.to_dict()["notes"]
    # one clear winner: resolved, no note
    frame.loc[frame["number"] == 10, "top1_mean"] = 99.0
    assert not any("Not resolved" in n for n in F.summarize(frame, attrs, {}).notes)


def test_confirmation_runs_at_different_thread_counts_are_not_paired():
    frame, attrs = embedded_frame()
    conf = frame[frame["role"] == CONFIRM_ROLE]
    rows = [r for _, r in conf.iterrows()]
    for r, bits in zip(rows, (["4:Dw==", "4:Dw=="],) * len(rows), strict=True):
        r["val_correct"] = bits
    assert F.stage_array(rows) is not None  # threads not stored (before 0.6): paired as before
    rows[0]["threads"], rows[1]["threads"] = 1, 2
    assert F.stage_array(rows[:2]) is None  # seed 0 at 1 thread and at 2: no pair
    frame["threads"] = [1 if n != 10 else 2 for n in frame["number"]]
    notes = F.summarize(frame, attrs, {}).notes
    assert (
        "The confirmation's runs were made at different CPU thread counts (1, 2): runs of one "
        "seed are not paired across them."
    ) in notes
