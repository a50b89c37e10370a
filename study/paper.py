"""The paper's published figures, shipped as package data (never read from the seed folder).

``load_paper()`` returns the study's Table 4.1 means (``paper_regime_summary.csv``),
its 36 per-run rows (``paper_run_summaries.csv``) and the other numbers printed
in sections 4.2-4.9 (``paper_figures.json``). Users may pass their own CSVs of
the same shape. Dispersion follows the paper's own convention: the population
standard deviation of run-level values (ddof 0), which reproduces the
confidence intervals and Cohen's d printed in section 4.6.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from ..projections.metrics import RUN_ID_FIELDS, regime_metrics

# The metrics the paper publishes (projections.metrics rows with paper=True), in the summary's order:
# regime-summary columns, their labels, the run column each averages, and the Table 2 (section 4.9) subset.
PAPER_METRICS = tuple(m for m in regime_metrics() if m.paper)
METRICS: tuple[str, ...] = tuple(m.regime for m in PAPER_METRICS)
METRIC_LABELS = {m.regime: m.label for m in PAPER_METRICS}
REGIME_MEANS = {m.regime: m.run for m in PAPER_METRICS}
TABLE2_METRICS: tuple[str, ...] = tuple(m.regime for m in PAPER_METRICS if m.table2)
RUN_FIELDS = (*RUN_ID_FIELDS, *(m.run for m in PAPER_METRICS))  # the paper's run_summaries.csv columns we read
INT_RUN_FIELDS = {"seed", *(m.run for m in PAPER_METRICS if m.integer)}
BASELINE = "baseline"
Z95 = 1.96


class PaperDataError(ValueError):
    """Raised when a paper data file is missing or not of the expected shape."""


@dataclass
class Paper:
    """The paper's published numbers: regime means, per-run rows, and the figures in its text."""

    regimes: dict[str, dict[str, float]]
    runs: list[dict[str, Any]]
    figures: dict[str, Any] = field(default_factory=dict)

    def runs_of(self, regime: str) -> list[dict[str, Any]]:
        """Return the paper's run rows of ``regime``, in file order."""
        return [r for r in self.runs if r["regime"] == regime]

    def sd(self, regime: str, metric: str) -> float | None:
        """Return the run-level (population) SD of ``metric`` in ``regime``; None without runs."""
        values = [float(r[REGIME_MEANS[metric]]) for r in self.runs_of(regime)]
        return compute_sd(values) if values else None

    def mean(self, regime: str, metric: str) -> float | None:
        """Return the published regime mean of ``metric``; None when the regime is not in the table."""
        row = self.regimes.get(regime)
        return None if row is None else row[metric]

    def pooled_contracts(self, regime: str) -> dict[str, Any]:
        """Return the paper's pooled contract counts of ``regime``: section 4.2's, else pooled from its run rows."""
        return self.figure("pooled_contracts", regime) or compute_pooled_contracts(self.runs_of(regime))

    def figure(self, *path: str, default: Any = None) -> Any:
        """Return a number printed in the paper's text, by its path in paper_figures.json."""
        node: Any = self.figures
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return node


# --- statistics (pure) ----------------------------------------------------------


def compute_mean(values: Iterable[float]) -> float:
    xs = list(values)
    return sum(xs) / len(xs) if xs else math.nan


def compute_sd(values: Iterable[float]) -> float:
    """Return the population standard deviation (the paper's convention in section 4.6)."""
    xs = [float(v) for v in values]
    if not xs:
        return math.nan
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))


def compute_ci95(values: Iterable[float]) -> float:
    """Return the half-width of the normal-approximation 95% CI of the mean (1.96 sd / sqrt n)."""
    xs = list(values)
    return Z95 * compute_sd(xs) / math.sqrt(len(xs)) if xs else math.nan


def compute_cohens_d(treated: list[float], control: list[float]) -> float:
    """Return (mean treated - mean control) / sqrt((sd_t^2 + sd_c^2) / 2), population SDs as the paper."""
    spread = math.sqrt((compute_sd(treated) ** 2 + compute_sd(control) ** 2) / 2)
    diff = compute_mean(treated) - compute_mean(control)
    if spread == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / spread


