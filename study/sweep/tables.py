"""A sweep's outputs: summary files, per-scenario means with confidence intervals, and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...events.config import Config, Rules
from ...projections.metrics import headline_metrics
from ..metrics import regime_summary
from ..paper import compute_ci95
from ..summary import to_csv, write_summaries
from .spec import Scenario, Sweep, format_value, safe_text

if TYPE_CHECKING:
    from .execute import SweepResult

FAILURES_FILE = "failures.json"
SWEEP_FILES = ("sweep_summary.json", "sweep_summary.csv")
CI_CONVENTION = "95% CI = 1.96 SD / sqrt(n), SD over runs (the paper's convention, as in report.md)"


# --- outputs -------------------------------------------------------------------------------


def write_outputs(sweep: Sweep, result: "SweepResult", out: Path, runs_dir: Path, *, report: bool,
                  plots: bool) -> None:
    """Write failures.json, the study's four summary files and report; for a grid sweep, sweep_summary.csv/json
    and the plots.

    The study's report folds each log again for its balance trajectories, so only
    the study (a few dozen runs) gets them; a sweep's report is drawn from its summaries.
    """
    from ..report import write_report

    out.mkdir(parents=True, exist_ok=True)
    (out / FAILURES_FILE).write_text(json.dumps(result.failures, indent=2) + "\n")
    rows = regime_summary(result.summaries)
    write_summaries(result.summaries, rows, out)
    result.regime_rows = rows
    if report and result.summaries:
        write_report(out, result.summaries, rows, runs_dir=runs_dir if sweep.study else None)
    if sweep.study:
        return
    result.sweep_rows = sweep_rows(sweep, result.summaries)
    write_sweep_summary(result.sweep_rows, sweep.knobs, out)
    if plots:
        plot_sweep(sweep, result.summaries, out / "plots")


def headline(run: dict[str, Any]) -> dict[str, float]:
    """Return a run's headline metrics (the registry's, by run-summary key)."""
    return {m.run: m.value(run) for m in headline_metrics()}


def mean_ci(values: list[float]) -> tuple[float, float | None]:
    """Return (mean, 95% CI half-width by ``CI_CONVENTION``); the half-width is None for a single value."""
    mean = sum(values) / len(values)
    return mean, compute_ci95(values) if len(values) > 1 else None


def effective_value(scenario: Scenario, knob: str) -> Any:
    """Return the value a scenario runs with for ``knob`` (its override, else its base regime's, else the default)."""
    section, _, name = knob.rpartition(".")
    if section == "policy":
        return scenario.regime["policy"].get(name)
    if section == "rules":
        return scenario.rules.get(name, getattr(Rules(), name))
    if name == "num_agents":
        return scenario.agents
    return scenario.regime["config"].get(name, getattr(Config(), name))


def sweep_rows(sweep: Sweep, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row per scenario that has runs: its parameter values, run count, metric means and CIs."""
    grouped: dict[str, list[dict]] = {}
    for run in runs:
        grouped.setdefault(run["regime"], []).append(run)
    rows = []
    for scenario in sorted(sweep.scenarios, key=lambda s: s.name):
        members = grouped.get(scenario.name)
        if not members:
            continue
        row: dict[str, Any] = {"scenario": scenario.name, "base_regime": scenario.base_regime}
        row.update({knob: effective_value(scenario, knob) for knob in sweep.knobs})
        row["n_runs"] = len(members)
        metrics = [headline(r) for r in members]
        for name in metrics[0]:
            row[f"{name}_mean"], row[f"{name}_ci95"] = mean_ci([m[name] for m in metrics])
        rows.append(row)
    return rows


def sweep_fields(knobs: list[str]) -> list[str]:
    metrics = [f"{m.run}_{stat}" for m in headline_metrics() for stat in ("mean", "ci95")]
    return ["scenario", "base_regime", *knobs, "n_runs", *metrics]


def write_sweep_summary(rows: list[dict[str, Any]], knobs: list[str], out: Path) -> None:
    """Write sweep_summary.json and sweep_summary.csv (a missing half-width is null / empty)."""
    (out / "sweep_summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "sweep_summary.csv").write_text(to_csv(sweep_fields(knobs), rows))


def swept_knobs(sweep: Sweep) -> list[str]:
    """Return the knobs whose value differs between scenarios (one plot each)."""
    return [k for k in sweep.knobs if len({repr(effective_value(s, k)) for s in sweep.scenarios}) > 1]


def plot_sweep(sweep: Sweep, runs: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Write ``plots/sweep_<knob>.png`` and ``.svg`` per swept knob: one panel per headline metric, 95% CIs."""
    from ..figures import plot_sweep_metrics

    knobs = swept_knobs(sweep)
    if not runs or not knobs:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    by_name = {s.name: s for s in sweep.scenarios}
    points = [(by_name[r["regime"]], headline(r)) for r in runs if r["regime"] in by_name]
    metrics = headline_metrics()
    written = []
    for knob in knobs:
        groups = knob_groups(knob, points, sweep.knobs)
        lines = {label: {m.run: knob_points(knob, m.run, members) for m in metrics}
                 for label, members in groups.items()}
        note = " = 1.96 SD / sqrt(n)" + ("" if len(groups) > 1 else " (averaged over the other knobs)"
                                        if len(sweep.knobs) > 1 else "")
        written += plot_sweep_metrics(knob, [(m.run, m.label) for m in metrics], lines, format_value,
                                      folder / f"sweep_{safe_text(knob)}.png", note)
    return written


def knob_groups(knob: str, points: list[tuple[Scenario, dict]], knobs: list[str],
                max_lines: int = 6) -> dict[str, list[tuple[Scenario, dict]]]:
    """Return one line per setting of the other knobs (if few), else a single line averaging them."""
    others = [k for k in knobs if k != knob]
    groups: dict[str, list] = {}
    for scenario, metrics in points:
        label = ", ".join(f"{k}={format_value(effective_value(scenario, k))}" for k in others) or knob
        groups.setdefault(label, []).append((scenario, metrics))
    return groups if len(groups) <= max_lines else {"all": points}


def knob_points(knob: str, metric: str, members: list[tuple[Scenario, dict]]) -> list[tuple[Any, float, float | None]]:
    """Return (knob value, mean, 95% CI half-width) of ``metric`` per value of ``knob``, values in order."""
    by_value: dict[Any, list[float]] = {}
    for scenario, metrics in members:
        by_value.setdefault(effective_value(scenario, knob), []).append(metrics[metric])
    values = sorted(by_value, key=lambda v: (isinstance(v, str), v if not isinstance(v, str) else 0, str(v)))
    return [(v, *mean_ci(by_value[v])) for v in values]


def load_failures(out_dir: str | Path) -> list[dict[str, Any]]:
    """Return the failures recorded by the last sweep into ``out_dir`` ([] if none)."""
    path = Path(out_dir) / FAILURES_FILE
    return json.loads(path.read_text()) if path.exists() else []


