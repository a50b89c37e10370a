"""The study's figures: distinct status colours, the paper's values drawn where it printed them, clipped CIs."""

from __future__ import annotations

import math

import pytest
from matplotlib.colors import to_hex

from simledger.study.figures import (
    CONFIRMED, OWNER_COLOR, NON_OWNER_COLOR, STATUS_COLORS, figure_style, get_status_colors, plot_action_composition,
    plot_contract_outcomes, plot_distributions, plot_sweep_metrics, plot_trajectories, wrap_label,
)
from simledger.study.paper import load_paper

PAPER = load_paper()


def bar_colors(ax) -> set[str]:
    return {to_hex(p.get_facecolor()) for p in ax.patches}


def test_every_contract_status_has_its_own_colour():
    assert len(set(STATUS_COLORS.values())) == len(STATUS_COLORS)
    assert {"proposed", "countersigned", "active", "disputed", "settled", "defaulted", "expired"} <= set(STATUS_COLORS)
    # a status the palette does not know still gets a colour no other status has
    colors = get_status_colors(["settled", "expired", "cancelled", "withdrawn"])
    assert len(set(colors.values())) == len(colors)


def test_contract_outcomes_show_each_status_and_the_papers_rates():
    by_regime = {"baseline": [{"contracts_final_status": {"settled": 2, "expired": 6, "defaulted": 2}}],
                 "cheap": [{"contracts_final_status": {"active": 1, "settled": 1}}]}
    with figure_style():
        ax = plot_contract_outcomes(by_regime, PAPER).axes[0]
    assert {to_hex(STATUS_COLORS[s]) for s in ("settled", "expired", "defaulted", "active")} <= bar_colors(ax)
    # ours, then the paper's bar for baseline (the paper has no "cheap" regime)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["baseline: ours", "paper", "cheap: ours"]
    paper_settled = [p for p in ax.patches if to_hex(p.get_facecolor()) == to_hex(STATUS_COLORS["settled"])
                     and round(p.get_y() + p.get_height() / 2) == 1]
    assert [p.get_width() for p in paper_settled] == [PAPER.figure("pooled_contracts", "baseline", "settlement_rate")]
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == "20.0% settled\n20.0% defaulted, of 10" and texts[1].startswith("7.4% settled\n17.1% defaulted")


def test_contract_outcomes_keep_settlements_on_confirmation_apart_from_the_papers_count():
    # 5 contracts ended settled, but only 1 was in a turn's settlement list (what the paper counts)
    by_regime = {"baseline": [{"contracts_final_status": {"settled": 5, "defaulted": 5}, "contracts_settled_total": 1}]}
    with figure_style():
        ax = plot_contract_outcomes(by_regime, PAPER).axes[0]
    ours = {to_hex(p.get_facecolor()): p.get_width() for p in ax.patches if round(p.get_y() + p.get_height() / 2) == 0}
    assert ours[to_hex(STATUS_COLORS["settled"])] == 0.1 and ours[to_hex(STATUS_COLORS[CONFIRMED])] == 0.4
    assert ax.texts[0].get_text() == "10.0% settled\n50.0% defaulted, of 10"


def test_action_composition_marks_the_papers_shares_on_each_regime():
    by_regime = {regime: [{"action_counts": {"mine": 30, "job": 10, "sign_contract": 20, "confirm_delivery": 5,
                                             "propose_contract": 5, "stake": 30}}]
                 for regime in ("baseline", "coordination_push", "high_compute_cost")}
    with figure_style():
        axes = plot_action_composition(by_regime, PAPER).axes
    for ax, regime in zip(axes, by_regime):
        actions = [t.get_text() for t in axes[0].get_yticklabels()]
        published = {a: v for a, v in PAPER.figure("action_shares", regime).items() if not a.startswith("_")}
        markers = [tuple(xy) for c in ax.collections for xy in c.get_offsets()]
        assert sorted(markers) == sorted((v, actions.index(a)) for a, v in published.items()), regime
        assert [round(p.get_width(), 4) for p in ax.patches][:2] == [0.3, 0.3]  # mine, stake: the largest first


def trajectory(owners: list[str], turns: int = 40) -> dict:
    balances = {f"agent_{i}": [1000 + (50 if f"agent_{i}" in owners else -50) * t for t in range(turns + 1)]
                for i in range(4)}
    return {"turns": list(range(turns + 1)), "balances": balances, "owners": owners}


def test_trajectories_split_core_owners_from_the_rest_per_regime():
    trajectories = {"baseline": [trajectory(["agent_0"]), trajectory(["agent_1", "agent_2"])],
                    "high_compute_cost": [trajectory(["agent_3"])]}
    with figure_style():
        fig = plot_trajectories(trajectories, PAPER)
    assert [ax.get_title().splitlines()[0] for ax in fig.axes] == ["baseline (2 runs)", "high_compute_cost (1 runs)"]
    base = fig.axes[0]
    thin = [line for line in base.lines if line.get_linewidth() < 1 and len(line.get_xdata()) > 2]  # not the 0 line
    assert len(thin) == 8  # 4 agents x 2 runs
    assert sum(to_hex(line.get_color()) == OWNER_COLOR.lower() for line in thin) == 3
    medians = {to_hex(line.get_color()): list(line.get_ydata()) for line in base.lines if line.get_linewidth() > 2}
    assert medians[OWNER_COLOR.lower()][-1] == 3000 and medians[NON_OWNER_COLOR.lower()][-1] == -1000
    # the paper's high_compute_cost_107 final balances at turn 40, its name in the panel's title
    marked = sorted(y for x, y in fig.axes[1].collections[0].get_offsets())
    assert marked == sorted(PAPER.figure("representative_runs", "high_compute_cost_107", "balances").values())
    assert "high_compute_cost_107" in fig.axes[1].get_title()


