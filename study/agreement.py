"""Is our economy the paper's? Every published figure as a statistical test, not a band.

``judge_agreement(runs, paper)`` judges our runs (any number of seeds) against
the paper's 36 per-run rows and the figures printed in its text. Each figure
is one or more two-sided tests of "our runs and the paper's come from the same
distribution":

- 4.1 regime means (3 x 13): Welch's t on the per-run values, and a two-sample
  Kolmogorov-Smirnov test of their distributions; the distance is Welch's t,
  the difference of means in standard errors of the difference.
- 4.3 dividend/fee ratio (3): the same two tests on the per-run ratios.
- 4.2 pooled settlement and default rates (6): Fisher's exact test of the 2x2
  table (ours, paper) x (settled, not), with Clopper-Pearson 95% CIs.
- 4.7 action shares (9): Fisher's exact test on action counts; the paper's
  counts are its printed shares of its 3,840 actions per regime.
- 4.6 spread (6): the Brown-Forsythe test (Levene, median-centred) of the
  per-run spread behind each printed 95% CI; and Cohen's d of the wealth-Gini
  gap (1), a normal test with the large-sample SE of d.
- 4.4 and 4.8 narrated runs (11): where the paper narrates one run's final
  balances as typical, the narrated value (the largest balance, the lowest, the
  number of agents below -3,000, ...) is placed in the distribution of the same
  statistic over our runs of that regime: a two-sided Monte Carlo p-value,
  2 min(P(X <= x), P(X >= x)) with (1 + count) / (1 + n) tails.

Multiple testing: the Benjamini-Hochberg procedure over every test of the
comparison (false discovery rate 0.05). It rejects at least as often as Holm's,
and our claim is the null hypothesis, so the laxer correction would be the one
that flatters us. A figure is *indistinguishable* when none of its tests
rejects after the correction.

Pooled counts (contracts, actions) are treated as independent trials although
they cluster within runs; that understates their variance and makes those
tests stricter, not kinder. KS on integer counts with ties is conservative.
With 12 runs a side most tests have little power: indistinguishable is not
"equal", and the report says how far each figure is in standard errors.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy import stats

from .paper import BASELINE, METRIC_LABELS, METRICS, REGIME_MEANS, Paper, compute_cohens_d, compute_pooled_contracts

ALPHA = 0.05
CORRECTION = "Benjamini-Hochberg over all tests (FDR 0.05)"
HIGH_COST = "high_compute_cost"
DEBT_LINE = -3000
SPREAD_METRICS = ("gini_wealth_mean", "errors_mean")


@dataclass
class HypothesisTest:
    """One hypothesis test: its name, statistic and p-value (``p_adjusted`` set by the correction)."""

    name: str
    statistic: float
    p: float
    p_adjusted: float = math.nan

    @property
    def is_rejected(self) -> bool:
        return self.p_adjusted < ALPHA


@dataclass
class Figure:
    """One published figure, ours beside the paper's, with its tests."""

    section: str
    regime: str
    name: str
    ours: float
    paper: float
    distance: float  # ours - paper in standard errors (see each section for which)
    tests: list[HypothesisTest]
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.section} {self.regime} {self.name}"

    @property
    def p_min(self) -> float:
        return min(t.p_adjusted for t in self.tests)

    @property
    def is_indistinguishable(self) -> bool:
        return not any(t.is_rejected for t in self.tests)


