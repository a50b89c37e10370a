"""How often a faithful engine would meet each reproduction target: the targets' own size.

A target such as "every §4.7 share within 2 points of the paper's" compares a
120-seed range with the paper's 12 runs a regime, and the paper's 12 runs are
themselves a draw. So even the original engine would miss a target on some
ranges, and a target is only as meaningful as that rate. Here our own engine
stands in for the original: a 12-seed block of its runs plays the paper (its
means, per-run rows, pooled counts and printed shares, in the paper's shape),
a disjoint 120-seed range of its runs plays the ensemble, and the four targets
are judged as they are against the real paper. Over many such pairs the share
meeting each target is the rate a faithful engine reaches, *if the original's
run-to-run spread is like ours* (where ours is wider, the rate is lower than
the original's would be).

Beside it: how many of the same ranges meet each target against the real paper.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from .agreement import Figure, mean_figures, pooled_figures, share_figures
from .compare import compute_band_blocks
from .paper import Paper
from .summary import regime_summary
from .targets import Target, judge_targets

PAPER_SEEDS = 12
RANGE_SEEDS = 120
ALL_FOUR = "all four"


class YardstickError(ValueError):
    """Raised when an ensemble has too few seeds for the stand-in papers and ranges asked for."""


@dataclass
class Yardstick:
    """Per target: the share of (stand-in paper, range) pairs meeting it, and our ranges meeting it."""

    pairs: int
    ranges: int
    faithful: dict[str, int] = field(default_factory=dict)  # target -> pairs meeting it
    ours: dict[str, int] = field(default_factory=dict)  # target -> ranges meeting it against the real paper

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "ranges": self.ranges,
                "targets": [{"target": name, "faithful_rate": self.faithful[name] / self.pairs,
                             "ours_met": self.ours[name], "ours_ranges": self.ranges} for name in self.faithful]}


def make_stand_in_paper(runs: list[dict[str, Any]], paper: Paper) -> Paper:
    """Return ``runs`` (12 a regime) as a paper: their means and rows, and the shares the real paper prints."""
    shares: dict[str, dict[str, Any]] = {}
    for regime, printed in paper.figures.get("action_shares", {}).items():
        if regime.startswith("_"):
            continue
        counts: Counter = Counter()
        for run in runs:
            if run["regime"] == regime:
                counts.update(run.get("action_counts") or {})
        total = sum(counts.values())
        shares[regime] = {a: round(counts[a] / total, 3) for a in printed if not a.startswith("_")} if total else {}
        shares[regime]["_n_actions"] = total
    return Paper(regimes={row["regime"]: row for row in regime_summary(runs)}, runs=runs,
                 figures={"action_shares": shares})


def judge_range(runs: list[dict[str, Any]], paper: Paper) -> list[Target]:
    """Return the four targets of one range against ``paper`` (without the band's reference rate)."""
    figures: list[Figure] = []
    for regime in sorted({r["regime"] for r in runs} & set(paper.regimes)):
        ours = [r for r in runs if r["regime"] == regime]
        theirs = paper.runs_of(regime)
        figures += mean_figures(regime, ours, theirs) + pooled_figures(regime, ours, paper) + share_figures(
            regime, ours, paper)
    return judge_targets(figures, paper, compute_band_blocks(runs, paper), with_reference=False)


def split_seeds(runs: list[dict[str, Any]], papers: int) -> tuple[list[list[dict]], list[list[dict]]]:
    """Return the stand-in papers (the first ``papers`` blocks of 12 seeds) and the 120-seed ranges after them."""
    seeds = sorted({r["seed"] for r in runs})
    cut = papers * PAPER_SEEDS
    if papers < 1 or len(seeds) < cut + 2 * RANGE_SEEDS:
        raise YardstickError(f"{len(seeds)} seeds: {papers} stand-in papers and two 120-seed ranges need at least "
                             f"{cut + 2 * RANGE_SEEDS}")

    def of(block: list[int]) -> list[dict[str, Any]]:
        chosen = set(block)
        return [r for r in runs if r["seed"] in chosen]
    stand_ins = [of(seeds[i:i + PAPER_SEEDS]) for i in range(0, cut, PAPER_SEEDS)]
    ranges = [of(seeds[i:i + RANGE_SEEDS]) for i in range(cut, len(seeds) - RANGE_SEEDS + 1, RANGE_SEEDS)]
    return stand_ins, ranges


def compute_yardstick(runs: list[dict[str, Any]], paper: Paper, papers: int = 50,
                      on_pair: Callable[[], None] | None = None) -> Yardstick:
    """Judge every range against every stand-in paper, and against ``paper``."""
    stand_ins, ranges = split_seeds(runs, papers)
    faithful: Counter = Counter()
    for stand_in_runs in stand_ins:
        stand_in = make_stand_in_paper(stand_in_runs, paper)
        for range_runs in ranges:
            count_met(faithful, judge_range(range_runs, stand_in))
            if on_pair:
                on_pair()
    ours: Counter = Counter()
    for range_runs in ranges:
        count_met(ours, judge_range(range_runs, paper))
    names = [*faithful] if faithful else [*ours]
    return Yardstick(pairs=len(stand_ins) * len(ranges), ranges=len(ranges),
                     faithful={n: faithful[n] for n in names}, ours={n: ours[n] for n in names})


def count_met(counter: Counter, targets: list[Target]) -> None:
    counter.update({t.name: t.is_met for t in targets})
    counter[ALL_FOUR] += all(t.is_met for t in targets)


__all__ = ["Yardstick", "YardstickError", "compute_yardstick", "make_stand_in_paper", "judge_range", "split_seeds"]
