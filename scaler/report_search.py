"""A search's report section: leaderboard, noise floor, confirmation, costs, coefficients."""

from __future__ import annotations

import math

from scaler.base_check import ATTR, BaseCheck
from scaler.bases import EFFICIENTNET_B0, from_config
from scaler.data.rates import small_class_warnings, stored_rates
from scaler.findings import ranked
from scaler.findings_confirm import sentences, summarize
from scaler.findings_pooled import coefficients_note, search_surface
from scaler.records import CANDIDATE_ROLES, METRIC_NAMES
from scaler.report_tables import (
    int_text,
    md_table,
    millions,
    no_result_lines,
    num,
    status_text,
    top1_text,
)
from scaler.results import Noise, StudyData, seeds_of, set_cell

BOARD_HEADERS = (
    "#",
    "role",
    "α",
    "β",
    "γ",
    "px (proxy/cost)",
    "top-1 %",
    "balanced %",
    "top-1 − majority",
    "seeds",
    "",
    "params (M)",
    "MFLOPs (proxy)",
    "status",
)
COST_HEADERS = ("#", "α", "β", "γ", "nominal ×", "measured ×", "proxy ×")
FAMILY_HEADERS = (
    "φ",
    "d",
    "w",
    "r",
    "pixels",
    "layers",
    "params (M)",
    "GFLOPs",
    "nominal ×",
    "measured ×",
)


def _family_rows(rows) -> list[list[str]]:
    """Family rows as table cells; a ``*`` on the pixels of members past the builder's limit."""
    return [
        [
            r.phi,
            f"{r.depth:.3f}",
            f"{r.width:.3f}",
            f"{r.resolution:.3f}",
            f"{r.pixels}*" if r.limit else r.pixels,
            r.layers,
            f"{r.params / 1e6:.2f}",
            f"{r.flops / 1e9:.3f}",
            f"{r.nominal_cost:.2f}",
            f"{r.measured_cost:.2f}",
        ]
        for r in rows
    ]


def family_table(coeffs, phi_max: int, base_res: int, net=EFFICIENTNET_B0) -> list[str]:
    """The family φ = 0..phi_max (members past the builder's limit too, marked and footnoted)."""
    from scaler.scaling import family

    rows = family(coeffs, phi_max, base_res, base=net)
    lines = [md_table(FAMILY_HEADERS, _family_rows(rows)), ""]
    past = [f"φ = {r.phi} ({r.limit})" for r in rows if r.limit]
    if past:
        lines += [
            "\\* Past the builder's limit, so never built: parameters and FLOPs are exact, "
            f"from the Spec alone. {'; '.join(past)}.",
            "",
        ]
    return lines


def search_section(s: StudyData, phi_max: int) -> list[str]:
    """A search's leaderboard, noise floor, costs and coefficients, and its trials without one."""
    metric = s.config.get("metric", "top1")
    nz, board = ranked(s.frame, metric)
    rates = stored_rates(s.attrs, s.config)
    lines = _leaderboard_lines(board, nz.usable, rates.get("val"))
    lines += rates_lines(rates, metric) + base_check_lines(s) + _noise_lines(nz) + time_lines(s)
    cands = board[board["role"].isin(CANDIDATE_ROLES)] if not board.empty else board
    conf = summarize(s.frame, s.attrs, s.config)
    lines += _surface_lines(s, conf)
    lines += _confirmation_lines(conf)
    if not cands.empty:
        lines += _cost_lines(s, cands)
        chosen = cands[cands["best"]].iloc[0]
        if conf.chosen is not None:
            chosen = s.frame.set_index("number", drop=False).loc[conf.chosen.trial]
        lines += _coefficients_lines(s, chosen, phi_max)
    return lines + no_result_lines(s.frame)


def _surface_lines(s: StudyData, conf) -> list[str]:
    """The response surface over the search's candidates: the fitted optimum and its region
    beside the best observed point (drawn on the search map), and which coefficients are
    exported."""
    surface = search_surface(s.frame, s.config)
    text = surface.describe()
    text = text[0].upper() + text[1:]
    if surface.fit is not None:
        chosen_by = "confirmation" if conf.chosen is not None else "search"
        text += (
            " The surface pools every candidate's runs, so its optimum rests on all of them, "
            "where the best observed point rests on its own runs. " + coefficients_note(chosen_by)
        )
    return ["### Response surface", "", text, ""]


CONFIRM_HEADERS = ("search #", "role", "α", "β", "γ", "search top-1 %", "confirm top-1 %")
CONFIRM_HEADERS += ("runs", "P(best)", "95 % set", "test top-1 %")