@dataclass
class Agreement:
    """Every figure tested, the correction applied, and the old band as context."""

    figures: list[Figure]
    n_runs: dict[str, int]
    seeds: list[int] = field(default_factory=list)
    band: str = ""
    not_tested: list[str] = field(default_factory=list)
    targets: list[Any] = field(default_factory=list)  # study.targets.Target, set by study.compare.judge_study

    @property
    def tests(self) -> list[HypothesisTest]:
        return [t for f in self.figures for t in f.tests]

    @property
    def n_indistinguishable(self) -> int:
        return sum(1 for f in self.figures if f.is_indistinguishable)

    def worst(self, count: int = 5) -> list[Figure]:
        """Return the figures furthest from the paper: smallest adjusted p, then largest distance."""
        return sorted(self.figures, key=lambda f: (f.p_min, -abs_or_inf(f.distance)))[:count]

    def headline(self) -> str:
        return (f"indistinguishable from the paper at α = {ALPHA} in {self.n_indistinguishable} of "
                f"{len(self.figures)} figures")

    def targets_summary(self) -> str:
        """Return the reproduction targets in one line: each count over its total, and whether all are met."""
        if not self.targets:
            return ""
        counts = ", ".join(f"{t.short} {t.met}/{t.total}" for t in self.targets)
        return f"targets {'met' if all(t.is_met for t in self.targets) else 'NOT met'} ({counts})"

    def to_dict(self) -> dict[str, Any]:
        return clean_json({
            "headline": self.headline(), "alpha": ALPHA, "correction": CORRECTION, "n_runs": self.n_runs,
            "indistinguishable": self.n_indistinguishable, "figures_total": len(self.figures),
            "tests_total": len(self.tests), "tests_rejected_unadjusted": sum(1 for t in self.tests if t.p < ALPHA),
            "worst": [f.key for f in self.worst()], "band": self.band, "not_tested": self.not_tested,
            "targets": [t.to_dict() for t in self.targets],
            "figures": [{"section": f.section, "regime": f.regime, "figure": f.name, "ours": f.ours,
                         "paper": f.paper, "distance_se": f.distance, "indistinguishable": f.is_indistinguishable,
                         "detail": f.detail,
                         "tests": [{"test": t.name, "statistic": t.statistic, "p": t.p, "p_adjusted": t.p_adjusted}
                                   for t in f.tests]} for f in self.figures],
        })

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def to_markdown(self, level: int = 2, title: str = "Verdict") -> str:
        """Return the headline, the worst figures, the method and one table of every figure."""
        return "\n".join(markdown_lines(self, "#" * level, title)) + "\n"


# --- statistics (pure) -----------------------------------------------------------


def abs_or_inf(value: float) -> float:
    return math.inf if math.isnan(value) else abs(value)


def compute_se_distance(ours: list[float], paper: list[float]) -> float:
    """Return Welch's t: (mean ours - mean paper) / sqrt(s1^2/n1 + s2^2/n2), sample variances."""
    diff = float(np.mean(ours) - np.mean(paper))
    se = math.sqrt(np.var(ours, ddof=1) / len(ours) + np.var(paper, ddof=1) / len(paper))
    if se == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / se


def degenerate_p(ours: list[float], paper: list[float]) -> float | None:
    """Return the p-value when both samples are constant (1 if the same constant, else 0); None otherwise."""
    if min(ours) == max(ours) and min(paper) == max(paper):
        return 1.0 if ours[0] == paper[0] else 0.0
    return None


def quiet(test: Callable, *args, **kwargs):
    """Call a scipy test without its precision warnings (nearly constant samples are handled by the caller)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return test(*args, **kwargs)


def welch_test(ours: list[float], paper: list[float]) -> HypothesisTest:
    p = degenerate_p(ours, paper)
    if p is None:
        p = float(quiet(stats.ttest_ind, ours, paper, equal_var=False).pvalue)
    return HypothesisTest("Welch t", compute_se_distance(ours, paper), p)


def ks_test(ours: list[float], paper: list[float]) -> HypothesisTest:
    result = quiet(stats.ks_2samp, ours, paper)
    return HypothesisTest("KS", float(result.statistic), float(result.pvalue))


def spread_test(ours: list[float], paper: list[float]) -> HypothesisTest:
    p = degenerate_p(ours, paper)
    if p is None:
        result = quiet(stats.levene, ours, paper, center="median")
        statistic, p = float(result.statistic), float(result.pvalue)
    else:
        statistic = 0.0
    return HypothesisTest("Brown-Forsythe", statistic, p)


def proportion_test(k_ours: int, n_ours: int, k_paper: int, n_paper: int) -> tuple[HypothesisTest, float]:
    """Return Fisher's exact test of two proportions, and their distance in SEs of the difference."""
    result = stats.fisher_exact([[k_ours, n_ours - k_ours], [k_paper, n_paper - k_paper]])
    p1, p2 = k_ours / n_ours, k_paper / n_paper
    se = math.sqrt(p1 * (1 - p1) / n_ours + p2 * (1 - p2) / n_paper)
    distance = (p1 - p2) / se if se else (0.0 if p1 == p2 else math.copysign(math.inf, p1 - p2))
    return HypothesisTest("Fisher exact", float(result.statistic), float(result.pvalue)), distance


