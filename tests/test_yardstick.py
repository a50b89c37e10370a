"""The targets' yardstick: stand-in papers made of our runs, judged as the real paper is."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.study.compare import judge_study
from simledger.study.paper import load_paper
from simledger.study.yardstick import (
    ALL_FOUR, YardstickError, compute_yardstick, judge_range, make_stand_in_paper, split_seeds,
)

PAPER = load_paper()
ACTIONS_PER_RUN = 320  # 8 agents x 40 turns


def action_counts(regime: str, mine_shift: float = 0.0) -> dict[str, int]:
    """Return one run's action counts with the paper's printed shares (mine moved by ``mine_shift``)."""
    printed = {a: s for a, s in PAPER.figure("action_shares", regime).items() if not a.startswith("_")}
    if "mine" in printed:
        printed["mine"] += mine_shift
    counts = {a: round(s * ACTIONS_PER_RUN) for a, s in printed.items()}
    return {**counts, "transfer": ACTIONS_PER_RUN - sum(counts.values())}


def paper_copies(seeds: range, mine_shift: float = 0.0) -> list[dict]:
    """Return runs that are the paper's own rows, seed s playing the paper's run s mod 12 of each regime."""
    runs = []
    for regime in ("baseline", "coordination_push", "high_compute_cost"):
        rows = PAPER.runs_of(regime)
        runs += [{**rows[s % 12], "seed": s, "run_id": f"{regime}_{s}",
                  "action_counts": action_counts(regime, mine_shift)} for s in seeds]
    return runs


def test_a_stand_in_paper_has_its_runs_means_rows_and_printed_shares():
    runs = paper_copies(range(0, 12))
    stand_in = make_stand_in_paper(runs, PAPER)
    assert stand_in.runs == runs
    for regime in ("baseline", "high_compute_cost"):
        assert stand_in.mean(regime, "errors_mean") == pytest.approx(PAPER.mean(regime, "errors_mean"), abs=0.01)
    assert stand_in.figure("action_shares", "baseline", "mine") == round(action_counts("baseline")["mine"] / 320, 3)
    assert set(stand_in.figure("action_shares", "coordination_push")) == {"sign_contract", "confirm_delivery",
                                                                           "mine", "_n_actions"}
    assert stand_in.figure("action_shares", "baseline", "_n_actions") == 12 * ACTIONS_PER_RUN


def test_seeds_split_into_stand_ins_of_12_then_ranges_of_120():
    stand_ins, ranges = split_seeds(paper_copies(range(0, 24 + 360)), papers=2)
    assert [len({r["seed"] for r in p}) for p in stand_ins] == [12, 12]
    assert [len({r["seed"] for r in r_}) for r_ in ranges] == [120, 120, 120]
    assert max(r["seed"] for r in stand_ins[-1]) < min(r["seed"] for r in ranges[0])
    with pytest.raises(YardstickError, match="need at least 276"):
        split_seeds(paper_copies(range(0, 275)), papers=3)


def test_a_range_is_judged_as_the_comparison_judges_it():
    runs = paper_copies(range(1000, 1120))
    assert [(t.name, t.met, t.total) for t in judge_range(runs, PAPER)] == [
        (t.name, t.met, t.total) for t in judge_study(runs).targets]


def test_the_papers_own_runs_meet_every_target_against_any_stand_in_made_of_them():
    result = compute_yardstick(paper_copies(range(0, 24 + 240)), PAPER, papers=2)
    assert result.pairs == 4 and result.ranges == 2
    assert all(met == result.pairs for met in result.faithful.values())
    assert all(met == result.ranges for met in result.ours.values())


def test_a_shifted_share_misses_against_every_stand_in():
    runs = paper_copies(range(0, 24)) + paper_copies(range(24, 24 + 240), mine_shift=0.05)
    result = compute_yardstick(runs, PAPER, papers=2)
    assert result.faithful["action shares within 2 percentage points"] == 0 == result.faithful[ALL_FOUR]
    assert result.faithful["regime means within 2 SE (Welch)"] == result.pairs


def test_the_command_prints_the_rates_and_refuses_too_few_seeds(tmp_path):
    import json
    (tmp_path / "run_summaries.json").write_text(json.dumps(paper_copies(range(0, 12 + 240))))
    result = CliRunner().invoke(app, ["yardstick", str(tmp_path), "--papers", "1", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["pairs"] == 2 and [t["faithful_rate"] for t in doc["targets"]] == [1.0] * 5
    result = CliRunner().invoke(app, ["yardstick", str(tmp_path), "--papers", "2"])
    assert result.exit_code == 2 and "need at least 264" in result.output
