"""The study's figures: drawn for a reader, deterministic, each written as PNG and SVG.

Every figure shows the paper's published values beside or over ours wherever the
paper printed them (section numbers in the titles), uses one colour per
contract status throughout (``STATUS_COLORS``), and is drawn with matplotlib's
defaults, fixed sizes and no date or version in the files, so that drawing
twice gives identical bytes.

``write_report_figures`` draws the report's four figures; ``plot_sweep_metrics``
draws one sweep figure per swept knob, one panel per metric.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any, Callable, Iterator

from ..projections.state import ContractStatus
from .paper import Paper

PLOT_DPI = 100
FORMATS = ("png", "svg")
PAPER_TURNS = 40  # the paper's runs are 40 turns (section 3.1): its final balances are at turn 40
OURS_COLOR, PAPER_COLOR = "#0072B2", "#555555"
OWNER_COLOR, NON_OWNER_COLOR = "#D55E00", "#0072B2"
# Okabe-Ito colours, one per status, none alike: the two outcomes the paper counts
# (settled, defaulted) are green and vermillion; offers nobody took (expired) are grey.
# "settled on confirmation": settled in the action step by the principals' confirmations (R17); the
# paper's settled count (a turn's settlement list, section 4.2) does not include these, so they get their own colour.
CONFIRMED = "settled on confirmation"
STATUS_COLORS = {
    ContractStatus.SETTLED: "#009E73", CONFIRMED: "#8FD9C1", ContractStatus.DEFAULTED: "#D55E00",
    ContractStatus.DISPUTED: "#CC79A7", ContractStatus.ACTIVE: "#0072B2", ContractStatus.COUNTERSIGNED: "#56B4E9",
    ContractStatus.PROPOSED: "#F0E442", ContractStatus.EXPIRED: "#A0A0A0",
}
EXTRA_STATUS_COLORS = ("#E69F00", "#000000", "#8C564B", "#17BECF")  # statuses this list does not know
NOT_PUBLISHED_COLOR = "#EEEEEE"
# (run-summary key, regime-summary column, title): the per-run metrics drawn beside the paper's runs
DISTRIBUTION_METRICS = (("gini_wealth", "gini_wealth_mean", "Wealth Gini"),
                        ("inference_fees_total", "fees_total_mean", "Inference fees"),
                        ("total_errors", "errors_mean", "Engine errors"))
PRINTED_COLOR = "#000000"


# --- drawing and saving ------------------------------------------------------------


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Draw with matplotlib's default style, a fixed SVG id salt and text kept as text in SVGs."""
    import matplotlib
    import matplotlib.style

    with matplotlib.rc_context():
        matplotlib.style.use("default")
        matplotlib.rcParams.update({"svg.hashsalt": "simledger", "svg.fonttype": "none", "font.size": 9})
        yield


def new_figure(width: float, height: float, **margins: float):
    """Return a figure with fixed margins (a layout engine would cost an extra draw per plot)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=PLOT_DPI)
    fig.subplots_adjust(**{"left": 0.08, "right": 0.97, "top": 0.9, "bottom": 0.12, **margins})
    return fig


def save(fig, png_path: Path) -> list[Path]:
    """Write ``fig`` as PNG and, beside it, SVG, with no software version or date in either; return both."""
    written = []
    for fmt in FORMATS:
        path = png_path.with_suffix("." + fmt)
        metadata = {"Software": None} if fmt == "png" else {"Creator": None, "Date": None}
        fig.savefig(path, format=fmt, dpi=PLOT_DPI, metadata=metadata)
        written.append(path)
    return written


def remove(png_path: Path) -> None:
    """Remove a figure's PNG and SVG (a figure the inputs no longer support)."""
    for fmt in FORMATS:
        png_path.with_suffix("." + fmt).unlink(missing_ok=True)


def format_share(value: float) -> str:
    return f"{100 * value:.1f}%"


def wrap_label(text: str, width: int) -> str:
    """Return ``text`` broken into lines of at most ``width`` characters, at ``__`` first, then at ``_``.

    Sweep scenarios are named ``baseline__base_inference_rate=3__interest_rate_per_turn=0.02``: one
    line of that overlaps its neighbours' titles.
    """
    tokens = [(piece, "__" if i and not j else "")  # (piece, what joins it to the one before)
              for i, part in enumerate(text.split("__")) for j, piece in enumerate(split_long(part, width))]
    lines, current = [], ""
    for piece, glue in tokens:
        if current and len(current + glue + piece) > width:
            lines.append(current)
            current = piece
        else:
            current += glue + piece
    return "\n".join(lines + [current])


