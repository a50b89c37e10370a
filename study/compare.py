"""The old band: our means within a number of the paper's run-level SDs (context for the tests).

The comparison that judges a study is ``study.agreement`` (a statistical test
per published figure; ``judge_study`` below runs it). This module keeps the
earlier, weaker yardstick as one line of context: the 12-seed band.

``compare(runs, rows)`` puts each regime's 13 summary means beside the paper's
and measures the distance in the paper's run-level standard deviations
(population SD of the paper's 12 runs of that regime, the paper's own
convention), then evaluates the band:

1. every compared mean within 2 paper SD of the paper's;
2. at least 33 of 39 within 1 paper SD (for a reduced study: the same
   fraction, rounded up, of the cells compared);
3. every Table 2 delta (coordination_push - baseline, high_compute_cost -
   baseline) whose paper magnitude exceeds one paper SD has the same sign as
   ours. The SD is the paper's run-level SD of that metric in the *baseline*
   regime: the band compares a delta with "one paper standard deviation" and
   the baseline is the reference both deltas are measured from;
4. the dividend/fee ratio (mean of per-run ratios, section 4.3) within
   [0.96, 0.98] in every regime;
5. high_compute_cost's mean wealth Gini at least 3x baseline's.

Only regimes present in both studies are compared. A criterion that needs a
regime the comparison lacks is reported as not evaluated; ``bar_met`` is true
when every evaluated criterion passes and at least one was evaluated.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .agreement import Agreement, clean_json, judge_agreement
from .metrics import regime_summary
from .targets import judge_targets
from .paper import (
    BASELINE, METRIC_LABELS, METRICS, REGIME_MEANS, TABLE2_METRICS, Paper, compute_dividend_fee_ratio, compute_pooled_contracts,
    compute_sd, load_paper,
)

HIGH_COST = "high_compute_cost"
DELTA_REGIMES = ("coordination_push", HIGH_COST)
PAPER_CELLS = 39
PAPER_WITHIN_1SD = 33
RATIO_RANGE = (0.96, 0.98)
GINI_FACTOR = 3.0


@dataclass(frozen=True)
class MetricCell:
    """One regime's mean of one metric, ours beside the paper's."""

    regime: str
    metric: str
    ours: float
    ours_sd: float
    paper: float
    paper_sd: float | None
    z: float | None  # (ours - paper) / paper_sd; None when the paper SD is undefined

    @property
    def is_within_1sd(self) -> bool:
        return self.z is not None and abs(self.z) <= 1

    @property
    def is_within_2sd(self) -> bool:
        return self.z is not None and abs(self.z) <= 2


@dataclass(frozen=True)
class DeltaCheck:
    """One Table 2 delta (regime mean - baseline mean), ours beside the paper's."""

    regime: str
    metric: str
    ours: float
    paper: float
    baseline_sd: float | None

    @property
    def is_big(self) -> bool:
        """Return whether the paper's delta exceeds one paper SD (of the metric in the baseline)."""
        return self.baseline_sd is not None and abs(self.paper) > self.baseline_sd

    @property
    def is_same_sign(self) -> bool:
        return compute_sign(self.ours) == compute_sign(self.paper)


@dataclass(frozen=True)
class Criterion:
    """One line of the 12-seed band; ``passed`` is None when it could not be evaluated."""

    name: str
    passed: bool | None
    detail: str


