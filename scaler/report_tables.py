"""The report's Markdown pieces every study kind shares: number cells, tables, trial lists."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from scaler.findings import top1_text as top1_text
from scaler.results import confirmed, finished, isnan


def num(x: Any, fmt: str = ".3f", empty: str = "") -> str:
    return empty if isnan(x) else format(float(x), fmt)


def millions(x: Any, fmt: str = ".2f") -> str:
    """A count in millions ("" when missing)."""
    return "" if isnan(x) else format(float(x) / 1e6, fmt)


def int_text(x: Any) -> str:
    return "" if isnan(x) else str(int(x))


def cell(x: Any) -> str:
    text = "" if x is None else str(x)
    return text.replace("|", "\\|").replace("\n", " ")


_NUMBER = re.compile(r"^[-+]?[0-9][0-9.,]*( ± [0-9.]+)?$")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; columns whose cells are all numbers are right-aligned."""
    head = "| " + " | ".join(cell(h) for h in headers) + " |"
    numeric = [
        all(_NUMBER.match(cell(r[i])) for r in rows if cell(r[i])) and any(cell(r[i]) for r in rows)
        for i in range(len(headers))
    ]
    rule = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    body = ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def status_text(row) -> str:
    """A row's status, naming the trial a reused result was copied from."""
    return row["status"] + (
        f" from #{int(row['reused_from'])}" if row["status"] == "reused" else ""
    )


def no_result_lines(frame) -> list[str]:
    done = finished(frame).index.union(confirmed(frame).index)
    rest = frame[~frame.index.isin(done)]
    if rest.empty:
        return []
    rows = [
        [r["number"], r["state"], r["status"], r.get("series") or r.get("role") or "", r["reason"]]
        for _, r in rest.iterrows()
    ]
    return [
        "Trials without a result:",
        "",
        md_table(["#", "state", "status", "point", "reason"], rows),
        "",
    ]