def split_long(part: str, width: int) -> list[str]:
    """Return ``part`` split at underscores (kept at the end of each piece) into pieces of at most ``width``."""
    pieces, current = [], ""
    for word in part.split("_"):
        joined = f"{current}_{word}" if current else word
        if current and len(joined) >= width:  # a piece ends in "_": keep room for it
            pieces.append(current + "_")
            current = word
        else:
            current = joined
    pieces.append(current)
    return [p[i:i + width] for p in pieces for i in range(0, len(p), width)]


def count_lines(labels) -> int:
    return max([label.count("\n") + 1 for label in labels] or [1])


def sum_counts(counters) -> dict[str, int]:
    """Return the key-wise sum of count dicts, keys sorted."""
    total: dict[str, int] = {}
    for counter in counters:
        for key, value in counter.items():
            total[key] = total.get(key, 0) + value
    return dict(sorted(total.items()))


def get_status_colors(statuses) -> dict[str, str]:
    """Return a colour for each status: the fixed palette, then spare colours in name order (distinct up to four)."""
    unknown = sorted(set(statuses) - set(STATUS_COLORS))
    spare = {s: EXTRA_STATUS_COLORS[i % len(EXTRA_STATUS_COLORS)] for i, s in enumerate(unknown)}
    return {**STATUS_COLORS, **spare}


def get_status_order(statuses) -> list[str]:
    """Return the statuses present: the paper's two outcomes first, then the rest of the palette's order."""
    return [s for s in STATUS_COLORS if s in statuses] + sorted(set(statuses) - set(STATUS_COLORS))


# --- the report's figures -----------------------------------------------------------


def write_report_figures(out: Path, plots: dict[str, str], by_regime: dict[str, list[dict]], paper: Paper,
                         trajectories: dict[str, list[dict]]) -> None:
    """Draw the report's figures into ``out`` at the PNG paths of ``plots`` (an SVG beside each)."""
    with figure_style():
        save(plot_distributions(by_regime, paper), out / plots["distributions"])
        save(plot_contract_outcomes(by_regime, paper), out / plots["contracts"])
        save(plot_action_composition(by_regime, paper), out / plots["actions"])
        if trajectories:
            save(plot_trajectories(trajectories, paper), out / plots["trajectory"])
        else:
            remove(out / plots["trajectory"])


def compute_offsets(n: int, width: float = 0.24) -> list[float]:
    """Return evenly spread horizontal offsets for a strip of ``n`` points (deterministic jitter)."""
    if n <= 1:
        return [0.0] * n
    return [-width / 2 + width * i / (n - 1) for i in range(n)]


def plot_distributions(by_regime: dict[str, list[dict]], paper: Paper):
    """Return box-and-strip plots of per-run wealth Gini, fees and errors, ours beside the paper's runs."""
    regimes = list(by_regime)
    panel = max(4.0, 1.3 * len(regimes))  # inches: room for each regime's box pair and its label
    ticks = [wrap_label(r, int(10 * panel / len(regimes))) for r in regimes]
    height = 3.6 + 0.16 * count_lines(ticks)
    fig = new_figure(panel * len(DISTRIBUTION_METRICS), height, left=0.06, right=0.98,
                     bottom=(0.3 + 0.16 * count_lines(ticks)) / height, top=1 - 0.35 / height, wspace=0.25)
    axes = fig.subplots(1, len(DISTRIBUTION_METRICS))
    for ax, (column, regime_column, title) in zip(axes, DISTRIBUTION_METRICS):
        for i, regime in enumerate(regimes):
            draw_printed_mean(ax, i + 0.2 + 0.22, paper, regime, regime_column, first=i == 0)
            series = [("ours", [r[column] for r in by_regime[regime]], OURS_COLOR, -0.2),
                      ("paper's runs", [r[column] for r in paper.runs_of(regime)], PAPER_COLOR, 0.2)]
            for label, values, color, shift in series:
                if not values:
                    continue
                box = ax.boxplot(values, positions=[i + shift], widths=0.32, patch_artist=True, showfliers=False,
                                 manage_ticks=False)
                for patch in box["boxes"]:
                    patch.set(facecolor=color, alpha=0.25, edgecolor=color)
                xs = [i + shift + o for o in compute_offsets(len(values))]
                ax.scatter(xs, sorted(values), s=10, color=color, zorder=3, label=label if i == 0 else None)
        ax.set_xticks(range(len(regimes)), ticks)
        ax.set_title(f"{title} per run")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="center left", frameon=False, fontsize=8)
    return fig