@dataclass
class Comparison:
    """The comparison of our study with the paper's means, and the band evaluated on it."""

    regimes: list[str]
    cells: list[MetricCell]
    deltas: list[DeltaCheck]
    pooled: dict[str, dict[str, dict[str, Any]]]
    ratios: dict[str, dict[str, float | None]]
    gini_factor: dict[str, float | None]
    criteria: list[Criterion]
    failures: list[str]
    not_compared: dict[str, list[str]] = field(default_factory=dict)

    @property
    def bar_met(self) -> bool:
        evaluated = [c for c in self.criteria if c.passed is not None]
        return bool(evaluated) and all(c.passed for c in evaluated)

    @property
    def verdict(self) -> str:
        """Return MET, NOT MET, or NOT EVALUATED (no regime in common with the paper)."""
        if all(c.passed is None for c in self.criteria):
            return "NOT EVALUATED"
        return "MET" if self.bar_met else "NOT MET"

    def cell(self, regime: str, metric: str) -> MetricCell:
        """Return the cell of ``metric`` in ``regime`` (KeyError if it was not compared)."""
        for c in self.cells:
            if c.regime == regime and c.metric == metric:
                return c
        raise KeyError((regime, metric))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (infinities and NaNs become null)."""
        return clean_json({
            "bar_met": self.bar_met,
            "failures": self.failures,
            "criteria": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.criteria],
            "regimes": self.regimes,
            "not_compared": self.not_compared,
            "metrics": [{"regime": c.regime, "metric": c.metric, "ours": c.ours, "ours_sd": c.ours_sd,
                         "paper": c.paper, "paper_sd": c.paper_sd, "z": c.z, "within_1sd": c.is_within_1sd,
                         "within_2sd": c.is_within_2sd} for c in self.cells],
            "table2_deltas": [{"regime": d.regime, "metric": d.metric, "ours": d.ours, "paper": d.paper,
                               "baseline_sd": d.baseline_sd, "big": d.is_big, "same_sign": d.is_same_sign}
                              for d in self.deltas],
            "pooled_contracts": self.pooled,
            "dividend_fee_ratio": self.ratios,
            "gini_wealth_high_over_baseline": self.gini_factor,
        })

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def to_markdown(self, level: int = 2) -> str:
        """Return the comparison as Markdown tables, headings at ``level``."""
        return "\n".join(markdown_lines(self, "#" * level)) + "\n"


# --- arithmetic ---------------------------------------------------------------------


def compute_sign(value: float) -> int:
    return (value > 0) - (value < 0)


def compute_z(ours: float, paper: float, sd: float | None) -> float | None:
    """Return (ours - paper) / sd; an exact match is 0 even when sd is 0; None without an SD."""
    if sd is None or math.isnan(sd):
        return None
    if ours == paper:
        return 0.0
    if sd == 0:
        return math.copysign(math.inf, ours - paper)
    return (ours - paper) / sd


def compute_required_within_1sd(cells: int) -> int:
    """Return how many cells must be within 1 SD: 33 of 39, scaled (rounded up) for fewer cells."""
    return math.ceil(PAPER_WITHIN_1SD * cells / PAPER_CELLS)


# --- the comparison -------------------------------------------------------------------


def get_runs_by_regime(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for run in sorted(runs, key=lambda r: (r["regime"], r["seed"], r["run_id"])):
        grouped.setdefault(run["regime"], []).append(run)
    return grouped


def compare(runs: list[dict[str, Any]], rows: list[dict[str, Any]] | None = None,
            paper: Paper | None = None) -> Comparison:
    """Return our study (run summaries and regime rows) compared with the paper's figures."""
    paper = paper or load_paper()
    rows = rows if rows is not None else regime_summary(runs)
    ours = {row["regime"]: row for row in rows}
    by_regime = get_runs_by_regime(runs)
    paper_regimes = {r for r in paper.regimes if paper.runs_of(r)}
    regimes = sorted(set(ours) & paper_regimes)
    not_compared = {"ours_only": sorted(set(ours) - paper_regimes), "paper_only": sorted(paper_regimes - set(ours))}
    cells = [process_cell(regime, metric, ours[regime], by_regime.get(regime, []), paper)
             for regime in regimes for metric in METRICS]
    deltas = process_deltas(regimes, ours, paper)
    pooled = {r: {"ours": compute_pooled_contracts(by_regime.get(r, [])),
                  "paper": compute_pooled_contracts(paper.runs_of(r))} for r in regimes}
    ratios = {r: {"ours": compute_dividend_fee_ratio(by_regime.get(r, [])),
                  "paper": compute_dividend_fee_ratio(paper.runs_of(r))} for r in regimes}
    gini_factor = compute_gini_factor(regimes, ours, paper)
    criteria, failures = evaluate_bar(cells, deltas, ratios, gini_factor)
    return Comparison(regimes=regimes, cells=cells, deltas=deltas, pooled=pooled, ratios=ratios,
                      gini_factor=gini_factor, criteria=criteria, failures=failures, not_compared=not_compared)


