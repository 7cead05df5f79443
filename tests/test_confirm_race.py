"""A raced confirmation (--seeds auto) on a real tiny search: rounds as trials, the time
budget's stop, resuming where it stopped, and what the summary says."""

from __future__ import annotations

import shutil

import pytest
from test_confirm import tiny

from scaler import confirm as C
from scaler import racing
from scaler import searches as S
from scaler.findings_confirm import sentences
from scaler.records import CONFIRM_ROLE
from scaler.results import trials_frame
from scaler.studies import load_study


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished tiny search without its confirmation (a copy of its file per test)."""
    path = tmp_path_factory.mktemp("race") / "s.db"
    S.run(tiny(confirm=False), study="race", storage=f"sqlite:///{path}")
    return path


def copy(searched, tmp_path) -> str:
    shutil.copy(searched, tmp_path / "r.db")
    return f"sqlite:///{tmp_path / 'r.db'}"


def test_a_race_trains_rounds_stops_on_the_time_budget_and_resumes(searched, tmp_path, monkeypatch):
    # No early stop for indistinguishable networks: the tiny runs would end the race at once.
    monkeypatch.setattr(racing, "FUTILITY", 0.0)
    url = copy(searched, tmp_path)
    cfg = C.ConfirmConfig(top=2, seeds="auto", max_seeds=3)
    asked = []
    p = C.prepare(cfg, "race", url)
    refuse = lambda runs: asked.append(runs) or False  # noqa: E731 (the budget says no)
    C.stage(C.create(p), p.selection, C.trainer_of(p), should_continue=refuse)
    c = C.result(load_study("race", url), url)
    assert c.race is not None and (c.race.reason, c.race.round) == ("time budget", 2), c.race
    assert c.state == "done" and len(asked) == 1
    assert {q.attrs["seed_index"] for q in asked[0]} == {2}  # the next round: seed 2 alone
    assert {q.attrs["confirm_role"] for q in asked[0]} >= {"base"}  # the base races along
    assert any("stopped after round 2: time budget" in x for x in sentences(c))

    # Rerunning (a new command, no budget) continues the race from the stored trials.
    C.work(C.prepare(C.ConfirmConfig(top=2), "race", url))
    study = load_study("race", url)
    c = C.result(study, url)
    assert c.race.reason in (racing.MAX_REACHED, racing.ONE_WINNER), c.race
    frame = trials_frame(study)
    conf = frame[(frame["role"] == CONFIRM_ROLE) & (frame["state"] == "COMPLETE")]
    later = conf[conf["seed_list"].apply(lambda s: s == [2])]
    assert len(later) >= 2  # round 3: seed 2 of the base and of every survivor, one trial each
    rows = {r.trial: r for r in c.rows}
    for _, r in later.iterrows():
        assert rows[int(r["confirm_of"])].runs == 3  # one row per network, its runs merged
    assert all(r.runs == (2 if r.out_after else 3) for r in c.rows)
    again = C.run(C.ConfirmConfig(top=2), "race", url)  # finished: nothing more to train
    assert len(trials_frame(load_study("race", url))) == len(frame)
    assert again.race == c.race
    with pytest.raises(ValueError, match="max_seeds"):
        C.prepare(C.ConfirmConfig(top=2, max_seeds=4), "race", url)


def test_fixed_seeds_still_confirm_without_a_race(searched, tmp_path):
    c = C.run(C.ConfirmConfig(top=1, seeds=2), "race", copy(searched, tmp_path))
    assert c.race is None and c.settings["seeds"] == 2 and "max_seeds" not in c.settings
    assert "race" not in c.to_dict() and "out_after" not in c.to_dict()["candidates"][0]
    assert not any("Racing" in x for x in sentences(c))


def _race_frame(cut: bool):
    """A raced confirmation's trials: networks 1 and 2 and the base 0, rounds of seeds [0, 1],
    [2], then [3] for network 1 alone; the other two runs of that round skipped by --time
    (``cut``) or not yet trained."""
    import pandas as pd

    top1 = {1: [70.0, 72.0, 71.0, 73.0], 2: [71.0, 70.0, 72.0], 0: [69.0, 70.0, 71.0]}
    rows = []

    def add(net, seeds, status="trained", reason=None):
        done = status == "trained"
        values = [top1[net][k] for k in seeds] if done else None
        rows.append(
            {
                "number": len(rows) + 10,
                "role": CONFIRM_ROLE,
                "state": "COMPLETE",
                "status": status,
                "reason": reason,
                "confirm_of": net,
                "seed_list": list(seeds) if done else None,
                "top1_seeds": values,
                "top1_mean": sum(values) / len(values) if done else None,
            }
        )

    for seeds in ([0, 1], [2]):
        for net in (1, 2, 0):
            add(net, seeds)
    add(1, [3])
    if cut:
        add(2, [], "skipped", "time budget")
        add(0, [], "skipped", "time budget")
    return pd.DataFrame(rows)


@pytest.mark.parametrize("cut", [True, False])
def test_a_round_cut_by_the_time_budget_is_reported_as_a_stop(cut, monkeypatch):
    from scaler import budget
    from scaler.findings_confirm import ATTR, race, reported_race

    assert budget.REASON == racing.TIME_BUDGET  # what a skipped run says is what the race reads

    monkeypatch.setattr(racing, "FUTILITY", 0.0)
    points = [
        {"trial": 1, "role": "grid"},
        {"trial": 2, "role": "grid"},
        {"trial": 0, "role": "base"},
    ]
    stored = {"settings": {"seeds": "auto", "max_seeds": 8}, "proxy": {}, "points": points}
    frame, attrs = _race_frame(cut), {ATTR: stored}
    assert race(frame, attrs).running and race(frame, attrs).round == 4  # what trains next
    d = reported_race(frame, attrs)
    if cut:  # the report: stopped after the last whole round, with what its runs resolve
        assert (d.reason, d.round) == (racing.TIME_BUDGET, 3) and d.resolves > 0
    else:  # runs not yet trained (a worker on them): the race is running
        assert d.running and d.round == 4