def draw_printed_mean(ax, x: float, paper: Paper, regime: str, column: str, first: bool) -> None:
    """Mark the regime mean the paper prints (Table 4.1) and, where it prints one, its 95% CI (section 4.6)."""
    mean = paper.mean(regime, column)
    if mean is None:
        return
    printed = paper.figure("ci95", column, regime)
    ax.errorbar([x], [mean], yerr=[[printed[1]], [printed[1]]] if printed else None, fmt="D", markersize=4,
                color=PRINTED_COLOR, capsize=3, linewidth=1, zorder=4,
                label="paper's printed mean (4.1) ± 95% CI (4.6)" if first else None)


def split_settled(counted: dict[str, int], runs: list[dict]) -> dict[str, int]:
    """Return final-status counts with "settled" cut into what the paper counts as settled and the rest.

    The paper's settled figure is the turn's settlement list (``contracts_settled_total``);
    a contract its principals' confirmations settled in the action step ends settled too,
    but is not in that count, so the bar shows it apart instead of comparing unlike things.
    """
    if not all("contracts_settled_total" in r for r in runs):
        return counted
    paper_settled = sum(r["contracts_settled_total"] for r in runs)
    on_confirmation = counted.get(ContractStatus.SETTLED, 0) - paper_settled
    if on_confirmation <= 0:
        return counted
    return {**counted, ContractStatus.SETTLED: paper_settled, CONFIRMED: on_confirmation}


def plot_contract_outcomes(by_regime: dict[str, list[dict]], paper: Paper):
    """Return, per regime, a bar of our contracts' final statuses beside the paper's pooled rates (section 4.2)."""
    counts = {g: split_settled(sum_counts(r.get("contracts_final_status") or {} for r in runs), runs)
              for g, runs in by_regime.items()}
    statuses = get_status_order(set().union(*counts.values()))
    colors = get_status_colors(statuses)
    bars: list[tuple[str, dict[str, float], int]] = []  # (label, status -> share, contracts)
    for regime, counted in counts.items():
        total = sum(counted.values())
        bars.append((wrap_label(f"{regime}: ours", 26), {s: counted.get(s, 0) / (total or 1) for s in statuses},
                     total))
        published = paper.figure("pooled_contracts", regime)
        if published:
            shares = {ContractStatus.SETTLED: published["settlement_rate"],
                      ContractStatus.DEFAULTED: published["default_rate"]}
            bars.append(("paper", shares, published["contracts"]))
    row = max(0.42, 0.1 + 0.15 * count_lines(label for label, _, _ in bars))
    height = 1.85 + row * len(bars)
    fig = new_figure(9.5, height, left=0.2, right=0.8, top=1 - 0.4 / height, bottom=1.1 / height)
    ax = fig.subplots()
    for y, (label, shares, total) in enumerate(bars):
        left = 0.0
        for status in statuses:
            share = shares.get(status, 0.0)
            if share:
                ax.barh(y, share, left=left, height=0.8, color=colors[status], edgecolor="white", linewidth=0.4)
            left += share
        if label.startswith("paper"):  # the paper prints settled and defaulted only
            ax.barh(y, 1 - left, left=left, height=0.8, color=NOT_PUBLISHED_COLOR, hatch="///", edgecolor="#BBBBBB",
                    linewidth=0)
        ax.text(1.01, y, f"{format_share(shares.get(ContractStatus.SETTLED, 0))} settled\n"
                         f"{format_share(shares.get(ContractStatus.DEFAULTED, 0))} defaulted, of {total:,}",
                va="center", fontsize=8, transform=ax.get_yaxis_transform())
        if label.startswith("paper") and y + 1 < len(bars):
            ax.axhline(y + 0.5, color="#777777", linewidth=0.8)
    ax.set_yticks(range(len(bars)), [label for label, _, _ in bars])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(percent_formatter())
    beside = ", beside the paper's (section 4.2)" if any(label == "paper" for label, _, _ in bars) else ""
    ax.set_title(f"Final status of contracts pooled over each regime's runs{beside}")
    handles = [legend_patch(colors[s], "settled in a turn's settlement (the paper's count)" if s == ContractStatus.SETTLED else s)
               for s in statuses]
    if any(label.startswith("paper") for label, _, _ in bars):
        handles.append(legend_patch(NOT_PUBLISHED_COLOR, "not broken down by the paper", hatch="///"))
    if handles:  # runs too short to make a contract have no statuses to name
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), frameon=False, fontsize=8,
                   columnspacing=1.2, handlelength=1.5)
    return fig


