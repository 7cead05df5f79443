"""A README report of searches and sweeps: configuration, results, figures and plain findings.

``write_report`` writes ``reports/<name>/README.md`` with, for every study: its configuration,
its results (a search's leaderboard with the noise floor and ties, nominal against measured
cost, the exported coefficients and their family; a sweep's points per series and the points it
skipped), the figures (PNG and SVG beside the README) and ``trials.csv`` (every trial, with the
state and the reason of those without a result).

The findings (:mod:`scaler.findings` and its siblings) are computed from the data, never
written in advance; this module and its parts only lay them out: :mod:`scaler.report_search`
(a search's leaderboard, noise floor, confirmation, costs and coefficients),
:mod:`scaler.report_sweeps` (a sweep's points, a compare sweep's Table 3 layout) and
:mod:`scaler.report_tables` (the Markdown pieces they share).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scaler import __version__
from scaler.files import check_out_dir, write_files
from scaler.findings import findings, states_text
from scaler.plots import describe_setup, figures_for, render
from scaler.proxy import ProxyLength
from scaler.report_search import search_section
from scaler.report_sweeps import sweep_section
from scaler.report_tables import md_table
from scaler.results import StudyData, load_studies
from scaler.scaling import check_phi_max


def _flatten(config: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in config.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            text = value if isinstance(value, str) else json.dumps(_short(value), default=str)
            rows.append((prefix + key, text))
    return rows


def _short(value: Any) -> Any:
    """Floats to 10 significant digits: a step stored as 0.19999999999999996 reads 0.2."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, list):
        return [_short(v) for v in value]
    return value


def _config_section(s: StudyData) -> list[str]:
    lines = [f"Setup: {describe_setup(s.config)}.", ""]
    if s.config.get("proxy_length"):  # a search's, stored since min_steps exists
        lines += [f"Proxy run: {ProxyLength.from_attrs(s.config['proxy_length']).describe()}.", ""]
    if s.config.get("upsample"):  # stored since --upsample exists
        lines += [f"Images smaller than the proxy's input: --upsample {s.config['upsample']}.", ""]
    if s.config:
        lines += [md_table(["setting", "value"], _flatten(s.config)), ""]
    versions = s.attrs.get("versions")
    if versions:
        lines += [
            "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
            "",
        ]
    return lines


def build_markdown(studies: Sequence[StudyData], figures: Sequence[str], phi_max: int = 7) -> str:
    """The README text of a report over ``studies`` linking the figure files ``figures``."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    names = ", ".join(s.name for s in studies)
    lines = [
        f"# Report: {names}",
        "",
        f"Written {now} by scaler {__version__}. FLOPs are fvcore's (one multiply-add = one "
        "flop); top-1 is on the data's held-out split after the proxy run.",
        "",
        md_table(
            ["study", "kind", "storage", "trials", "states"],
            [
                [
                    s.name,
                    s.kind if s.kind != "sweep" else f"sweep ({s.config.get('sweep')})",
                    s.storage,
                    len(s.frame),
                    states_text(s.frame),
                ]
                for s in studies
            ],
        ),
        "",
    ]
    shows, lacks = findings(studies)
    lines += ["## What the data show", ""]
    lines += [f"- {x}" for x in shows] or ["- Nothing yet."]
    lines += ["", "## What the data do not show", ""]
    lines += [f"- {x}" for x in lacks] or ["- (no caveat computed)"]
    lines += [""]
    pngs = [f for f in figures if f.endswith(".png")]
    if pngs:
        lines += ["## Figures", ""]
        for f in pngs:
            svg = f[: -len(".png")] + ".svg"
            lines += [f"![{f}]({f})", "", f"[{svg}]({svg})", ""]
    for s in studies:
        lines += [f"## {s.name} ({s.kind})", "", "### Configuration", ""]
        lines += _config_section(s)
        if s.kind == "search":
            lines += search_section(s, phi_max)
        elif s.kind == "sweep":
            lines += sweep_section(s)
        elif s.frame.empty or s.finished.empty:
            lines += ["No finished trial: nothing to report.", ""]
        else:
            lines += ["Not a scaler search or sweep: only its trials are listed.", ""]
    lines += [
        "## Files",
        "",
        "- `trials.csv`: every trial of every study, with its state, status and the reason of "
        "those without a result (failed, pruned, infeasible, skipped, lost).",
        "- Figures: PNG for reading, SVG for print (text kept as text).",
        "",
    ]
    return "\n".join(lines)


def trials_csv(studies: Sequence[StudyData]) -> bytes:
    """Every trial of every study as CSV (lists as JSON), the study name first."""
    import pandas as pd

    frames = [s.frame for s in studies]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if "study" in frame:
        frame = frame[["study"] + [c for c in frame.columns if c != "study"]]
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, (list, tuple, dict))).any():
            frame[col] = frame[col].map(
                lambda v: json.dumps(v) if isinstance(v, (list, tuple, dict)) else v
            )
    return frame.to_csv(index=False).encode()


def write_report_files(
    study_names: Sequence[str],
    storage: str | None = None,
    out: Path | None = None,
    phi_max: int = 7,
) -> list[Path]:
    """Write the report (see :func:`write_report`); returns every path written, README last."""
    names = list(study_names)
    if not names:
        raise ValueError("no study given: name at least one study")
    check_phi_max(phi_max)
    out = check_out_dir(Path(out) if out is not None else default_out(names))
    studies = load_studies(names, storage)
    files = render(figures_for(studies))
    text = build_markdown(studies, list(files), phi_max)
    files["trials.csv"] = trials_csv(studies)
    files["README.md"] = text.encode()  # last: a README always has its files beside it
    return write_files(out, files)


def write_report(
    study_names: Sequence[str],
    storage: str | None = None,
    out: Path | None = None,
    phi_max: int = 7,
) -> Path:
    """Write ``README.md``, ``trials.csv`` and the figures to ``out`` (default
    reports/<first study>/); returns the README's path. Everything is read and rendered before
    the first file is written, and each file is written atomically."""
    return write_report_files(study_names, storage, out, phi_max)[-1]


def default_out(names: Sequence[str]) -> Path:
    """reports/<first study name>/."""
    return Path("reports") / names[0]


def plot_studies(
    names: Sequence[str], storage: str | None = None, out: Path | None = None
) -> list[Path]:
    """Write the PNG and SVG figures of the studies to ``out`` (default reports/<name>/)."""
    if not names:
        raise ValueError("no study given: name at least one study")
    out = check_out_dir(out or default_out(names))
    return write_files(out, render(figures_for(load_studies(names, storage))))