def test_trajectories_of_shorter_runs_mark_no_paper_balances():
    with figure_style():
        fig = plot_trajectories({"baseline": [trajectory(["agent_0"], turns=10)]}, PAPER)
    assert not fig.axes[0].collections


def band_limits(ax) -> tuple[float, float]:
    ys = [y for c in ax.collections for path in c.get_paths() for _, y in path.vertices]
    return min(ys), max(ys)


def test_sweep_figure_is_written_as_png_and_svg(tmp_path):
    metrics = [("gini_wealth", "Wealth Gini"), ("inference_fees_total", "Fees"), ("interest_total", "Interest"),
               ("settlement_rate", "Settled / contracts"), ("total_errors", "Engine errors")]
    # means near the edges of their ranges with wide CIs: unclipped bands would cross 0 and 1
    points = {"gini_wealth": [(1, 0.95, 0.2), (3, 0.05, 0.2)], "settlement_rate": [(1, 0.02, 0.1), (3, 0.9, 0.3)],
              "inference_fees_total": [(1, 10.0, 50.0), (3, 20.0, None)],
              "interest_total": [(1, 0.0, 4.0), (3, 5.0, 1.0)], "total_errors": [(1, 3.0, 9.0), (3, 4.0, 1.0)]}
    written = plot_sweep_metrics("base_inference_rate", metrics, {"interest=0.01": points, "interest=0.02": points},
                                 str, tmp_path / "sweep_base_inference_rate.png", "")
    assert [p.name for p in written] == ["sweep_base_inference_rate.png", "sweep_base_inference_rate.svg"]
    assert all(p.stat().st_size > 1000 for p in written)


def test_sweep_figure_has_one_panel_per_metric_with_cis_inside_its_range(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr("simledger.study.figures.save", lambda fig, path: figures.append(fig) or [])
    metrics = [("gini_wealth", "Wealth Gini"), ("settlement_rate", "Settled / contracts"),
               ("interest_total", "Interest total"), ("total_errors", "Engine errors")]
    points = {"gini_wealth": [(1, 0.95, 0.2), (3, 0.05, 0.2)], "settlement_rate": [(1, 0.02, 0.1), (3, 0.9, 0.3)],
              "interest_total": [(1, 0.0, 4.0), (3, 5.0, 1.0)], "total_errors": [(1, 3.0, 9.0), (3, 4.0, 1.0)]}
    plot_sweep_metrics("k", metrics, {"all": points}, str, tmp_path / "x.png", "")
    visible = [ax for ax in figures[0].axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["Wealth Gini", "Settled / contracts", "Interest total",
                                                 "Engine errors"]
    for ax, (low, high) in zip(visible, [(0.0, 1.0), (0.0, 1.0), (0.0, math.inf), (0.0, math.inf)]):
        lowest, highest = band_limits(ax)
        assert lowest == pytest.approx(low) and highest <= high, ax.get_title()
    assert band_limits(visible[0])[1] == pytest.approx(1.0)  # 0.95 + 0.2 stops at 1


@pytest.mark.parametrize("name,width", [
    ("baseline__base_inference_rate=3__interest_rate_per_turn=0.02", 26), ("coordination_push", 13),
    ("high_compute_cost: ours", 26), ("baseline", 8), ("cheap_compute__rules.study_cost=10", 18),
])
def test_long_regime_names_wrap_into_lines_that_fit_losing_no_character(name, width):
    lines = wrap_label(name, width).split("\n")
    assert all(len(line) <= width for line in lines), lines
    assert "".join(lines).replace("_", "") == name.replace("_", "")  # breaks fall at underscores only


def test_figures_of_a_sweep_give_each_long_scenario_name_its_own_lines():
    names = [f"baseline__base_inference_rate={r}__interest_rate_per_turn={i}" for r in (1, 3) for i in (0.01, 0.02)]
    by_regime = {n: [{"action_counts": {"mine": 3}, "contracts_final_status": {"expired": 1}}] for n in names}
    with figure_style():
        axes = plot_action_composition(by_regime, PAPER).axes
        contracts = plot_contract_outcomes(by_regime, PAPER).axes[0]
    assert all(max(map(len, ax.get_title().splitlines())) <= 30 for ax in axes)
    assert not fig_has_paper_markers(axes)
    assert all(max(map(len, t.get_text().splitlines())) <= 26 for t in contracts.get_yticklabels())


def fig_has_paper_markers(axes) -> bool:
    return any(len(c.get_offsets()) for ax in axes for c in ax.collections)


def test_distributions_mark_the_papers_printed_means_and_cis():
    runs = [{"gini_wealth": 0.1, "inference_fees_total": 7000, "total_errors": 20}] * 3
    with figure_style():
        axes = plot_distributions({"baseline": runs, "cheap": runs}, PAPER).axes
    gini, fees = axes[0], axes[1]
    (printed,) = [c for c in gini.containers if type(c).__name__ == "ErrorbarContainer"]  # none for "cheap"
    assert list(printed.lines[0].get_ydata()) == [PAPER.mean("baseline", "gini_wealth_mean")]
    (segment,) = printed.lines[2][0].get_segments()
    _, half = PAPER.figure("ci95", "gini_wealth_mean", "baseline")
    assert [y for _, y in segment] == pytest.approx([PAPER.mean("baseline", "gini_wealth_mean") - half,
                                                     PAPER.mean("baseline", "gini_wealth_mean") + half])
    # fees: the paper prints no CI, only the mean
    (fee_mark,) = [c for c in fees.containers if type(c).__name__ == "ErrorbarContainer"]
    assert list(fee_mark.lines[0].get_ydata()) == [PAPER.mean("baseline", "fees_total_mean")]
    assert not fee_mark.has_yerr
