"""The study's report: the paper's analysis regenerated from our runs, beside the paper's figures.

``write_report(out_dir, runs, rows, runs_dir=None)`` writes ``report.md`` and
its figures (PNG and SVG, drawn by ``study.figures``) under ``plots/``. Every
section of the paper's results (4.1-4.9) is recomputed from the run summaries
and printed beside the published value and the difference, each figure right
after the table it illustrates; cells more than one paper SD away say so.
Given the folder of run logs, it also folds each log once for the per-agent
balance trajectories.

The output is a function of the inputs only: no timestamps or versions, runs
and keys sorted, figures drawn deterministically. Writing twice gives
identical bytes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from .agreement import CORRECTION, Agreement, describe_figure
from .compare import (
    HIGH_COST, Comparison, MetricCell, compare, format_delta, format_number, format_rate, format_ratio,
    format_value, get_flag, get_runs_by_regime, judge_study,
)
from .figures import sum_counts, write_report_figures
from .paper import (
    BASELINE, METRIC_LABELS, METRICS, REGIME_MEANS, TABLE2_METRICS, Paper, compute_ci95, compute_cohens_d, compute_mean,
    compute_pooled_contracts, load_paper,
)

PLOTS = {
    "distributions": "plots/distributions.png",
    "trajectory": "plots/balance_trajectory.png",
    "contracts": "plots/contract_outcomes.png",
    "actions": "plots/action_composition.png",
}


def write_report(out_dir: str | Path, runs: list[dict[str, Any]], rows: list[dict[str, Any]],
                 runs_dir: str | Path | None = None, paper: Paper | None = None,
                 held_out: list[dict[str, Any]] | None = None,
                 on_step: Callable[[str], None] | None = None) -> Path:
    """Write ``out_dir/report.md`` and its plots from run summaries and regime rows; return the report path.

    ``held_out``: summaries of a larger ensemble on seeds never used to choose a
    rule; its verdict is printed beside the study's. ``on_step(name)`` hears each
    log as it is folded for the trajectories, then "figures" once they are drawn:
    ``report_steps(runs, runs_dir)`` steps in all, for a progress bar.
    """
    if not runs:
        raise ValueError("no runs to report on")
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    paper = paper or load_paper()
    runs = sorted(runs, key=lambda r: (r["regime"], r["seed"], r["run_id"]))
    rows = sorted(rows, key=lambda r: r["regime"])
    comparison = compare(runs, rows, paper)
    verdicts = [("these runs", judge_study(runs, rows, paper))]
    if held_out:
        verdicts.append(("held-out ensemble", judge_study(held_out, None, paper)))
    trajectories, missing_logs = (compute_trajectories(runs, Path(runs_dir), on_step) if runs_dir is not None
                                  else ({}, []))
    write_report_figures(out, PLOTS, get_runs_by_regime(runs), paper, trajectories)
    if on_step is not None:
        on_step("figures")
    lines = report_lines(runs, rows, paper, comparison, verdicts, trajectories, missing_logs, runs_dir)
    path = out / "report.md"
    path.write_text("\n".join(lines).rstrip("\n") + "\n")
    return path


def report_steps(runs: list[dict[str, Any]], runs_dir: str | Path | None) -> int:
    """Return how many times ``write_report`` calls ``on_step``: once per log it folds, once for the figures."""
    return 1 + (0 if runs_dir is None else sum(1 for run in runs if get_log_path(run, Path(runs_dir)).is_file()))


def get_log_path(run: dict[str, Any], runs_dir: Path) -> Path:
    return runs_dir / (run.get("log_file") or f"{run['run_id']}.db")


# --- sections ------------------------------------------------------------------------


def report_lines(runs, rows, paper, comparison, verdicts, trajectories, missing_logs, runs_dir) -> list[str]:
    """Return the report: each section of the paper's results in its order, each figure after its table."""
    by_regime = get_runs_by_regime(runs)
    lines = header_lines(runs, by_regime)
    lines += verdict_lines(verdicts)
    lines += regime_means_lines(rows, by_regime, comparison)
    lines += figure_lines("distributions", "Per-run wealth Gini, inference fees and engine errors, ours beside the "
                                           "paper's runs")
    lines += pooled_contract_lines(by_regime, paper)
    lines += figure_lines("contracts", "Final status of contracts per regime, ours beside the paper's rates")
    lines += dividend_ratio_lines(by_regime, paper)
    lines += high_cost_lines(rows, paper)
    lines += trajectory_lines(trajectories, missing_logs, runs_dir)
    lines += concentration_lines(rows, by_regime, paper)
    lines += uncertainty_lines(by_regime, paper)
    lines += action_lines(by_regime, paper)
    lines += figure_lines("actions", "Share of each action kind per regime, with the paper's shares")
    lines += representative_run_lines(runs, paper)
    lines += table2_lines(rows, paper, comparison)
    for name, agreement in verdicts:
        lines += agreement.to_markdown(level=2, title=f"Every figure tested: {name}").splitlines() + [""]
    return lines