def process_cell(regime: str, metric: str, row: dict[str, Any], runs: list[dict[str, Any]], paper: Paper) -> MetricCell:
    ours = float(row[metric])
    paper_mean, paper_sd = float(paper.mean(regime, metric)), paper.sd(regime, metric)
    ours_sd = compute_sd(r[REGIME_MEANS[metric]] for r in runs) if runs else math.nan
    return MetricCell(regime=regime, metric=metric, ours=ours, ours_sd=ours_sd, paper=paper_mean,
                      paper_sd=paper_sd, z=compute_z(ours, paper_mean, paper_sd))


def process_deltas(regimes: list[str], ours: dict[str, dict], paper: Paper) -> list[DeltaCheck]:
    """Return Table 2's deltas from baseline for the regimes compared (none without baseline)."""
    if BASELINE not in regimes:
        return []
    return [DeltaCheck(regime=regime, metric=metric,
                       ours=float(ours[regime][metric]) - float(ours[BASELINE][metric]),
                       paper=paper.mean(regime, metric) - paper.mean(BASELINE, metric),
                       baseline_sd=paper.sd(BASELINE, metric))
            for regime in DELTA_REGIMES if regime in regimes for metric in TABLE2_METRICS]


def compute_gini_factor(regimes: list[str], ours: dict[str, dict], paper: Paper) -> dict[str, float | None]:
    """Return high_compute_cost's mean wealth Gini over baseline's, ours and the paper's."""
    if BASELINE not in regimes or HIGH_COST not in regimes:
        return {"ours": None, "paper": None}

    def ratio(high: float, base: float) -> float:
        return high / base if base else (math.inf if high > 0 else 0.0)

    return {"ours": ratio(ours[HIGH_COST]["gini_wealth_mean"], ours[BASELINE]["gini_wealth_mean"]),
            "paper": ratio(paper.mean(HIGH_COST, "gini_wealth_mean"), paper.mean(BASELINE, "gini_wealth_mean"))}


def describe_band(cmp: Comparison) -> str:
    """Return the band in one line: its verdict and the counts of means within 2 and 1 paper SD."""
    n = len(cmp.cells)
    within2 = sum(1 for c in cmp.cells if c.is_within_2sd)
    within1 = sum(1 for c in cmp.cells if c.is_within_1sd)
    return (f"12-seed band {cmp.verdict}: {within2} of {n} means within 2 paper SD, {within1} within 1 SD "
            f"(the band asks for all within 2 and {compute_required_within_1sd(n)} within 1, Table 2 signs, "
            "dividend/fee ratio, Gini factor); it measures a mean in the paper's run-level SDs, blind to shifts "
            "under ~2 SD at 12 runs")


def judge_study(runs: list[dict[str, Any]], rows: list[dict[str, Any]] | None = None,
                paper: Paper | None = None) -> Agreement:
    """Return the statistical agreement of our runs with the paper's, the band attached as context."""
    paper = paper or load_paper()
    band = describe_band(compare(runs, rows, paper))
    blocks = compute_band_blocks(runs, paper)
    if blocks:
        band += f"; on disjoint 12-seed blocks of these runs the band is met in {sum(blocks)} of {len(blocks)}"
    agreement = judge_agreement(runs, paper, band=band)
    agreement.targets = judge_targets(agreement.figures, paper, blocks)
    return agreement


def compute_band_blocks(runs: list[dict[str, Any]], paper: Paper, size: int = 12) -> list[bool]:
    """Return, for each disjoint block of ``size`` consecutive seeds (in seed order), whether the band is met.

    The band was built for 12-seed studies; a large ensemble says how often such
    a study would meet it. Fewer than two full blocks: no blocks.
    """
    seeds = sorted({r["seed"] for r in runs})
    blocks = [set(seeds[i:i + size]) for i in range(0, len(seeds) - size + 1, size)]
    if len(blocks) < 2:
        return []
    return [compare([r for r in runs if r["seed"] in block], None, paper).bar_met for block in blocks]


