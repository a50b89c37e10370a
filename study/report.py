"""The study's report: the paper's analysis regenerated from our runs, beside the paper's figures.

``write_report(out_dir, runs, rows, runs_dir=None)`` writes ``report.md`` and
PNG plots under ``plots/``. Every section of the paper's results (4.1-4.9) is
recomputed from the run summaries and printed beside the published value and
the difference; cells more than one paper SD away say so. Given the folder of
run logs, it also folds each log turn by turn for the balance trajectories.

The output is a function of the inputs only: no timestamps or versions, runs
and keys sorted, fixed figure sizes and matplotlib defaults, PNGs written
without the "Software" tag. Writing twice gives identical bytes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .compare import (
    HIGH_COST, Comparison, MetricCell, compare, format_delta, format_number, format_rate, format_ratio,
    format_value, get_flag, get_runs_by_regime,
)
from .paper import (
    BASELINE, METRIC_LABELS, METRICS, REGIME_MEANS, TABLE2_METRICS, Paper, compute_ci95, compute_cohens_d, compute_mean,
    compute_pooled_contracts, load_paper,
)

PLOT_DPI = 100
PLOTS = {
    "distributions": "plots/distributions.png",
    "trajectory": "plots/balance_trajectory.png",
    "contracts": "plots/contract_outcomes.png",
    "actions": "plots/action_composition.png",
}
STATUS_ORDER = ("proposed", "countersigned", "active", "disputed", "settled", "defaulted")
STATUS_COLORS = {"proposed": "#c7c7c7", "countersigned": "#9ecae1", "active": "#3182bd", "disputed": "#fdae6b",
                 "settled": "#31a354", "defaulted": "#de2d26"}
DISTRIBUTION_METRICS = (("gini_wealth", "Wealth Gini"), ("inference_fees_total", "Inference fees"),
                        ("total_errors", "Engine errors"))


def write_report(out_dir: str | Path, runs: list[dict[str, Any]], rows: list[dict[str, Any]],
                 runs_dir: str | Path | None = None, paper: Paper | None = None) -> Path:
    """Write ``out_dir/report.md`` and its plots from run summaries and regime rows; return the report path."""
    if not runs:
        raise ValueError("no runs to report on")
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    paper = paper or load_paper()
    runs = sorted(runs, key=lambda r: (r["regime"], r["seed"], r["run_id"]))
    rows = sorted(rows, key=lambda r: r["regime"])
    comparison = compare(runs, rows, paper)
    trajectories, missing_logs = (compute_trajectories(runs, Path(runs_dir)) if runs_dir is not None else ({}, []))
    write_plots(out, runs, paper, trajectories)
    lines = report_lines(runs, rows, paper, comparison, trajectories, missing_logs, runs_dir)
    path = out / "report.md"
    path.write_text("\n".join(lines).rstrip("\n") + "\n")
    return path


# --- sections ------------------------------------------------------------------------


def report_lines(runs, rows, paper, comparison, trajectories, missing_logs, runs_dir) -> list[str]:
    by_regime = get_runs_by_regime(runs)
    lines = header_lines(runs, by_regime)
    lines += verdict_lines(comparison)
    lines += regime_means_lines(rows, by_regime, comparison)
    lines += pooled_contract_lines(by_regime, paper)
    lines += dividend_ratio_lines(by_regime, paper)
    lines += high_cost_lines(rows, paper)
    lines += uncertainty_lines(by_regime, paper)
    lines += action_lines(by_regime, paper)
    lines += representative_run_lines(runs, paper)
    lines += table2_lines(rows, paper, comparison)
    lines += ["## Comparison with the paper, cell by cell", ""]
    lines += comparison.to_markdown(level=3).splitlines() + [""]
    lines += plot_lines(trajectories, missing_logs, runs_dir)
    return lines


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


def verdict_lines(cmp: Comparison) -> list[str]:
    lines = [f"## Verdict: issue 7's acceptance bar is {cmp.verdict}", "",
             "| Criterion | Result | Detail |", "|---|---|---|"]
    for c in cmp.criteria:
        result = "not evaluated" if c.passed is None else ("pass" if c.passed else "**FAIL**")
        lines.append(f"| {c.name} | {result} | {c.detail} |")
    return lines + ["", "Details in the last sections.", ""]


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


def sum_counts(counters) -> dict[str, int]:
    total: dict[str, int] = {}
    for counter in counters:
        for key, value in counter.items():
            total[key] = total.get(key, 0) + value
    return dict(sorted(total.items()))


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


def plot_lines(trajectories, missing_logs, runs_dir) -> list[str]:
    lines = ["## Plots", "",
             f"![Per-run distributions of wealth Gini, fees and errors, ours beside the paper's]({PLOTS['distributions']})",
             "", f"![Final status of contracts, pooled per regime]({PLOTS['contracts']})", "",
             f"![Action composition per regime]({PLOTS['actions']})", ""]
    if trajectories:
        lines += [f"![Mean balance by turn, with the runs' 95% CI and the mean agent range]({PLOTS['trajectory']})", ""]
    elif runs_dir is None:
        lines += ["Balance trajectories need the run logs; not drawn (pass the runs folder to draw them).", ""]
    else:
        lines += ["Balance trajectories: no run log found in the runs folder; not drawn.", ""]
    if missing_logs:
        lines += ["Logs not found for the trajectories: " + ", ".join(missing_logs) + ".", ""]
    return lines


# --- trajectories ---------------------------------------------------------------------


def compute_trajectory(path: Path) -> list[dict[str, float]]:
    """Return, for each sealed turn of the log at ``path``, the mean, min and max agent balance."""
    from ..events.types import TurnSealed
    from ..ledger.replay import positioned_events
    from ..ledger.store import Store
    from ..projections.reducers import apply_event
    from ..projections.state import State

    state, points = State(), []
    with Store(path) as store:
        for seq, turn, event in positioned_events(store):
            apply_event(state, event, seq, turn)
            if isinstance(event, TurnSealed):
                balances = [state.accounts[a].balance for a in state.agents]
                points.append({"turn": event.turn, "mean": sum(balances) / len(balances),
                               "min": min(balances), "max": max(balances)})
    return points


def compute_trajectories(runs: list[dict], runs_dir: Path) -> tuple[dict[str, list[list[dict]]], list[str]]:
    """Return {regime: [trajectory per run]} from the logs in ``runs_dir``, and the logs not found."""
    trajectories: dict[str, list[list[dict]]] = {}
    missing = []
    for run in runs:
        path = runs_dir / (run.get("log_file") or f"{run['run_id']}.db")
        if not path.is_file():
            missing.append(path.name)
            continue
        trajectories.setdefault(run["regime"], []).append(compute_trajectory(path))
    return trajectories, missing


# --- plots ---------------------------------------------------------------------------------


def write_plots(out: Path, runs: list[dict], paper: Paper, trajectories: dict[str, list[list[dict]]]) -> None:
    """Draw the report's PNGs, deterministically (matplotlib defaults, fixed sizes, no metadata)."""
    import matplotlib
    import matplotlib.style

    by_regime = get_runs_by_regime(runs)
    with matplotlib.rc_context():
        matplotlib.style.use("default")
        matplotlib.rcParams.update({"svg.hashsalt": "simledger", "font.size": 9})
        save(plot_distributions(by_regime, paper), out / PLOTS["distributions"])
        save(plot_contract_outcomes(by_regime), out / PLOTS["contracts"])
        save(plot_action_composition(by_regime), out / PLOTS["actions"])
        trajectory_path = out / PLOTS["trajectory"]
        if trajectories:
            save(plot_trajectories(trajectories), trajectory_path)
        else:
            trajectory_path.unlink(missing_ok=True)