def compute_log_sd_distance(sd_a: float, n_a: int, sd_b: float, n_b: int) -> float:
    """Return ln(sd_a / sd_b) in standard errors (SE of ln s is about 1 / sqrt(2 (n - 1)) for near-normal data)."""
    if sd_a == sd_b:
        return 0.0
    if sd_a == 0 or sd_b == 0:
        return math.copysign(math.inf, sd_a - sd_b)
    return math.log(sd_a / sd_b) / math.sqrt(1 / (2 * (n_a - 1)) + 1 / (2 * (n_b - 1)))


def compute_clopper_pearson(k: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return float(ci.low), float(ci.high)


def compute_d_se(d: float, n1: int, n2: int) -> float:
    """Return the large-sample standard error of Cohen's d (Hedges and Olkin)."""
    return math.sqrt((n1 + n2) / (n1 * n2) + d * d / (2 * (n1 + n2)))


def empirical_test(values: list[float], x: float) -> HypothesisTest:
    """Return the two-sided Monte Carlo p-value of ``x`` among ``values``."""
    n = len(values)
    low = (1 + sum(1 for v in values if v <= x)) / (n + 1)
    high = (1 + sum(1 for v in values if v >= x)) / (n + 1)
    return HypothesisTest("empirical quantile", low, min(1.0, 2 * min(low, high)))


def compute_z_in(values: list[float], x: float) -> float:
    """Return (x - mean) / SD of ``values`` (the narrated value in our runs' SDs)."""
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    diff = x - float(np.mean(values))
    return diff / sd if sd else (0.0 if diff == 0 else math.copysign(math.inf, diff))


def apply_correction(tests: list[HypothesisTest]) -> None:
    """Set every test's Benjamini-Hochberg adjusted p-value."""
    if not tests:
        return
    adjusted = stats.false_discovery_control([t.p for t in tests], method="bh")
    for t, p in zip(tests, adjusted):
        t.p_adjusted = float(p)


# --- the figures -------------------------------------------------------------------


def judge_agreement(runs: list[dict[str, Any]], paper: Paper, band: str = "") -> Agreement:
    """Return every published figure tested against our runs, corrected for multiple testing."""
    by_regime: dict[str, list[dict]] = {}
    for run in sorted(runs, key=lambda r: (r["regime"], r["seed"], r["run_id"])):
        by_regime.setdefault(run["regime"], []).append(run)
    regimes = [r for r in sorted(by_regime) if paper.runs_of(r) and r in paper.regimes]
    figures: list[Figure] = []
    not_tested: list[str] = []
    for regime in regimes:
        ours, theirs = by_regime[regime], paper.runs_of(regime)
        if len(ours) < 2:
            not_tested.append(f"{regime}: one run cannot be tested (need at least 2)")
            continue
        figures += mean_figures(regime, ours, theirs)
        figures += ratio_figures(regime, ours, theirs)
        figures += pooled_figures(regime, ours, paper)
        figures += share_figures(regime, ours, paper)
        figures += spread_figures(regime, ours, theirs, paper)
        figures += narrative_figures(regime, ours, paper)
    if BASELINE in regimes and HIGH_COST in regimes and len(by_regime[BASELINE]) > 1 < len(by_regime[HIGH_COST]):
        figures.append(cohens_d_figure(by_regime, paper))
    apply_correction([t for f in figures for t in f.tests])
    not_tested += [f"{r}: not in the paper" for r in sorted(by_regime) if r not in regimes]
    return Agreement(figures=figures, n_runs={r: len(rs) for r, rs in by_regime.items()},
                     seeds=sorted({r["seed"] for r in runs}), band=band, not_tested=not_tested)


def column(runs: list[dict], key: str) -> list[float]:
    return [float(r[key]) for r in runs]


def distribution_figure(section: str, regime: str, name: str, ours: list[float], paper: list[float]) -> Figure:
    welch, ks = welch_test(ours, paper), ks_test(ours, paper)
    return Figure(section=section, regime=regime, name=name, ours=float(np.mean(ours)), paper=float(np.mean(paper)),
                  distance=welch.statistic, tests=[welch, ks])


def mean_figures(regime: str, ours: list[dict], theirs: list[dict]) -> list[Figure]:
    """Return section 4.1: each metric's per-run distribution, Welch's t and KS."""
    return [distribution_figure("4.1", regime, METRIC_LABELS[m], column(ours, REGIME_MEANS[m]),
                                column(theirs, REGIME_MEANS[m])) for m in METRICS]


def dividend_ratios(runs: list[dict]) -> list[float]:
    return [r["dividends_total"] / r["inference_fees_total"] for r in runs if r["inference_fees_total"]]


def ratio_figures(regime: str, ours: list[dict], theirs: list[dict]) -> list[Figure]:
    """Return section 4.3: the per-run dividend/fee ratio."""
    a, b = dividend_ratios(ours), dividend_ratios(theirs)
    return [distribution_figure("4.3", regime, "Dividends / fees", a, b)] if len(a) > 1 and len(b) > 1 else []


def pooled_figures(regime: str, ours: list[dict], paper: Paper) -> list[Figure]:
    """Return section 4.2: pooled settlement and default rates, Fisher's exact test, Clopper-Pearson CIs."""
    o = compute_pooled_contracts(ours)
    p = paper.pooled_contracts(regime)
    figures = []
    for count, label in (("settled", "Settlement rate"), ("defaulted", "Default rate")):
        if not o["contracts"] or not p.get("contracts"):
            continue
        test, distance = proportion_test(o[count], o["contracts"], p[count], p["contracts"])
        ci_o, ci_p = compute_clopper_pearson(o[count], o["contracts"]), compute_clopper_pearson(p[count], p["contracts"])
        figures.append(Figure(
            section="4.2", regime=regime, name=label, ours=o[count] / o["contracts"],
            paper=p[count] / p["contracts"], distance=distance, tests=[test],
            detail=f"{o[count]}/{o['contracts']} (95% CI {ci_o[0]:.2%}-{ci_o[1]:.2%}) vs "
                   f"{p[count]}/{p['contracts']} (95% CI {ci_p[0]:.2%}-{ci_p[1]:.2%}), Clopper-Pearson; "
                   f"our rate {'inside' if ci_p[0] <= o[count] / o['contracts'] <= ci_p[1] else 'outside'} "
                   "the paper's CI"))
    return figures


def paper_actions_per_regime(paper: Paper) -> int | None:
    """Return the paper's action count per regime (printed for baseline; every regime has 12 x 8 x 40)."""
    return paper.figure("action_shares", BASELINE, "_n_actions")


def share_figures(regime: str, ours: list[dict], paper: Paper) -> list[Figure]:
    """Return section 4.7: each printed action share, Fisher's exact test on counts."""
    published = {k: v for k, v in (paper.figure("action_shares", regime) or {}).items() if not k.startswith("_")}
    n_paper = paper_actions_per_regime(paper)
    counts: dict[str, int] = {}
    for run in ours:
        for action, count in (run.get("action_counts") or {}).items():
            counts[action] = counts.get(action, 0) + count
    total = sum(counts.values())
    if not total or not n_paper:
        return []
    figures = []
    for action, share in sorted(published.items()):
        k_paper = round(share * n_paper)
        test, distance = proportion_test(counts.get(action, 0), total, k_paper, n_paper)
        figures.append(Figure(section="4.7", regime=regime, name=f"{action} share", ours=counts.get(action, 0) / total,
                              paper=share, distance=distance, tests=[test],
                              detail=f"{counts.get(action, 0):,} of {total:,} actions vs {k_paper:,} of {n_paper:,} "
                                     f"({100 * (counts.get(action, 0) / total - share):+.1f} percentage points)"))
    return figures


def spread_figures(regime: str, ours: list[dict], theirs: list[dict], paper: Paper) -> list[Figure]:
    """Return section 4.6: the spread behind each printed 95% CI (Brown-Forsythe)."""
    figures = []
    for metric in SPREAD_METRICS:
        published = paper.figure("ci95", metric, regime)
        if published is None:
            continue
        a, b = column(ours, REGIME_MEANS[metric]), column(theirs, REGIME_MEANS[metric])
        sd_a, sd_b = float(np.std(a, ddof=1)), float(np.std(b, ddof=1))
        figures.append(Figure(
            section="4.6", regime=regime, name=f"{METRIC_LABELS[metric]} run-to-run SD", ours=sd_a, paper=sd_b,
            distance=compute_log_sd_distance(sd_a, len(a), sd_b, len(b)), tests=[spread_test(a, b)],
            detail=f"95% CI of the mean: ours +/- {1.96 * float(np.std(a)) / math.sqrt(len(a)):.4g}, "
                   f"paper +/- {published[1]} (printed)"))
    return figures


def cohens_d_figure(by_regime: dict[str, list[dict]], paper: Paper) -> Figure:
    """Return section 4.6's Cohen's d of the wealth-Gini gap, high_compute_cost vs baseline."""
    high, base = column(by_regime[HIGH_COST], "gini_wealth"), column(by_regime[BASELINE], "gini_wealth")
    p_high, p_base = column(paper.runs_of(HIGH_COST), "gini_wealth"), column(paper.runs_of(BASELINE), "gini_wealth")
    d_ours, d_paper = compute_cohens_d(high, base), compute_cohens_d(p_high, p_base)
    se = math.hypot(compute_d_se(d_ours, len(high), len(base)), compute_d_se(d_paper, len(p_high), len(p_base)))
    z = (d_ours - d_paper) / se
    test = HypothesisTest("normal (SE of d)", z, float(2 * stats.norm.sf(abs(z))))
    return Figure(section="4.6", regime=f"{HIGH_COST} vs {BASELINE}", name="Cohen's d of wealth Gini", ours=d_ours,
                  paper=d_paper, distance=z, tests=[test],
                  detail=f"paper prints ~{paper.figure('cohens_d_gini_wealth_high_vs_baseline', 'value')}; "
                         "recomputed from its rows with population SDs, as printed")


def narrated_statistics(balances: dict[str, int]) -> list[tuple[str, Callable[[list[int]], float], float]]:
    """Return (name, statistic of a run's final balances, narrated value) for one narrated run.

    The paper lists a run's top balances (positive) and bottom ones (negative):
    the k-th listed positive balance is the run's k-th largest, the k-th
    negative one its k-th lowest.
    """
    top = sorted((v for v in balances.values() if v >= 0), reverse=True)
    bottom = sorted(v for v in balances.values() if v < 0)
    out = []
    for rank, value in enumerate(top):
        out.append((f"{ordinal(rank)}largest final balance", lambda bs, r=rank: sorted(bs, reverse=True)[r], value))
    for rank, value in enumerate(bottom):
        out.append((f"{ordinal(rank)}lowest final balance", lambda bs, r=rank: sorted(bs)[r], value))
    return out


def ordinal(rank: int) -> str:
    return ("", "2nd ", "3rd ")[rank] if rank < 3 else f"{rank + 1}th "  # "" + "largest": the largest


def narrative_figures(regime: str, ours: list[dict], paper: Paper) -> list[Figure]:
    """Return sections 4.4 and 4.8: each narrated run's balances placed in our runs' distribution."""
    runs = [sorted((r.get("balances_final") or {}).values()) for r in ours]
    if not all(runs):
        return []
    narrated = {k: v for k, v in (paper.figure("representative_runs") or {}).items()
                if not k.startswith("_") and k.rsplit("_", 1)[0] == regime}
    figures = []
    for run_name, published in sorted(narrated.items()):
        balances = published.get("balances") or {}
        stats_ = narrated_statistics(balances)
        if regime == HIGH_COST:
            stats_.append((f"agents below {DEBT_LINE:,}", lambda bs: sum(1 for b in bs if b < DEBT_LINE),
                           sum(1 for v in balances.values() if v < DEBT_LINE)))
        for name, statistic, value in stats_:
            values = [float(statistic(bs)) for bs in runs]
            figures.append(Figure(section="4.4/4.8" if "below" in name else "4.8", regime=regime, name=name,
                                  ours=float(np.mean(values)), paper=float(value),
                                  distance=-compute_z_in(values, value), tests=[empirical_test(values, value)],
                                  detail=f"narrated run {run_name}; ours: mean of {len(values)} runs, "
                                         f"range {min(values):,.0f} to {max(values):,.0f}"))
    return figures


# --- formatting -------------------------------------------------------------------------

FALSIFIER = ("The claim is falsified for a figure when a larger ensemble on fresh seeds (never used to choose a "
             "rule) rejects it at the same level; \"indistinguishable\" with 12 runs a side only says the paper's "
             "12 runs cannot tell the two economies apart, and the distance column says by how much they may differ.")


def format_figure_value(figure: Figure, value: float) -> str:
    if figure.section in ("4.2", "4.7"):
        return f"{100 * value:.2f}%"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4f}"