def figure_lines(name: str, caption: str) -> list[str]:
    """Return a figure's Markdown image (the PNG) and a link to its SVG."""
    png = PLOTS[name]
    return [f"![{caption}]({png})", "", f"{caption} ([SVG]({png.removesuffix('.png')}.svg)).", ""]


def header_lines(runs: list[dict], by_regime: dict[str, list[dict]]) -> list[str]:
    seeds = sorted({r["seed"] for r in runs})
    turns = sorted({r.get("turns") for r in runs if r.get("turns") is not None})
    agents = sorted({r.get("agents") for r in runs if r.get("agents") is not None})
    return [
        "# Study report", "",
        f"{len(runs)} runs: " + ", ".join(f"{name} ({len(rs)})" for name, rs in by_regime.items())
        + f"; seeds {format_seeds(seeds)}"
        + (f"; {', '.join(map(str, agents))} agents" if agents else "")
        + (f"; {', '.join(map(str, turns))} turns" if turns else "") + ".", "",
        "Every figure below is recomputed from the run summaries (themselves recomputed from the verified logs) "
        "and printed beside the paper's published value (`Paper`) and the difference (`Diff` = ours - paper). "
        "Dispersion follows the paper's convention: run-level population SD; 95% CI = 1.96 SD / sqrt(n). "
        "A note `> 1 SD` (or `> 2 SD`) marks a mean that differs from the paper's by more than one (two) of the "
        "paper's run-level SDs for that regime.", "",
    ]


def format_seeds(seeds: list[int]) -> str:
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def verdict_lines(verdicts: list[tuple[str, Agreement]]) -> list[str]:
    """Return the headline of each statistical verdict, its worst figures, and the band as context."""
    lines = ["## Verdict", ""]
    for name, a in verdicts:
        lines += [f"- **{name}** ({sum(a.n_runs.values())} runs, seeds {format_seeds(a.seeds)}): {a.headline()}."]
        worst = [f for f in a.worst() if not f.is_indistinguishable]
        if worst:
            lines.append("  Worst: " + "; ".join(describe_figure(f) for f in worst) + ".")
        if a.band:
            lines.append(f"  Context: {a.band}.")
    return lines + ["", f"Multiple testing: {CORRECTION}. Every figure and test is in the sections "
                    "\"Every figure tested\" below.", ""]


def regime_means_lines(rows: list[dict], by_regime: dict[str, list[dict]], cmp: Comparison) -> list[str]:
    """Return Table 4.1: regime means with 95% CIs, beside the paper's."""
    lines = ["## 4.1 Regime-level means", ""]
    compared = set(cmp.regimes)
    for row in rows:
        regime, runs = row["regime"], by_regime.get(row["regime"], [])
        lines += [f"### {regime} (n = {row['n_runs']})", ""]
        if regime not in compared:
            lines += ["The paper has no such regime; our means only.", ""]
        lines += ["| Metric | Ours (mean +/- 95% CI) | Paper | Diff | Paper SD | Note |", "|---|---:|---:|---:|---:|---|"]
        for metric in METRICS:
            ci = compute_ci95([r[REGIME_MEANS[metric]] for r in runs]) if runs else math.nan
            ours = f"{format_value(metric, row[metric])} +/- {format_value(metric, ci)}"
            if regime in compared:
                c = cmp.cell(regime, metric)
                lines.append(f"| {METRIC_LABELS[metric]} | {ours} | {format_value(metric, c.paper)} | "
                             f"{format_delta(metric, c.ours - c.paper)} | {format_value(metric, c.paper_sd)} | "
                             f"{describe_gap(c)} |")
            else:
                lines.append(f"| {METRIC_LABELS[metric]} | {ours} | n/a | n/a | n/a | |")
        lines.append("")
    return lines