def new_figure(width: float, height: float, **margins: float):
    """Return a figure with fixed margins (a layout engine would cost an extra draw per plot)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=PLOT_DPI)
    fig.subplots_adjust(**{"left": 0.08, "right": 0.97, "top": 0.92, "bottom": 0.12, **margins})
    return fig


def save(fig, path: Path) -> None:
    """Write ``fig`` as a PNG carrying no software version or date."""
    fig.savefig(path, format="png", dpi=PLOT_DPI, metadata={"Software": None})


def compute_offsets(n: int, width: float = 0.24) -> list[float]:
    """Return evenly spread horizontal offsets for a strip of ``n`` points (deterministic jitter)."""
    if n <= 1:
        return [0.0] * n
    return [-width / 2 + width * i / (n - 1) for i in range(n)]


def plot_distributions(by_regime: dict[str, list[dict]], paper: Paper):
    """Return box-and-strip plots of per-run wealth Gini, fees and errors, ours beside the paper's."""
    regimes = list(by_regime)
    fig = new_figure(4.0 * len(DISTRIBUTION_METRICS), 4.2, left=0.06, right=0.98, bottom=0.16, wspace=0.25)
    axes = fig.subplots(1, len(DISTRIBUTION_METRICS))
    for ax, (column, title) in zip(axes, DISTRIBUTION_METRICS):
        for i, regime in enumerate(regimes):
            series = [("ours", [r[column] for r in by_regime[regime]], "tab:blue", -0.2),
                      ("paper", [r[column] for r in paper.runs_of(regime)], "tab:gray", 0.2)]
            for label, values, color, shift in series:
                if not values:
                    continue
                box = ax.boxplot(values, positions=[i + shift], widths=0.32, patch_artist=True, showfliers=False,
                                 manage_ticks=False)
                for patch in box["boxes"]:
                    patch.set(facecolor=color, alpha=0.25, edgecolor=color)
                xs = [i + shift + o for o in compute_offsets(len(values))]
                ax.scatter(xs, sorted(values), s=10, color=color, zorder=3, label=label if i == 0 else None)
        ax.set_xticks(range(len(regimes)), [r.replace("_", "\n") for r in regimes])
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="upper left", frameon=False)
    return fig