def _confirmation_lines(c) -> list[str]:
    """The confirmation stage: its table and its sentences."""
    lines = ["### Confirmation", ""]
    if c.rows:
        rows = [
            [
                r.trial,
                r.role,
                num(r.alpha),
                num(r.beta),
                num(r.gamma),
                f"{r.search_top1:.2f}",
                f"{r.top1:.2f}" + (f" ± {r.std:.2f}" if r.std is not None else ""),
                r.runs,
                "" if r.p_best is None else f"{r.p_best:.2f}",
                f"out after round {r.out_after}"
                if r.out_after
                else ("" if r.possibly_best is None else ("possibly" if r.possibly_best else "")),
                "" if r.test_top1 is None else f"{r.test_top1:.2f}",
            ]
            for r in c.rows
        ]
        settings = c.proxy_settings
        images = settings.get("images")
        run = f"{images} images" if images else f"{settings.get('epochs')} epochs"
        seeds = c.settings.get("seeds")
        if seeds == "auto":
            seeds = f"raced (--seeds auto, at most {c.settings.get('max_seeds')})"
        lines += [
            f"Settings: top {c.settings.get('top')}, {seeds} paired seeds, "
            f"{run} per run ({c.state}). Top-1 on val; the test split is reported, never "
            "used to choose.",
            "",
            md_table(CONFIRM_HEADERS, rows),
            "",
        ]
    return lines + [f"- {x}" for x in sentences(c)] + [""]


def rates_lines(rates: dict, metric: str) -> list[str]:
    """What ranks the board, chance and the majority-class rate beside top-1, and the classes
    with too few held-out images (:data:`scaler.data.rates.MIN_CLASS_IMAGES`)."""
    by = METRIC_NAMES[metric] + (" (mean per-class recall)" if metric == "balanced" else "")
    lines = [f"Ranked by {by} on val (--metric {metric})."]
    if not rates:
        lines.append(
            "Chance and the majority-class rate: unknown (not stored on this study, and its "
            "data do not load here with the same fingerprint)."
        )
    lines += [f"{r.describe()}." for r in rates.values()]
    warning = small_class_warnings(rates)
    if warning:
        lines.append(warning[0].upper() + warning[1:] + ".")
    return [" ".join(lines), ""]


def base_check_lines(s: StudyData) -> list[str]:
    """The base check's outcome (:mod:`scaler.base_check`), when the search made one."""
    check = BaseCheck.from_attrs(s.attrs.get(ATTR))
    if check is None:
        return []
    text = check.describe()
    return [text[0].upper() + text[1:] + ".", ""]


def _margin(r, val) -> str:
    """Top-1 minus the majority-class rate on val ("" when unknown)."""
    return "" if val is None else f"{float(r['top1_mean']) - val.majority:+.2f}"


def _leaderboard_lines(board, usable: bool = True, val=None) -> list[str]:
    """The leaderboard table (or a line saying there is nothing to rank yet); ``val``: the val
    split's rates, for top-1 minus the majority class."""
    lines = ["### Leaderboard", ""]
    if board.empty:
        return lines + ["No finished trial yet: nothing to rank.", ""]
    rows = [
        [
            r["number"],
            r["role"],
            num(r["alpha"]),
            num(r["beta"]),
            num(r["gamma"]),
            f"{int_text(r['pixels'])}/{int_text(r['cost_pixels'])}",
            top1_text(r),
            num(r.get("balanced_mean"), ".2f"),
            _margin(r, val),
            seeds_of(r),
            set_cell(r, usable),
            millions(r["params"]),
            millions(r["flops"], ".1f"),
            status_text(r),
        ]
        for _, r in board.iterrows()
    ]
    return lines + [md_table(BOARD_HEADERS, rows), ""]


def time_lines(s: StudyData) -> list[str]:
    """The plan's time estimate (stored when the study was created) beside the time taken."""
    planned = s.attrs.get("plan")
    if not planned or "wall_time" not in s.frame:
        return []
    trained = s.frame[s.frame["status"] == "trained"]
    took = float(trained["wall_time"].fillna(0).sum())
    workers = planned.get("workers", 1)
    line = (
        f"Time: planned ~{planned['seconds']:.0f} s for {planned['runs']} runs on "
        f"{planned['machine']} ({planned['threads']} threads"
        f"{f', {workers} worker processes' if workers > 1 else ''}) before the first run"
    )
    clocks = s.attrs.get("times") or []
    if not clocks:  # a study of a version that kept no clock
        line += f"; the {len(trained)} trained trials took {took:.0f} s (their runs' time, summed)."
        return [line, ""]
    first = clocks[0]
    off = first["planned_part"] / first["planned"] - 1 if first["planned"] else float("nan")
    line += (
        f". The first command took {first['seconds']:.0f} s on the clock; the runs its plan "
        f"covered ended after {first['planned_part']:.0f} s ({off:+.0%} against the plan)"
    )
    if first["later_rounds"]:
        line += f", then {first['later_rounds']} trials of later race rounds (not planned)"
    if len(clocks) > 1:
        line += f"; {len(clocks) - 1} later commands (resumed) took " + ", ".join(
            f"{c['seconds']:.0f} s (planned ~{c['planned']:.0f})" for c in clocks[1:]
        )
    return [line + ".", ""]


