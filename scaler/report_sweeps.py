"""A sweep's report section: its points per series, or a compare sweep's Table 3 layout."""

from __future__ import annotations

from typing import Any

from scaler.findings_sweeps import (
    BASE_SERIES,
    COMPARE_ORDER,
    compare_verdicts,
    fmt_flops,
    series_of,
)
from scaler.report_tables import (
    int_text,
    md_table,
    millions,
    no_result_lines,
    num,
    status_text,
    top1_text,
)
from scaler.results import StudyData, seeds_of

POINT_HEADERS = (
    "point",
    "d",
    "w",
    "r",
    "px",
    "layers",
    "params (M)",
    "MFLOPs (proxy)",
    "MFLOPs (r × 224 px)",
    "top-1 %",
    "seeds",
    "status",
)


COMPARE_HEADERS = ("network", "d", "w", "r", "px (proxy)", "MFLOPs (cost px)", "× base")
COMPARE_HEADERS += ("MFLOPs (proxy)", "top-1 %", "runs", "compound − it", "paired t (df)", "p")
COMPARE_HEADERS += ("verdict",)


def _compare_lines(s: StudyData) -> list[str]:
    """A compare sweep in the layout of the paper's Table 3, with each paired test."""
    done = s.finished
    if done is None or done.empty:
        return []
    tests = {v.dim: v for v in compare_verdicts(s.frame)}
    by_series = {r["series"]: r for _, r in done.iterrows()}
    base_row = by_series.get(BASE_SERIES)
    rows = []
    for key in (BASE_SERIES, "compound", *COMPARE_ORDER):
        r = by_series.get(key)
        if r is None:
            continue
        v = tests.get(key)
        ratio = (
            float(r["cost_flops"]) / float(base_row["cost_flops"]) if base_row is not None else None
        )
        rows.append(
            [
                r["label"],
                num(r["depth"], ".3g"),
                num(r["width"], ".3g"),
                num(r["resolution"], ".3g"),
                int_text(r["pixels"]),
                millions(r["cost_flops"]),
                num(ratio, ".2f"),
                millions(r["flops"]),
                top1_text(r),
                seeds_of(r),
                f"{v.diff:+.2f}" if v else "",
                f"{v.t:.2f} ({v.df})" if v and v.n >= 2 else "",
                num(v.p, ".3g") if v and v.n >= 2 else "",
                v.verdict if v else "",
            ]
        )
    budget, px = s.config.get("budget"), s.config.get("cost_pixels", 224)
    return [
        "### Compound against one dimension (the paper's Table 3 layout)",
        "",
        f"Every network is solved to {budget:g}× the base's measured FLOPs at r × {px} px; "
        "each trains with the same seeds, so compound − it is the mean of per-seed differences, "
        "tested by a paired t-test (df = pairs − 1). A verdict needs the difference's interval "
        "to exclude 0 at 95 % over the comparisons together (Bonferroni); otherwise it is not "
        "resolved by the noise.",
        "",
        md_table(COMPARE_HEADERS, rows),
        "",
    ]


def sweep_section(s: StudyData) -> list[str]:
    """A sweep's points, one table per series, the FLOPs cap and its trials without a result."""
    if s.config.get("sweep") == "compare":
        return _compare_lines(s) + no_result_lines(s.frame)
    lines = ["### Points", ""]
    done = s.finished
    if done is None or done.empty:
        lines += ["No finished trial yet: nothing to show.", ""]
    else:
        for label, rows in series_of(done):
            table = [_point_row(r) for _, r in rows.sort_values("flops").iterrows()]
            lines += [f"**{label}**", "", md_table(POINT_HEADERS, table), ""]
    cap = s.attrs.get("max_flops")
    if cap:
        where = "r × 224 px" if s.attrs.get("max_flops_at") == "cost" else "the proxy's pixels"
        lines += [f"The last run capped points at {fmt_flops(cap)} at {where} (--max-flops).", ""]
    return lines + no_result_lines(s.frame)


def _point_row(r) -> list[Any]:
    """The table cells of one sweep point."""
    return [
        f"{r['value_name']}={float(r['point_value']):g}",
        num(r["depth"], ".3g"),
        num(r["width"], ".3g"),
        num(r["resolution"], ".3g"),
        int_text(r["pixels"]),
        int_text(r["layers"]),
        millions(r["params"]),
        millions(r["flops"]),
        millions(r.get("cost_flops")),
        top1_text(r),
        seeds_of(r),
        status_text(r),
    ]