def compute_dividend_fee_ratio(runs: list[dict[str, Any]]) -> float | None:
    """Return the mean over runs of dividends / fees (the paper's 4.3 figure); None if no run had fees."""
    ratios = [r["dividends_total"] / r["inference_fees_total"] for r in runs if r["inference_fees_total"]]
    return compute_mean(ratios) if ratios else None


def compute_pooled_contracts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return contracts, settled and defaulted summed over runs, and the pooled rates (section 4.2)."""
    total = sum(r["contracts_total"] for r in runs)
    settled = sum(r["contracts_settled_total"] for r in runs)
    defaulted = sum(r["contracts_defaulted_total"] for r in runs)
    return {"contracts": total, "settled": settled, "defaulted": defaulted,
            "settlement_rate": settled / total if total else None,
            "default_rate": defaulted / total if total else None}


# --- loading ----------------------------------------------------------------------


def read_data_text(name: str, path: str | Path | None) -> str:
    """Return the text of a user's file, or of the shipped data file ``name``."""
    try:
        if path is None:
            return resources.files("simledger.study").joinpath(f"data/{name}").read_text()
        return Path(path).read_text()
    except FileNotFoundError:
        raise PaperDataError(f"paper data file {path or name} not found") from None
    except IsADirectoryError:
        raise PaperDataError(f"paper data file {path} is a directory") from None
    except UnicodeDecodeError:
        raise PaperDataError(f"paper data file {path or name} is not text") from None


def parse_number(text: str, where: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise PaperDataError(f"{where}: {text!r} is not a number") from None


def parse_regime_summary(text: str, source: str) -> dict[str, dict[str, float]]:
    """Return {regime: {metric: mean}} from a regime_summary.csv (the paper's columns; others are ignored)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("regime", *METRICS) if c not in (reader.fieldnames or [])]
    if missing:
        raise PaperDataError(f"{source}: not a regime summary (missing column {missing[0]})")
    regimes = {}
    for line, row in enumerate(reader, start=2):
        regimes[row["regime"]] = {m: parse_number(row[m], f"{source} line {line} {m}") for m in METRICS}
    if not regimes:
        raise PaperDataError(f"{source}: no regime rows")
    return regimes


def parse_run_summaries(text: str, source: str) -> list[dict[str, Any]]:
    """Return the per-run rows of a run_summaries.csv (the paper's columns), numbers typed as the driver wrote them."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in RUN_FIELDS if c not in (reader.fieldnames or [])]
    if missing:
        raise PaperDataError(f"{source}: not a run summaries file (missing column {missing[0]})")
    runs = []
    for line, row in enumerate(reader, start=2):
        run: dict[str, Any] = {}
        for key in RUN_FIELDS:
            value = row[key]
            if key in ("run_id", "regime"):
                run[key] = value
            elif key in INT_RUN_FIELDS:
                number = parse_number(value, f"{source} line {line} {key}")
                run[key] = int(number) if number.is_integer() else number
            else:
                run[key] = parse_number(value, f"{source} line {line} {key}")
        runs.append(run)
    if not runs:
        raise PaperDataError(f"{source}: no run rows")
    return runs


def load_paper(regime_csv: str | Path | None = None, runs_csv: str | Path | None = None,
               figures_json: str | Path | None = None) -> Paper:
    """Return the paper's figures: the shipped files unless paths are given."""
    regimes = parse_regime_summary(read_data_text("paper_regime_summary.csv", regime_csv),
                                   str(regime_csv or "paper_regime_summary.csv"))
    runs = parse_run_summaries(read_data_text("paper_run_summaries.csv", runs_csv),
                               str(runs_csv or "paper_run_summaries.csv"))
    try:
        figures = json.loads(read_data_text("paper_figures.json", figures_json))
    except json.JSONDecodeError as err:
        raise PaperDataError(f"{figures_json or 'paper_figures.json'} is not valid JSON: {err}") from None
    return Paper(regimes=regimes, runs=runs, figures=figures if isinstance(figures, dict) else {})


__all__ = [
    "METRICS", "METRIC_LABELS", "TABLE2_METRICS", "BASELINE", "Paper", "PaperDataError", "load_paper",
    "compute_mean", "compute_sd", "compute_ci95", "compute_cohens_d", "compute_dividend_fee_ratio",
    "compute_pooled_contracts", "parse_run_summaries", "parse_regime_summary",
]