def _noise_lines(nz: Noise) -> list[str]:
    """The noise floor with its degrees of freedom, and the "possibly best" rule."""
    verdict = (
        "The last column marks them (best, possibly)."
        if nz.usable
        else "Without a usable estimate no candidate is declared possibly best or ruled out (?)."
    )
    return [
        "### Noise floor and the candidates that could be the best",
        "",
        f"Noise floor: {nz.describe()}. Rule: {nz.rule}. {verdict}",
        "",
    ]


def _cost_lines(s: StudyData, cands) -> list[str]:
    """The candidates' nominal cost against their measured one, at the cost and proxy pixels,
    and their measured latency when the search timed them."""
    timed = cands["latency_ratio"].notna().any()
    rows = [
        [
            r["number"],
            num(r["alpha"]),
            num(r["beta"]),
            num(r["gamma"]),
            num(r["nominal_cost"]),
            num(r["cost_ratio"]),
            num(r["proxy_cost_ratio"]),
        ]
        + ([num(r["latency_ratio"])] if timed else [])
        for _, r in cands.iterrows()
    ]
    miss = (cands["cost_ratio"].astype(float) / cands["nominal_cost"].astype(float) - 1).abs()
    trained = cands[cands["status"] == "trained"]["proxy_cost_ratio"].astype(float)
    spread = (
        [
            f"At the proxy's pixels the trained candidates cost {trained.min():.2f}–"
            f"{trained.max():.2f}× the base.",
            "",
        ]
        if len(trained)
        else []
    )
    return [
        "### Nominal vs measured cost",
        "",
        f"The budget is {s.config.get('budget')}× the base. Nominal cost is α·β²·γ²; measured is "
        f"fvcore FLOPs ÷ the base's at {s.config.get('cost_pixels')} px (the constraint is "
        f"{s.config.get('constraint')}); proxy is the same ratio at the proxy's pixels. "
        f"Measured differs from nominal by up to {miss.max():.0%} here.",
        "",
        md_table(COST_HEADERS + (("latency ×",) if timed else ()), rows),
        "",
        *spread,
        *_latency_lines(s, cands),
    ]


def _latency_lines(s: StudyData, cands) -> list[str]:
    """How the latency column was timed, and how far FLOPs and latency part here."""
    timed = cands[cands["latency_ratio"].notna()]
    if timed.empty:
        return ["Latency was not measured in this search (--latency off, or before 0.7).", ""]
    first = s.frame[s.frame["latency_ratio"].notna()].iloc[0]
    base = s.frame[(s.frame["role"] == "base") & s.frame["latency_ms"].notna()]
    at = f"; the base took {float(base['latency_ms'].iloc[0]):.2f} ms" if not base.empty else ""
    gap = (timed["latency_ratio"].astype(float) / timed["cost_ratio"].astype(float) - 1).abs()
    return [
        f"latency × is the candidate's latency at its cost pixels ÷ the base's, the median of "
        f"per-pair ratios with the two timed in alternation ({first['latency_mode']} on "
        f"{first['latency_machine']}{at}; `scaler latency {s.name}` times them again). Latency "
        f"and FLOPs ratios part by up to {gap.max():.0%} here (the constraint is "
        f"{s.config.get('constraint')}).",
        "",
    ]


def _coefficients_lines(s: StudyData, best, phi_max: int) -> list[str]:
    """The coefficients per unit φ of the best candidate, and their family φ = 0..phi_max."""
    from scaler.scaling import Coefficients

    budget = s.config.get("budget")
    phi = float(s.config.get("phi", math.log2(float(budget or 2))))
    base_res = int(s.config.get("cost_pixels", 224))
    net = from_config(s.config)
    coeffs = Coefficients.from_multipliers(
        float(best["alpha"]), float(best["beta"]), float(best["gamma"]), phi
    )
    return [
        "### Exported coefficients",
        "",
        f"Per unit φ (φ = {phi:g} at this budget): α = {coeffs.alpha:.4f}, "
        f"β = {coeffs.beta:.4f}, γ = {coeffs.gamma:.4f} (α·β²·γ² = {coeffs.product:.3f}); "
        f"write them with `scaler export {s.name}`. The family at {base_res} px, 1000 "
        "classes (FLOPs: fvcore's convention, from the exact cost model):",
        "",
        *family_table(coeffs, phi_max, base_res, net),
    ]
