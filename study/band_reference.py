"""How often the original engine itself would meet the 12-seed band: the band target's own yardstick.

The band compares one 12-seed block with the paper's 12 runs a regime, and a
Table 2 sign or a mean can miss by chance alone. So "met on 90% of blocks"
means little until we know how often an engine with the original's rules
would meet it. The original is lost, but its 12 runs a regime are a sample of
its economy. A posterior-predictive bootstrap draws, per regime, a stand-in
"truth" (12 of the paper's runs with replacement), then a block of 12 runs
from that truth, and asks the band. The first draw matters: a faithful
engine's mean differs from the paper's sample mean by about one standard
error, so drawing blocks straight from the paper's runs would centre every
block on the paper and overstate the rate.

Resampling is seeded, so the rate is exactly reproducible. The rate for the
shipped paper data is precomputed in ``data/band_reference.json`` (its test
recomputes it); other paper files are resampled on demand.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from scipy import stats

from ..projections.metrics import run_summary
from .paper import Paper
from .regimes import load_regimes
from .runner import simulate_run

DRAWS = 4000
SEED = 0
ON_DEMAND_DRAWS = 1000
FRESH_SEEDS = range(20_001, 22_001)  # turn 1 of 2,000 seeds a regime that no study uses
ON_DEMAND_FRESH_SEEDS = range(20_001, 20_501)
SHIPPED = "band_reference.json"


@dataclass
class BandReference:
    """The band's rate over resampled blocks of the paper's own runs, and what made blocks miss."""

    met: int
    draws: int
    paper_digest: str
    turn_one_redrawn: bool  # False for paper runs of regimes simledger cannot play (their turn 1 is unknown)
    failures: dict[str, int] = field(default_factory=dict)  # criterion line (regime and metric) -> blocks failing it

    @property
    def rate(self) -> float:
        return self.met / self.draws

    @property
    def method(self) -> str:
        return "resampling the paper's runs" + (" with turn 1 re-drawn" if self.turn_one_redrawn else "")

    def to_dict(self) -> dict[str, Any]:
        return {"met": self.met, "draws": self.draws, "seed": SEED, "paper_digest": self.paper_digest,
                "turn_one_redrawn": self.turn_one_redrawn, "failures": self.failures,
                "method": f"posterior-predictive bootstrap: {self.method}"}


def compute_paper_digest(paper: Paper) -> str:
    """Return a SHA-256 of the paper's run rows, so a stored reference is used only for the runs it came from."""
    return hashlib.sha256(json.dumps(paper.runs, sort_keys=True).encode()).hexdigest()


def compute_turn_one_fees(regime_name: str, regime: dict[str, Any], seed: int) -> int:
    """Return the inference fees of turn 1 of a run (the driver's and R3's alone: nothing has happened yet)."""
    run = simulate_run(regime_name=regime_name, regime=regime, seed=seed, turns=1)
    return run_summary(run.state)["inference_fees_total"]


@dataclass
class TurnOne:
    """Turn-1 fees of the paper's seeds and of fresh seeds, per regime: what a resampled run trades."""

    paper: dict[tuple[str, int], int]  # (regime, seed) -> that run's turn-1 fees
    fresh: dict[str, list[int]]  # regime -> turn-1 fees of fresh seeds

    @classmethod
    def compute(cls, paper: Paper, seeds: range) -> "TurnOne | None":
        """Return the turn-1 fees, or None when a paper regime is not one simledger can play."""
        catalogue = load_regimes()
        regimes = sorted({r["regime"] for r in paper.runs})
        if not set(regimes) <= set(catalogue):
            return None
        return cls(paper={(r["regime"], r["seed"]): compute_turn_one_fees(r["regime"], catalogue[r["regime"]], r["seed"])
                          for r in paper.runs},
                   fresh={name: [compute_turn_one_fees(name, catalogue[name], s) for s in seeds] for name in regimes})

    def redraw(self, row: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """Return ``row`` with a fresh seed's turn-1 fees in place of its own (turn 1's pool leaves the supply)."""
        shift = rng.choice(self.fresh[row["regime"]]) - self.paper[(row["regime"], row["seed"])]
        return {**row, "inference_fees_total": row["inference_fees_total"] + shift,
                "token_supply_final": row["token_supply_final"] - shift}


def draw_block(paper: Paper, rng: random.Random, draw: int, turn_one: TurnOne | None = None) -> list[dict[str, Any]]:
    """Return one resampled 12-run block a regime: a stand-in truth drawn from the paper's runs, then a block
    from it, each run with a fresh seed's turn 1 (given ``turn_one``)."""
    block = []
    for regime in sorted({r["regime"] for r in paper.runs}):
        rows = paper.runs_of(regime)
        truth = [rng.choice(rows) for _ in rows]
        for k in range(len(rows)):
            row = rng.choice(truth)
            block.append({**(turn_one.redraw(row, rng) if turn_one else row), "seed": draw * len(rows) + k})
    return block


def name_failure(line: str) -> str:
    """Return a failure line without its figures: the criterion, the regime and the metric."""
    line = re.sub(r"^only \d+ of \d+ means", "too few means", line.split(": ours")[0])
    return re.sub(r" \d+\.\d+ outside.*| \(need.*", "", line)


def compute_band_reference(paper: Paper, draws: int = DRAWS, seed: int = SEED,
                           fresh_seeds: range = FRESH_SEEDS) -> BandReference:
    """Return how many of ``draws`` resampled blocks of the paper's runs meet the band."""
    from .compare import compare  # here, not at the top: study.compare reports this reference

    rng = random.Random(seed)
    turn_one = TurnOne.compute(paper, fresh_seeds)
    met, failures = 0, Counter()
    for draw in range(draws):
        result = compare(draw_block(paper, rng, draw, turn_one), None, paper)
        met += result.bar_met
        failures.update({name_failure(line) for line in result.failures})
    return BandReference(met=met, draws=draws, paper_digest=compute_paper_digest(paper),
                         turn_one_redrawn=turn_one is not None,
                         failures=dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))))


_RESAMPLED: dict[str, BandReference] = {}  # paper digest -> reference resampled in this process


def load_band_reference(paper: Paper) -> BandReference:
    """Return the band's reference rate for ``paper``: the shipped one for the shipped runs, else resampled now
    (once per process and paper: a report judges twice)."""
    digest = compute_paper_digest(paper)
    stored = json.loads(resources.files(__package__).joinpath("data", SHIPPED).read_text())
    if stored["paper_digest"] == digest:
        return BandReference(met=stored["met"], draws=stored["draws"], paper_digest=digest,
                             turn_one_redrawn=stored["turn_one_redrawn"], failures=stored["failures"])
    if digest not in _RESAMPLED:
        _RESAMPLED[digest] = compute_band_reference(paper, draws=ON_DEMAND_DRAWS, fresh_seeds=ON_DEMAND_FRESH_SEEDS)
    return _RESAMPLED[digest]


def describe_against_reference(met: int, blocks: int, reference: BandReference) -> str:
    """Return our block rate beside the reference rate, with an exact binomial test of ours against it."""
    p = stats.binomtest(met, blocks, reference.rate).pvalue
    return (f"the original engine would meet it on about {reference.rate:.1%} of blocks ({reference.method}, "
            f"{reference.draws} draws); ours {met / blocks:.1%}, binomial p = {p:.2g} against that rate")


__all__ = ["BandReference", "compute_band_reference", "load_band_reference", "describe_against_reference"]