def percent_formatter():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1, decimals=0)


def legend_patch(color: str, label: str, hatch: str | None = None):
    from matplotlib.patches import Patch

    return Patch(facecolor=color, edgecolor="#BBBBBB" if hatch else color, hatch=hatch, label=label)


def plot_action_composition(by_regime: dict[str, list[dict]], paper: Paper):
    """Return one panel per regime: each action's share of all actions, the paper's shares as markers (4.7)."""
    counts = {g: sum_counts(r.get("action_counts") or {} for r in runs) for g, runs in by_regime.items()}
    overall = sum_counts(counts.values())
    actions = sorted(overall, key=lambda a: (-overall[a], a))  # one order on every panel
    regimes = list(counts)
    titles = {g: wrap_label(g, 30) for g in regimes}
    title_space = 0.45 + 0.16 * (count_lines(titles.values()) + 1)
    height = 0.9 + title_space + 0.24 * max(len(actions), 1)
    width = 3.3 * len(regimes) + 1.5
    fig = new_figure(width, height, left=1.45 / width, right=0.98,
                     top=1 - title_space / height, bottom=0.45 / height, wspace=0.08)
    axes = fig.subplots(1, len(regimes), sharey=True, squeeze=False)[0]
    top = max([c / (sum(counted.values()) or 1) for counted in counts.values() for c in counted.values()] +
              [v for g in regimes for k, v in (paper.figure("action_shares", g) or {}).items()
               if not k.startswith("_")] + [0.05])
    for ax, regime in zip(axes, regimes):
        total = sum(counts[regime].values()) or 1
        shares = [counts[regime].get(a, 0) / total for a in actions]
        ax.barh(range(len(actions)), shares, height=0.7, color=OURS_COLOR, alpha=0.8,
                label="ours" if ax is axes[0] else None)
        published = paper.figure("action_shares", regime) or {}
        marked = [(i, published[a]) for i, a in enumerate(actions) if a in published]
        if marked:
            ax.scatter([v for _, v in marked], [i for i, _ in marked], marker="D", s=28, color="black", zorder=3,
                       label="paper (4.7)")
        ax.set_title(f"{titles[regime]}\n{sum(counts[regime].values()):,} actions"
                     + (f" (paper {published['_n_actions']:,})" if "_n_actions" in published else ""))
        ax.set_xlim(0, top * 1.12)
        ax.xaxis.set_major_formatter(percent_formatter())
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(actions)), actions)
    axes[0].invert_yaxis()
    marked = any(paper.figure("action_shares", g) for g in regimes)
    fig.suptitle("Share of each action kind in all actions"
                 + (" (diamonds: the shares the paper prints, section 4.7)" if marked else ""), y=1 - 0.12 / height)
    handles, labels = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    axes[-1].legend(handles, labels, loc="lower right", frameon=True, fontsize=8)
    return fig


def plot_trajectories(trajectories: dict[str, list[dict]], paper: Paper):
    """Return one panel per regime: every agent's balance by turn, core owners against non-owners.

    Thin lines are single agents of single runs; thick lines the median over the
    group's agent-runs. Where the paper names a run of the regime, its published
    final balances are marked at its last turn (turn 40).
    """
    regimes = sorted(trajectories)
    fig = new_figure(4.4 * len(regimes), 4.6, left=0.26 / len(regimes), right=0.98, top=0.82, bottom=0.2,
                     wspace=0.22)
    axes = fig.subplots(1, len(regimes), squeeze=False)[0]
    for ax, regime in zip(axes, regimes):
        runs = trajectories[regime]
        for owner, color, label in ((False, NON_OWNER_COLOR, "non-owners"), (True, OWNER_COLOR, "core owners")):
            lines = [(run["turns"], series) for run in runs for agent, series in run["balances"].items()
                     if (agent in run["owners"]) == owner]
            for turns, series in lines:
                ax.plot(turns, series, color=color, linewidth=0.5, alpha=0.22)
            if lines:
                turns = min((t for t, _ in lines), key=len)
                median = [compute_median([series[i] for _, series in lines]) for i in range(len(turns))]
                ax.plot(turns, median, color=color, linewidth=2.2, label=label)
        named = draw_paper_balances(ax, regime, runs, paper)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_title(wrap_label(f"{regime} ({len(runs)} runs)", 40)
                     + "".join(f"\ndiamonds: paper's {name}" for name in named),
                     fontsize=9)
        ax.set_xlabel("turn")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("balance (tokens)")
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle("Each agent's balance by turn: agents owning a compute core at the end of the run vs the rest "
                 "(thin: one agent of one run; thick: median)", y=0.97)
    return fig


