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

from .paper import Paper

DRAWS = 4000
SEED = 0
ON_DEMAND_DRAWS = 1000
SHIPPED = "band_reference.json"


@dataclass
class BandReference:
    """The band's rate over resampled blocks of the paper's own runs, and what made blocks miss."""

    met: int
    draws: int
    paper_digest: str
    failures: dict[str, int] = field(default_factory=dict)  # criterion line (regime and metric) -> blocks failing it

    @property
    def rate(self) -> float:
        return self.met / self.draws

    def to_dict(self) -> dict[str, Any]:
        return {"met": self.met, "draws": self.draws, "seed": SEED, "paper_digest": self.paper_digest,
                "failures": self.failures, "method": "posterior-predictive bootstrap of the paper's runs"}


def compute_paper_digest(paper: Paper) -> str:
    """Return a SHA-256 of the paper's run rows, so a stored reference is used only for the runs it came from."""
    return hashlib.sha256(json.dumps(paper.runs, sort_keys=True).encode()).hexdigest()


def draw_block(paper: Paper, rng: random.Random, draw: int) -> list[dict[str, Any]]:
    """Return one resampled 12-run block a regime: a stand-in truth drawn from the paper's runs, then a block from it."""
    block = []
    for regime in sorted({r["regime"] for r in paper.runs}):
        rows = paper.runs_of(regime)
        truth = [rng.choice(rows) for _ in rows]
        block += [{**rng.choice(truth), "seed": draw * len(rows) + k} for k in range(len(rows))]
    return block


def name_failure(line: str) -> str:
    """Return a failure line without its figures: the criterion, the regime and the metric."""
    line = re.sub(r"^only \d+ of \d+ means", "too few means", line.split(": ours")[0])
    return re.sub(r" \d+\.\d+ outside.*| \(need.*", "", line)


def compute_band_reference(paper: Paper, draws: int = DRAWS, seed: int = SEED) -> BandReference:
    """Return how many of ``draws`` resampled blocks of the paper's runs meet the band."""
    from .compare import compare  # here, not at the top: study.compare reports this reference

    rng = random.Random(seed)
    met, failures = 0, Counter()
    for draw in range(draws):
        result = compare(draw_block(paper, rng, draw), None, paper)
        met += result.bar_met
        failures.update({name_failure(line) for line in result.failures})
    return BandReference(met=met, draws=draws, paper_digest=compute_paper_digest(paper),
                         failures=dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))))


def load_band_reference(paper: Paper) -> BandReference:
    """Return the band's reference rate for ``paper``: the shipped one for the shipped runs, else resampled now."""
    stored = json.loads(resources.files(__package__).joinpath("data", SHIPPED).read_text())
    if stored["paper_digest"] == compute_paper_digest(paper):
        return BandReference(met=stored["met"], draws=stored["draws"], paper_digest=stored["paper_digest"],
                             failures=stored["failures"])
    return compute_band_reference(paper, draws=ON_DEMAND_DRAWS)


def describe_against_reference(met: int, blocks: int, reference: BandReference) -> str:
    """Return our block rate beside the reference rate, with an exact binomial test of ours against it."""
    p = stats.binomtest(met, blocks, reference.rate).pvalue
    return (f"the original engine would meet it on about {reference.rate:.1%} of blocks (resampling the paper's runs, "
            f"{reference.draws} draws); ours {met / blocks:.1%}, binomial p = {p:.2g} against that rate")


__all__ = ["BandReference", "compute_band_reference", "load_band_reference", "describe_against_reference"]