def describe_cell(c: MetricCell) -> str:
    z = "undefined (paper SD unknown)" if c.z is None else format_z(c)
    return f"{c.regime} {c.metric}: ours {format_value(c.metric, c.ours)} vs paper {format_value(c.metric, c.paper)} (z {z})"


def evaluate_bar(cells: list[MetricCell], deltas: list[DeltaCheck], ratios: dict[str, dict],
                 gini_factor: dict[str, float | None]) -> tuple[list[Criterion], list[str]]:
    """Return the band's five criteria, evaluated, and one line per failure naming what failed."""
    criteria: list[Criterion] = []
    failures: list[str] = []
    n = len(cells)
    if n:
        beyond2 = [c for c in cells if not c.is_within_2sd]
        criteria.append(Criterion("all means within 2 paper SD", not beyond2, f"{n - len(beyond2)} of {n} within 2 SD"))
        failures += [f"beyond 2 SD: {describe_cell(c)}" for c in beyond2]
        within1 = sum(1 for c in cells if c.is_within_1sd)
        need = compute_required_within_1sd(n)
        criteria.append(Criterion(f"at least {need} of {n} means within 1 paper SD", within1 >= need,
                                  f"{within1} of {n} within 1 SD"))
        if within1 < need:
            beyond1 = [c for c in cells if not c.is_within_1sd and c.is_within_2sd]
            failures.append(f"only {within1} of {n} means within 1 SD (need {need}); between 1 and 2 SD: "
                            + ("; ".join(describe_cell(c) for c in beyond1) or "none"))
    else:
        criteria.append(Criterion("all means within 2 paper SD", None, "no regime in common with the paper"))
        criteria.append(Criterion("most means within 1 paper SD", None, "no regime in common with the paper"))
    big = [d for d in deltas if d.is_big]
    if deltas:
        wrong = [d for d in big if not d.is_same_sign]
        criteria.append(Criterion("every big Table 2 delta has the paper's sign", not wrong,
                                  f"{len(big) - len(wrong)} of {len(big)} big deltas agree"))
        failures += [f"Table 2 sign: {d.regime} - baseline {d.metric}: ours {format_delta(d.metric, d.ours)} vs "
                     f"paper {format_delta(d.metric, d.paper)}" for d in wrong]
    else:
        criteria.append(Criterion("every big Table 2 delta has the paper's sign", None,
                                  "needs baseline and another regime"))
    if ratios:
        low, high = RATIO_RANGE
        off = [r for r, v in ratios.items() if v["ours"] is None or not low <= v["ours"] <= high]
        criteria.append(Criterion(f"dividend/fee ratio in [{low}, {high}] in every regime", not off,
                                  ", ".join(f"{r} {format_ratio(v['ours'])}" for r, v in ratios.items())))
        failures += [f"dividend/fee ratio: {r} {format_ratio(ratios[r]['ours'])} outside [{low}, {high}]" for r in off]
    else:
        criteria.append(Criterion("dividend/fee ratio in [0.96, 0.98] in every regime", None, "no regime compared"))
    factor = gini_factor["ours"]
    if factor is None:
        criteria.append(Criterion("high_compute_cost wealth Gini >= 3x baseline's", None,
                                  "needs baseline and high_compute_cost"))
    else:
        ok = factor >= GINI_FACTOR
        criteria.append(Criterion("high_compute_cost wealth Gini >= 3x baseline's", ok, f"{factor:.2f}x"))
        if not ok:
            failures.append(f"wealth Gini: high_compute_cost is {factor:.2f}x baseline's (need >= {GINI_FACTOR:g}x)")
    return criteria, failures


# --- formatting ---------------------------------------------------------------------------


def format_number(value: float, spec: str) -> str:
    """Return ``format(value, spec)``, without the sign of a value that rounds to zero ("-0.00")."""
    text = format(value, spec)
    if text.lstrip("+-").strip("0.,") == "" and text[0] in "+-":
        text = format(0.0, spec)
    return text