def plot_trajectories(trajectories: dict[str, list[list[dict]]]):
    """Return the mean balance by turn per regime, with the runs' 95% CI and the mean min-max agent range."""
    fig = new_figure(7.5, 4.5, left=0.11)
    ax = fig.subplots()
    for i, regime in enumerate(sorted(trajectories)):
        color = f"C{i}"
        runs = trajectories[regime]
        turns = sorted(set.intersection(*({p["turn"] for p in run} for run in runs)))
        at = [{p["turn"]: p for p in run} for run in runs]
        mean = [compute_mean(r[t]["mean"] for r in at) for t in turns]
        ci = [compute_ci95([r[t]["mean"] for r in at]) for t in turns]
        low = [compute_mean(r[t]["min"] for r in at) for t in turns]
        high = [compute_mean(r[t]["max"] for r in at) for t in turns]
        ax.plot(turns, mean, color=color, label=f"{regime} (n = {len(runs)})")
        ax.fill_between(turns, [m - c for m, c in zip(mean, ci)], [m + c for m, c in zip(mean, ci)],
                        color=color, alpha=0.3, linewidth=0)
        ax.fill_between(turns, low, high, color=color, alpha=0.08, linewidth=0)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("turn")
    ax.set_ylabel("balance (tokens)")
    ax.set_title("Mean agent balance by turn (dark band: 95% CI over runs; light: mean min-max agent)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return fig


def get_status_order(statuses: set[str]) -> list[str]:
    return [s for s in STATUS_ORDER if s in statuses] + sorted(statuses - set(STATUS_ORDER))


def plot_contract_outcomes(by_regime: dict[str, list[dict]]):
    """Return stacked bars of the contracts' final statuses, as shares of each regime's contracts."""
    counts = {g: sum_counts(r.get("contracts_final_status") or {} for r in runs) for g, runs in by_regime.items()}
    statuses = get_status_order(set().union(*counts.values()))
    return plot_stacked_shares(counts, statuses, "Final status of contracts (share of all contracts of the regime)",
                               STATUS_COLORS)


def plot_action_composition(by_regime: dict[str, list[dict]]):
    """Return stacked bars of each regime's actions, as shares of all its actions."""
    counts = {g: sum_counts(r.get("action_counts") or {} for r in runs) for g, runs in by_regime.items()}
    actions = sorted(set().union(*counts.values()))
    return plot_stacked_shares(counts, actions, "Action composition (share of all actions of the regime)")


def plot_stacked_shares(counts: dict[str, dict[str, int]], keys: list[str], title: str,
                        colors: dict[str, str] | None = None):
    """Return one horizontal bar per regime, split into the shares of ``keys`` (legend on the right)."""
    import matplotlib

    palette = matplotlib.colormaps["tab20"]
    height = max(2.4, 1.0 + 0.55 * len(counts), 0.8 + 0.22 * len(keys))
    fig = new_figure(8.5, height, left=0.2, right=0.76, top=1 - 0.45 / height, bottom=0.5 / height)
    ax = fig.subplots()
    regimes = list(counts)
    left = [0.0] * len(regimes)
    for i, key in enumerate(keys):
        shares = [counts[g].get(key, 0) / (sum(counts[g].values()) or 1) for g in regimes]
        color = (colors or {}).get(key) or palette(i % 20)
        ax.barh(range(len(regimes)), shares, left=left, color=color, label=key)
        left = [a + b for a, b in zip(left, shares)]
    ax.set_yticks(range(len(regimes)), regimes)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title(title)
    if keys:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


__all__ = ["write_report", "compute_trajectory", "compute_trajectories", "PLOTS"]
