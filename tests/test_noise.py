"""scaler noise: the decomposition on synthetic runs, the --networks grammar, bad input, and a
tiny real study that resumes without retraining."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import TINY_ARGS, TINY_PROXY

from scaler import noise as N
from scaler.findings_noise import findings, report_text
from scaler.scoring import VARIANTS


def _synthetic(rng, name, accuracy, training, runs=2000, images=650):
    """Runs whose seed k shifts the network's accuracy by ``training[k]`` (the training part)
    and whose images are then right independently (the evaluation part: binomial)."""
    p = np.clip(accuracy + training, 0.01, 0.99)[:, None]
    val = rng.random((runs, images)) < p
    test = rng.random((runs, images)) < p
    return SimpleNamespace(
        network=name,
        val=tuple(100 * val.mean(axis=1)),
        test=tuple(100 * test.mean(axis=1)),
        pooled=tuple(100 * np.hstack([val, test]).mean(axis=1)),
        val_correct=val,
        test_correct=test,
    )


def test_the_decomposition_recovers_known_training_and_evaluation_variances():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.02, 2000)  # seed k's part both networks share (pairing)
    own = rng.normal(0, 0.02, 2000)
    a = _synthetic(rng, "a", 0.75, shared)
    b = _synthetic(rng, "b", 0.70, shared + own)
    f = findings([a, b])
    na, nb = f.networks
    # training: σ 2 points (4 points²) for a, 2·√2 (8) for b; evaluation: p(1 − p)/650
    assert na.split.training == pytest.approx(4.0, rel=0.1)
    assert nb.split.training == pytest.approx(8.0, rel=0.1)
    for n, p in ((na, 0.75), (nb, 0.70)):
        assert n.split.evaluation == pytest.approx(1e4 * p * (1 - p) / 650, rel=0.1)
        assert n.split.evaluation == pytest.approx(n.binomial, rel=0.1)  # independent images
        assert n.agreement == pytest.approx(n.agreement_independent, abs=0.005)
        assert n.split.df == 1999
    (pair,) = f.pairs
    # the paired difference: the shared part cancels, own's 4 points² remain; evaluation adds
    assert pair.split.training == pytest.approx(4.0, rel=0.15)
    both = 1e4 * (0.75 * 0.25 + 0.7 * 0.3) / 650
    assert pair.split.evaluation == pytest.approx(both, rel=0.1)
    assert pair.evaluation_independent == pytest.approx(both, rel=0.1)  # no image in common
    assert pair.val.diff == pytest.approx(-5.0, abs=0.2) and pair.val.called


def test_the_report_states_the_split_with_its_df():
    rng = np.random.default_rng(1)
    runs = [_synthetic(rng, n, 0.7, rng.normal(0, 0.02, 6), runs=6) for n in ("b0", "b1")]
    for r in runs:
        r.pixels, r.params, r.flops = 48, 4_000_000, 24_000_000
    cfg = N.NoiseConfig(networks=("b0", "b1"))
    proxy = {"seed": 100, "base_pixels": 48, "epochs": 8, "threads": 1}
    res = SimpleNamespace(
        config=cfg, proxy_settings=proxy, data_classes=13, runs=runs, wall_time=60.0
    )
    res.findings = findings(runs)
    text = report_text(res, "scaler noise --networks b0,b1", "Some CPU")
    assert "scaler noise --networks b0,b1" in text and "on Some CPU" in text
    assert "seeds (100..105)" in text and "| b1 − b0 |" in text
    assert "(5 df" in text and "binomial" in text and "## Definitions" in text


@pytest.mark.parametrize(
    "item, label, pixels",
    [
        ("b0", "b0", 48),
        ("B2", "b2", 56),  # 260/224 of the 48 px base
        ("d=1.0:w=1.2:px=56", "d=1:w=1.2:px=56", 56),
        ("w=1.2:d=1", "d=1:w=1.2:r=1", 48),
        ("d=1.2:r=1.25", "d=1.2:w=1:r=1.25", 60),
    ],
)
def test_network_grammar(item, label, pixels):
    got, spec = N.parse_network(item, 48)
    assert got == label and spec.pixels == pixels


@pytest.mark.parametrize(
    "args, words",
    [
        (["--networks", "b0,b1", "--seeds", "3"], "--seeds 3 is invalid"),
        (["--networks", "b0,b9"], "'b9' is invalid"),
        (["--networks", "b0,d=1:w"], "'w' is not KEY=NUMBER"),
        (["--networks", "d=1:q=2"], "'q=2' is not KEY=NUMBER"),
        (["--networks", "d=1:w=x"], "w='x' is not a number"),
        (["--networks", "d=1:d=2"], "d is given twice"),
        (["--networks", "d=1:px=56:r=1.2"], "px or r, not both"),
        (["--networks", "d=1:px=56.5"], "whole number"),
        (["--networks", "d=-1"], "depth"),
        (["--networks", "b0,d=1:w=1:px=48"], "same network as b0"),
        (["--networks", ","], "--networks is empty"),
        (
            [
                "--networks",
                "b0,b2",
                "--base-pixels",
                "90",
                "--upsample",
                "off",
                "--data",
                "embedded",
            ],
            "the images are 96 px (--upsample off); use --upsample bilinear",
        ),
        (["--networks", "b0,b1", "--upsample", "nearest"], "--upsample 'nearest' is invalid"),
        (["--seeds", "6"], "--networks"),
    ],
)
def test_bad_input_is_one_line_and_creates_nothing(cli, tmp_path, args, words):
    out = tmp_path / "noise"
    url = f"sqlite:///{tmp_path / 'n.db'}"
    code, _, stderr = cli("noise", *args, "--out", out, "--storage", url)
    assert code == 2, stderr
    assert words in stderr and len(stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


TINY = N.NoiseConfig(networks=("b0", "d=1:w=1.2:px=19"), proxy="quick", proxy_overrides=TINY_PROXY)


@pytest.mark.slow
def test_a_tiny_noise_study_resumes_without_retraining(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'n.db'}"
    started = []

    def stop_at_eighth_run(event):
        if event.kind == "trial_start":
            started.append((event.info["member"], event.info["seed_index"]))
            if len(started) == 8:
                raise KeyboardInterrupt  # Ctrl-C as the second network's second run starts

    with pytest.raises(KeyboardInterrupt):
        N.run(TINY, "n", url, progress=stop_at_eighth_run)
    seen = []
    res = N.noise(TINY, lambda m, k, t: seen.append((m, k)), study="n", storage=url)
    assert seen == [("d=1:w=1.2:px=19", k) for k in range(1, 6)]  # 7 runs were kept
    assert [r.seeds for r in res.runs] == [tuple(range(6))] * 2
    assert [r.pixels for r in res.runs] == [16, 19]
    assert len(res.findings.pairs) == 1 and res.findings.networks[0].split.df == 5
    # the command on the finished study trains nothing and writes the report
    args = ["noise", "--networks", "b0,d=1:w=1.2:px=19", *TINY_ARGS, "--storage", url]
    code, stdout, stderr = cli(*args, "--study", "n", "--out", tmp_path / "o")
    assert code == 0, stderr
    assert "trial 1/" not in stderr and "Noise" in stdout and "study n in" in stdout
    rows = (tmp_path / "o" / "runs.csv").read_text().splitlines()
    assert rows[0] == "network,seed,val_top1,test_top1,pooled_top1,pixels,params,flops,seconds"
    assert len(rows) == 1 + 12 and rows[7].startswith("d=1:w=1.2:px=19,0,")
    assert "scaler noise --networks" in (tmp_path / "o" / "README.md").read_text()
    code, again, _ = cli(*args, "--study", "n", "--json")
    assert code == 0 and json.loads(again)["runs"][0]["val"] == list(res.runs[0].val)


@pytest.mark.slow
def test_methods_score_the_same_runs_every_way(tmp_path):
    cfg = dataclasses.replace(TINY, methods=True)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    res = N.noise(cfg, study="m", storage=url)
    assert [m.method for m in res.methods] == list(VARIANTS)
    last = res.methods[0]
    assert [r.val for r in last.runs] == [r.val for r in res.runs]  # "last" is the plain score
    assert all(len(m.extra_time) == 12 for m in res.methods)
    text = report_text(res)
    assert "## Scoring methods, on the same runs" in text and "| swa+flip |" in text
    files = N.write_report(res, tmp_path / "o")
    rows = (tmp_path / "o" / "methods.csv").read_text().splitlines()
    assert len(files) == 3 and len(rows) == 1 + 6 * 12
    # without --methods it is another study: the plain one is not resumed as if it had them
    assert N.default_study_name(cfg, "f") != N.default_study_name(TINY, "f")