def describe_gap(c: MetricCell) -> str:
    flag = get_flag(c)
    return f"{flag} (z {format_number(c.z, '+.2f')})" if flag and c.z is not None and math.isfinite(c.z) else flag


def pooled_contract_lines(by_regime: dict[str, list[dict]], paper: Paper) -> list[str]:
    """Return section 4.2: settlement and default rates pooled over the runs of each regime."""
    lines = ["## 4.2 Contracting: pooled settlement and default rates", "",
             "Settled (defaulted) contracts summed over runs / contracts summed over runs.", "",
             "| Regime | Contracts | Settled | Settlement rate | Paper | Diff | Defaulted | Default rate | Paper | Diff |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for regime, runs in by_regime.items():
        o = compute_pooled_contracts(runs)
        p = paper.figure("pooled_contracts", regime) or {}
        lines.append(
            f"| {regime} | {o['contracts']} ({p.get('contracts', 'n/a')}) | {o['settled']} ({p.get('settled', 'n/a')}) | "
            f"{format_rate(o['settlement_rate'])} | {format_rate(p.get('settlement_rate'))} | "
            f"{format_points(o['settlement_rate'], p.get('settlement_rate'))} | "
            f"{o['defaulted']} ({p.get('defaulted', 'n/a')}) | {format_rate(o['default_rate'])} | "
            f"{format_rate(p.get('default_rate'))} | {format_points(o['default_rate'], p.get('default_rate'))} |")
    return lines + ["", "Counts in parentheses are the paper's (12 runs per regime).", ""]


def format_points(ours: float | None, paper: float | None) -> str:
    """Return the difference of two rates in percentage points."""
    if ours is None or paper is None:
        return "n/a"
    return format_number(100 * (ours - paper), "+.2f") + " pp"


def dividend_ratio_lines(by_regime: dict[str, list[dict]], paper: Paper) -> list[str]:
    """Return section 4.3: dividends / fees, the mean of per-run ratios."""
    lines = ["## 4.3 Dividends / inference fees", "",
             "| Regime | Ours (mean of runs) | Min | Max | Paper | Diff |", "|---|---:|---:|---:|---:|---:|"]
    for regime, runs in by_regime.items():
        ratios = [r["dividends_total"] / r["inference_fees_total"] for r in runs if r["inference_fees_total"]]
        ours = compute_mean(ratios) if ratios else None
        published = paper.figure("dividend_fee_ratio", regime)
        diff = format_number(ours - published, "+.4f") if ours is not None and published is not None else "n/a"
        lines.append(f"| {regime} | {format_ratio(ours)} | {format_ratio(min(ratios) if ratios else None)} | "
                     f"{format_ratio(max(ratios) if ratios else None)} | "
                     f"{'n/a' if published is None else f'{published:.3f}'} | {diff} |")
    return lines + [""]


def high_cost_lines(rows: list[dict], paper: Paper) -> list[str]:
    """Return section 4.4: high_compute_cost minus baseline, on the paper's three headline figures."""
    lines = ["## 4.4 High compute cost vs baseline", ""]
    means = {row["regime"]: row for row in rows}
    if BASELINE not in means or HIGH_COST not in means:
        return lines + ["Needs both the baseline and high_compute_cost regimes; not in this study.", ""]
    lines += ["| Delta (high_compute_cost - baseline) | Ours | Paper | Diff |", "|---|---:|---:|---:|"]
    for metric in ("gini_wealth_mean", "interest_total_mean", "errors_mean"):
        ours = means[HIGH_COST][metric] - means[BASELINE][metric]
        published = paper.figure("high_cost_vs_baseline", metric)
        lines.append(f"| {METRIC_LABELS[metric]} | {format_delta(metric, ours)} | {format_delta(metric, published)} | "
                     f"{format_delta(metric, None if published is None else ours - published)} |")
    return lines + ["", "The paper rounds the interest delta (\"roughly +2,700\").", ""]


def concentration_lines(rows: list[dict], by_regime: dict[str, list[dict]], paper: Paper) -> list[str]:
    """Return section 4.5: block-winner concentration (HHI) beside wealth inequality, per regime."""
    lines = ["## 4.5 Validation concentration", "",
             "Winner HHI is the sum of squared shares of blocks won (1/agents when every agent wins as often, "
             "1 for a single winner); the top winner's share is the largest single agent's share of a run's blocks, "
             "averaged over runs.", "",
             "| Regime | Winner HHI (mean +/- 95% CI) | Paper | Diff | Top winner's share | Wealth Gini | Paper |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    means = {row["regime"]: row for row in rows}
    for regime, runs in by_regime.items():
        hhi = means[regime]["winner_hhi_mean"]
        ci = compute_ci95([r["winner_hhi"] for r in runs])
        published = paper.mean(regime, "winner_hhi_mean")
        published_gini = paper.mean(regime, "gini_wealth_mean")
        top = compute_mean(compute_top_share(r.get("winner_counts") or {}) for r in runs)
        lines.append(f"| {regime} | {format_value('winner_hhi_mean', hhi)} +/- {format_value('winner_hhi_mean', ci)} | "
                     f"{format_value('winner_hhi_mean', published)} | "
                     f"{format_delta('winner_hhi_mean', None if published is None else hhi - published)} | "
                     f"{format_rate(top)} | {format_value('gini_wealth_mean', means[regime]['gini_wealth_mean'])} | "
                     f"{format_value('gini_wealth_mean', published_gini)} |")
    lines.append("")
    compared = [g for g in by_regime if paper.mean(g, "winner_hhi_mean") is not None]
    if compared:
        ours = [means[g]["winner_hhi_mean"] for g in by_regime]
        printed = [paper.mean(g, "winner_hhi_mean") for g in compared]
        lines += [f"Winner HHI spans {min(ours):.3f}-{max(ours):.3f} across our regimes (paper: "
                  f"{min(printed):.3f}-{max(printed):.3f}).", ""]
    if BASELINE in means and HIGH_COST in means:
        factors = {m: (format_factor(means[HIGH_COST][m], means[BASELINE][m]),
                       format_factor(paper.mean(HIGH_COST, m), paper.mean(BASELINE, m)))
                   for m in ("winner_hhi_mean", "gini_wealth_mean")}
        (hhi, hhi_paper), (gini, gini_paper) = factors["winner_hhi_mean"], factors["gini_wealth_mean"]
        lines += [f"high_compute_cost over baseline: winner HHI {hhi} (paper {hhi_paper}), wealth Gini {gini} "
                  f"(paper {gini_paper}). The paper reads this as inequality travelling through fees and dividends "
                  "rather than through winning blocks.", ""]
    return lines


def format_factor(high: float | None, base: float | None) -> str:
    """Return ``high / base`` as "2.50x" ("n/a" when either is missing or the base is 0)."""
    return f"{high / base:.2f}x" if high is not None and base else "n/a"


def compute_top_share(winner_counts: dict[str, int]) -> float:
    """Return the largest single winner's share of the blocks (0.0 without blocks)."""
    total = sum(winner_counts.values())
    return max(winner_counts.values()) / total if total else 0.0


def uncertainty_lines(by_regime: dict[str, list[dict]], paper: Paper) -> list[str]:
    """Return section 4.6: 95% CIs of wealth Gini and errors, and Cohen's d of the Gini shift."""
    lines = ["## 4.6 Uncertainty and effect size", "",
             "| Regime | Metric | Ours (mean +/- 95% CI) | Paper (published) | Diff of means | Diff of CI |",
             "|---|---|---:|---:|---:|---:|"]
    for regime, runs in by_regime.items():
        for metric in ("gini_wealth_mean", "errors_mean"):
            values = [r[REGIME_MEANS[metric]] for r in runs]
            mean, ci = compute_mean(values), compute_ci95(values)
            published = paper.figure("ci95", metric, regime)
            if published is None:
                lines.append(f"| {regime} | {METRIC_LABELS[metric]} | {format_value(metric, mean)} +/- "
                             f"{format_value(metric, ci)} | n/a | n/a | n/a |")
                continue
            p_mean, p_ci = published
            printed = ".3f" if "gini" in metric else ".1f"  # as the paper prints them
            lines.append(f"| {regime} | {METRIC_LABELS[metric]} | {format_value(metric, mean)} +/- "
                         f"{format_value(metric, ci)} | {p_mean:{printed}} +/- {p_ci:{printed}} | "
                         f"{format_delta(metric, mean - p_mean)} | {format_delta(metric, ci - p_ci)} |")
    lines.append("")
    if BASELINE in by_regime and HIGH_COST in by_regime:
        ours = compute_cohens_d([r["gini_wealth"] for r in by_regime[HIGH_COST]],
                                [r["gini_wealth"] for r in by_regime[BASELINE]])
        recomputed = compute_cohens_d([r["gini_wealth"] for r in paper.runs_of(HIGH_COST)],
                                      [r["gini_wealth"] for r in paper.runs_of(BASELINE)])
        published = paper.figure("cohens_d_gini_wealth_high_vs_baseline", "value")
        lines += ["Cohen's d of wealth Gini, high_compute_cost vs baseline (pooled population SD): "
                  f"ours {format_number(ours, '.2f')}; paper ~{published} as printed "
                  f"({format_number(recomputed, '.2f')} recomputed from its per-run rows); "
                  f"diff {format_number(ours - recomputed, '+.2f')}.", ""]
    return lines


def action_lines(by_regime: dict[str, list[dict]], paper: Paper) -> list[str]:
    """Return section 4.7: each regime's action composition, and the engine's rejections by reason."""
    lines = ["## 4.7 Action composition", ""]
    for regime, runs in by_regime.items():
        counts = sum_counts(r.get("action_counts") or {} for r in runs)
        total = sum(counts.values())
        published = paper.figure("action_shares", regime) or {}
        n_paper = published.get("_n_actions")
        lines += [f"### {regime}: {total:,} actions" + (f" (paper: {n_paper:,})" if n_paper else ""), ""]
        if not total:
            lines += ["No action counts in these run summaries.", ""]
            continue
        lines += ["| Action | Count | Share | Paper | Diff |", "|---|---:|---:|---:|---:|"]
        for action in sorted(counts, key=lambda a: (-counts[a], a)):
            share = counts[action] / total
            p = published.get(action)
            lines.append(f"| {action} | {counts[action]:,} | {format_rate(share)} | {format_rate(p)} | "
                         f"{format_points(share, p)} |")
        lines.append("")
    reasons = {regime: sum_counts(r.get("errors_by_reason") or {} for r in runs) for regime, runs in by_regime.items()}
    keys = sorted(set().union(*reasons.values()))
    if keys:
        regimes = list(reasons)
        lines += ["### Engine rejections by action/reason (mean per run)", "",
                  "| Action/reason | " + " | ".join(regimes) + " |", "|---|" + "---:|" * len(regimes)]
        for key in keys:
            cells = [f"{reasons[g].get(key, 0) / len(by_regime[g]):.2f}" for g in regimes]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def representative_run_lines(runs: list[dict], paper: Paper) -> list[str]:
    """Return section 4.8: the runs the paper narrates, when ours has a run of the same name."""
    named = {k: v for k, v in (paper.figure("representative_runs") or {}).items() if not k.startswith("_")}
    ours = {r["run_id"]: r for r in runs}
    lines = ["## 4.8 Representative runs", ""]
    present = [name for name in sorted(named) if name in ours]
    if not present:
        return lines + ["None of the runs the paper narrates is in this study.", ""]
    lines += ["| Run | Figure | Ours | Paper |", "|---|---|---:|---:|"]
    for name in present:
        run, published = ours[name], named[name]
        for key in ("contracts_settled_total", "contracts_defaulted_total", "negative_balance_agents"):
            if key in published:
                lines.append(f"| {name} | {key} | {run.get(key, 'n/a')} | {published[key]} |")
        balances = run.get("balances_final") or {}
        for agent, value in sorted(published.get("balances", {}).items()):
            lines.append(f"| {name} | balance of {agent} | {balances.get(agent, 'n/a')} | {value} |")
    return lines + ["", "Same seed does not mean same draws: our policy's random stream is our own.", ""]


def table2_lines(rows: list[dict], paper: Paper, cmp: Comparison) -> list[str]:
    """Return section 4.9: Table 2's deltas from baseline, ours beside the printed ones."""
    lines = ["## 4.9 Table 2: deltas from baseline", ""]
    means = {row["regime"]: row for row in rows}
    others = [r for r in ("coordination_push", HIGH_COST) if r in means]
    if BASELINE not in means or not others:
        return lines + ["Needs the baseline and at least one other regime; not in this study.", ""]
    big = {(d.regime, d.metric): d for d in cmp.deltas}
    header = "| Metric (mean) | " + " | ".join(f"{r} - baseline: ours | paper | same sign" for r in others) + " |"
    lines += [header, "|---|" + "---:|---:|---|" * len(others)]
    for metric in TABLE2_METRICS:
        cells = []
        for regime in others:
            ours = means[regime][metric] - means[BASELINE][metric]
            printed = paper.figure("table2_deltas", regime, metric)
            check = big.get((regime, metric))
            same = "n/a" if check is None else ("yes" if check.is_same_sign else ("**NO**" if check.is_big else "no"))
            cells.append(f"{format_delta(metric, ours)} | {format_delta(metric, printed)} | {same}")
        lines.append(f"| {METRIC_LABELS[metric]} | " + " | ".join(cells) + " |")
    return lines + ["", "Paper values are as printed (rounded); the sign check uses the paper's unrounded means. "
                    "**NO** marks a sign that differs on a delta larger than the baseline's paper SD.", ""]


def trajectory_lines(trajectories, missing_logs, runs_dir) -> list[str]:
    """Return the balance-trajectory figure, or why it is not drawn."""
    if trajectories:
        lines = figure_lines("trajectory", "Each agent's balance by turn per regime, core owners against non-owners")
    elif runs_dir is None:
        lines = ["Balance trajectories need the run logs; not drawn (pass the runs folder to draw them).", ""]
    else:
        lines = ["Balance trajectories: no run log found in the runs folder; not drawn.", ""]
    if missing_logs:
        lines += ["Logs not found for the trajectories: " + ", ".join(missing_logs) + ".", ""]
    return lines


# --- trajectories ---------------------------------------------------------------------


def compute_trajectory(path: Path) -> dict[str, Any]:
    """Return each agent's balance at the end of every sealed turn of the log at ``path``, and the core owners.

    ``{"turns": [0, 1, ...], "balances": {agent: [balance per turn]}, "owners": [agents owning a core at the
    end]}``, folded from the log in one pass.
    """
    from ..events.types import TurnSealed
    from ..ledger.replay import positioned_events
    from ..ledger.store import Store
    from ..projections.reducers import apply_event
    from ..projections.state import State

    state, turns, balances = State(), [], {}
    with Store(path) as store:
        for seq, turn, event in positioned_events(store):
            apply_event(state, event, seq, turn)
            if isinstance(event, TurnSealed):
                turns.append(event.turn)
                for agent in state.agents:
                    balances.setdefault(agent, []).append(state.accounts[agent].balance)
    return {"turns": turns, "balances": balances, "owners": sorted({owner for owner, _ in state.cores.values()})}


def compute_trajectories(runs: list[dict], runs_dir: Path, on_step: Callable[[str], None] | None = None,
                         ) -> tuple[dict[str, list[dict]], list[str]]:
    """Return {regime: [trajectory per run]} from the logs in ``runs_dir``, and the logs not found."""
    trajectories: dict[str, list[dict]] = {}
    missing = []
    for run in runs:
        path = get_log_path(run, runs_dir)
        if not path.is_file():
            missing.append(path.name)
            continue
        trajectories.setdefault(run["regime"], []).append(compute_trajectory(path))
        if on_step is not None:
            on_step(path.name)
    return trajectories, missing


__all__ = ["write_report", "report_steps", "compute_trajectory", "compute_trajectories", "PLOTS"]