def format_distance(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:+.2f}" if math.isfinite(value) else ("+inf" if value > 0 else "-inf")


def format_p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def describe_figure(f: Figure) -> str:
    return (f"{f.key}: ours {format_figure_value(f, f.ours)} vs paper {format_figure_value(f, f.paper)} "
            f"({format_distance(f.distance)} SE, adjusted p {format_p(f.p_min)})")


def markdown_lines(a: Agreement, h: str, title: str) -> list[str]:
    tests = a.tests
    runs = ", ".join(f"{regime} {n}" for regime, n in a.n_runs.items())
    lines = [f"{h} {title}: {a.headline()}", "",
             f"Our runs: {runs}; the paper's: 12 per regime. {len(tests)} two-sided tests, "
             f"{sum(1 for t in tests if t.p < ALPHA)} of them reject at p < {ALPHA} before correction; "
             f"correction: {CORRECTION}. A figure is indistinguishable when none of its tests rejects.", ""]
    distinguishable = [f for f in a.worst(len(a.figures)) if not f.is_indistinguishable]
    if distinguishable:
        lines += ["Distinguishable from the paper, worst first:", ""]
        lines += [f"- {describe_figure(f)}" for f in distinguishable[:10]]
        if len(distinguishable) > 10:
            lines.append(f"- and {len(distinguishable) - 10} more (table below)")
        lines.append("")
    if a.targets:
        lines += ["Reproduction targets (evidence only on seeds never used to choose a rule):", ""]
        lines += [f"- {t.describe()}" for t in a.targets]
        lines.append("")
    if a.band:
        lines += [f"Old band, for context: {a.band}", ""]
    lines += [*(f"Not tested: {n}" for n in a.not_tested), *([""] if a.not_tested else []),
              "Tests: 4.1 and 4.3, Welch's t and two-sample Kolmogorov-Smirnov on per-run values (distance = "
              "Welch's t); 4.2 and 4.7, Fisher's exact test on pooled counts, Clopper-Pearson 95% CIs (distance = "
              "difference of proportions in SEs); 4.6, Brown-Forsythe on the run-to-run spread (distance = log "
              "ratio of SDs in SEs) and a normal test of Cohen's d; 4.4 and 4.8, the narrated run's value as a two-sided Monte Carlo quantile of our runs "
              "(distance = ours minus narrated, in our run-level SDs). " + FALSIFIER, "",
              "| Section | Regime | Figure | Ours | Paper | Distance (SE) | Adjusted p | Verdict |",
              "|---|---|---|---:|---:|---:|---|---|"]
    for f in a.figures:
        ps = ", ".join(f"{t.name} {format_p(t.p_adjusted)}" for t in f.tests)
        verdict = "indistinguishable" if f.is_indistinguishable else "**differs**"
        lines.append(f"| {f.section} | {f.regime} | {f.name} | {format_figure_value(f, f.ours)} | "
                     f"{format_figure_value(f, f.paper)} | {format_distance(f.distance)} | {ps} | {verdict} |")
    details = [f for f in a.figures if f.detail]
    if details:
        lines += ["", "Counts and intervals behind the pooled, spread and narrated figures:", ""]
        lines += [f"- {f.key}: {f.detail}" for f in details]
    return lines


def clean_json(value: Any) -> Any:
    """Return ``value`` with infinities and NaNs as None (strict JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


__all__ = ["ALPHA", "CORRECTION", "Agreement", "Figure", "HypothesisTest", "judge_agreement", "compute_se_distance",
           "welch_test", "ks_test", "empirical_test", "proportion_test", "compute_clopper_pearson"]
