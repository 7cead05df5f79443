"""Does scoring with BatchNorm folded into the convolutions change a run's answers?

Trains B0 on 0.7's default proxy and data (seeds 0 and 1) and scores its EMA weights with flip
TTA on val and test twice: as trained, and folded (``scaler.evaluation.folded``).

  python reports/noise-fashion/fold_check.py
"""

from __future__ import annotations

from unittest import mock

import torch

from scaler.data import DEFAULT_UPSAMPLE, parse_data
from scaler.proxy import resolve_proxy
from scaler.spec import scale
from scaler.train import train


def main() -> None:
    proxy = resolve_proxy("standard", {})
    source = parse_data("fashion", upsample=DEFAULT_UPSAMPLE)
    spec = scale(base_pixels=proxy.base_pixels)
    for seed in (0, 1):
        folded = train(spec, source, proxy, seed=seed, test=True)
        with mock.patch("scaler.scoring.folded", lambda model: model):
            plain = train(spec, source, proxy, seed=seed, test=True)
        assert plain.loss_curve == folded.loss_curve  # the same training
        pairs = {
            "val": (
                (plain.top1, plain.val_correct, plain.val_loss),
                (folded.top1, folded.val_correct, folded.val_loss),
            ),
            "test": (
                (plain.test.top1, plain.test.correct, plain.test.loss),
                (folded.test.top1, folded.test.correct, folded.test.loss),
            ),
        }
        for split, ((top1, hits, loss), (top1_f, hits_f, loss_f)) in pairs.items():
            moved = int(torch.ne(hits, hits_f).sum())
            print(
                f"seed {seed} {split}: top-1 {top1:.2f} as trained, {top1_f:.2f} folded; "
                f"{moved} of {len(hits)} images hit or missed differently; "
                f"loss {loss:.5f} against {loss_f:.5f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