def format_value(metric: str, value: float | None) -> str:
    """Return ``value`` with the precision its metric needs (Ginis and HHI: 4 decimals)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format_number(value, ".4f" if "gini" in metric or "hhi" in metric else ",.2f")


def format_delta(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format_number(value, "+.4f" if "gini" in metric or "hhi" in metric else "+,.2f")


def format_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def format_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def format_z(c: MetricCell) -> str:
    if c.z is None:
        return "n/a"
    return format_number(c.z, "+.2f") if math.isfinite(c.z) else ("+inf" if c.z > 0 else "-inf")


def get_flag(c: MetricCell) -> str:
    if not c.is_within_2sd:
        return "**> 2 SD**"
    if not c.is_within_1sd:
        return "> 1 SD"
    return ""


def markdown_lines(cmp: Comparison, h: str) -> list[str]:
    lines = [f"{h} The 12-seed band: {cmp.verdict}", "",
             "| Criterion | Result | Detail |", "|---|---|---|"]
    for c in cmp.criteria:
        result = "not evaluated" if c.passed is None else ("pass" if c.passed else "**FAIL**")
        lines.append(f"| {c.name} | {result} | {c.detail} |")
    if cmp.failures:
        lines += ["", "Failures:", ""] + [f"- {f}" for f in cmp.failures]
    for side, names in sorted(cmp.not_compared.items()):
        if names:
            lines += ["", f"Not compared ({'only in our study' if side == 'ours_only' else 'only in the paper'}): "
                      + ", ".join(names)]
    lines += ["", f"{h} Regime means vs the paper", "",
              "z = (ours - paper) / paper SD, the paper's run-level (population) SD of the metric in that regime.", "",
              "| Regime | Metric | Ours | Paper | Diff | Paper SD | z | |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for c in cmp.cells:
        lines.append(f"| {c.regime} | {METRIC_LABELS[c.metric]} | {format_value(c.metric, c.ours)} | "
                     f"{format_value(c.metric, c.paper)} | {format_delta(c.metric, c.ours - c.paper)} | "
                     f"{format_value(c.metric, c.paper_sd)} | {format_z(c)} | {get_flag(c)} |")
    if cmp.deltas:
        lines += ["", f"{h} Table 2 deltas from baseline: signs", "",
                  "A delta is big when the paper's magnitude exceeds the paper's run-level SD of that metric in the "
                  "baseline regime; every big delta must have the paper's sign.", "",
                  "| Delta | Metric | Ours | Paper | Baseline SD | Big | Same sign |",
                  "|---|---|---:|---:|---:|---|---|"]
        for d in cmp.deltas:
            same = "yes" if d.is_same_sign else ("**NO**" if d.is_big else "no")
            lines.append(f"| {d.regime} - baseline | {METRIC_LABELS[d.metric]} | {format_delta(d.metric, d.ours)} | "
                         f"{format_delta(d.metric, d.paper)} | {format_value(d.metric, d.baseline_sd)} | "
                         f"{'yes' if d.is_big else 'no'} | {same} |")
    if cmp.regimes:
        lines += ["", f"{h} Pooled contract outcomes and dividend/fee ratio", "",
                  "| Regime | Settlement rate (ours) | (paper) | Default rate (ours) | (paper) | "
                  "Dividend/fee (ours) | (paper) |", "|---|---:|---:|---:|---:|---:|---:|"]
        for r in cmp.regimes:
            o, p = cmp.pooled[r]["ours"], cmp.pooled[r]["paper"]
            lines.append(f"| {r} | {format_rate(o['settlement_rate'])} | {format_rate(p['settlement_rate'])} | "
                         f"{format_rate(o['default_rate'])} | {format_rate(p['default_rate'])} | "
                         f"{format_ratio(cmp.ratios[r]['ours'])} | {format_ratio(cmp.ratios[r]['paper'])} |")
    return lines


__all__ = ["Comparison", "MetricCell", "DeltaCheck", "Criterion", "compare", "judge_study", "describe_band", "compute_z",
           "compute_required_within_1sd", "format_value", "format_delta"]