def draw_paper_balances(ax, regime: str, runs: list[dict], paper: Paper) -> list[str]:
    """Mark the final balances the paper prints for its named runs of ``regime`` (4.4, 4.8); return their names."""
    last = max(run["turns"][-1] for run in runs)
    if last != PAPER_TURNS:
        return []
    named = [(name, published) for name, published in sorted((paper.figure("representative_runs") or {}).items())
             if name.startswith(regime + "_") and published.get("balances")]
    for _, published in named:
        values = sorted(published["balances"].values())
        ax.scatter([last] * len(values), values, marker="D", s=26, facecolor="white", edgecolor="black", zorder=4,
                   label="final balances the paper prints for one run (4.4, 4.8)")
    return [name for name, _ in named]


def compute_median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --- sweep figures ----------------------------------------------------------------------


# The range a metric's values can take (a CI band never leaves it); unlisted: any value.
METRIC_RANGES = {
    "gini_wealth": (0.0, 1.0), "gini_balance": (0.0, 1.0), "winner_hhi": (0.0, 1.0), "settlement_rate": (0.0, 1.0),
    "inference_fees_total": (0.0, math.inf), "interest_total": (0.0, math.inf), "dividends_total": (0.0, math.inf),
    "total_errors": (0.0, math.inf), "contracts_total": (0.0, math.inf), "blocks_produced": (0.0, math.inf),
}


def clip(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def plot_sweep_metrics(knob: str, metrics: list[tuple[str, str]],
                       groups: dict[str, dict[str, list[tuple[Any, float, float | None]]]],
                       format_value: Callable[[Any], str], path: Path, note: str) -> list[Path]:
    """Draw one panel per metric of means and 95% CIs against ``knob``; write PNG and SVG at ``path``.

    ``metrics`` are (key, title) pairs; ``groups`` maps a line's label to, per metric key, its points
    (knob value, mean, CI half-width or None).
    """
    columns = min(3, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    legend_rows = 0 if len(groups) <= 1 else math.ceil(len(groups) / 2)
    height = 3.0 * rows + 0.7 + 0.22 * legend_rows
    with figure_style():
        fig = new_figure(4.0 * columns, height, left=0.08, right=0.98, top=1 - 0.6 / height,
                         bottom=(0.5 + 0.22 * legend_rows + 0.1) / height, wspace=0.28, hspace=0.45)
        axes = fig.subplots(rows, columns, squeeze=False).flatten()
        for ax, (metric, title) in zip(axes, metrics):
            bounds = METRIC_RANGES.get(metric, (-math.inf, math.inf))
            for i, (label, by_metric) in enumerate(groups.items()):
                draw_sweep_line(ax, by_metric[metric], bounds, f"C{i}", label, format_value)
            ax.set_title(title)
            ax.set_xlabel(knob)
            ax.grid(alpha=0.3)
            if bounds == (0.0, 1.0):
                ax.set_ylim(0, max(0.05, ax.get_ylim()[1]))
            elif bounds[0] == 0.0:
                ax.set_ylim(bottom=0)
        for ax in axes[len(metrics):]:
            ax.set_visible(False)
        if legend_rows:
            handles, labels = axes[0].get_legend_handles_labels()
            fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False, fontsize=8)
        fig.suptitle(f"{knob}: mean over seeds with 95% CI{note}")
        return save(fig, path)


def draw_sweep_line(ax, points: list[tuple[Any, float, float | None]], bounds: tuple[float, float], color: str,
                    label: str, format_value: Callable[[Any], str]) -> None:
    """Plot one line of means with its CI band clipped to the metric's range (categorical x for text values)."""
    values = [v for v, _, _ in points]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    xs = values if numeric else list(range(len(values)))
    means = [m for _, m, _ in points]
    low = [clip(m - (h or 0.0), bounds) for _, m, h in points]
    high = [clip(m + (h or 0.0), bounds) for _, m, h in points]
    ax.plot(xs, means, marker="o", markersize=4, color=color, label=label)
    ax.fill_between(xs, low, high, color=color, alpha=0.18, linewidth=0)
    if numeric:
        ax.set_xticks(xs, [format_value(v) for v in values])
    else:
        ax.set_xticks(xs, [format_value(v) for v in values], rotation=20, ha="right")


__all__ = ["write_report_figures", "plot_sweep_metrics", "STATUS_COLORS", "FORMATS", "save", "figure_style"]
