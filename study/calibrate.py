"""Fit engine rules to the paper's figures by the method of simulated moments, judged on held-out seeds.

Each trial proposes values for the spec's candidate ``Rules`` fields, plays the
fitting seeds of every regime in memory (``experiment.simulate_specs``), tests
every published figure (``agreement.judge_agreement``) and scores the trial by

    loss = mean over the target figures of min(distance, 50)^2

where a figure's distance is the difference between our moment and the paper's
in standard errors of that difference (Welch's t for means, the SE of a
difference of proportions for pooled rates and shares, the log SD ratio for
spreads, our run-level SD for narrated values). That is the simulated-moments
objective with a diagonal weight matrix (each moment weighted by the inverse
variance of its difference), the usual choice when the moments' covariance is
not known; the cap keeps one impossible figure from drowning the rest.

Optuna's TPE sampler (seeded, so a spec proposes the same trials) searches the
mixed space of integer, float and categorical rules; its SQLite storage in the
output folder makes a re-run continue where the last one stopped. The first
trial of a new study is the library's default rules, the yardstick every other
trial is measured against. After the trials, the best rules and the defaults
are both played on the held-out seeds, never seen by the fit, and the
held-out verdict is the calibration's result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..events.config import InvalidConfig, Rules, load_rules
from .agreement import Agreement, judge_agreement
from .compare import judge_study
from .calibration_spec import Candidate, CalibrationSpec
from .experiment import RunSpec, simulate_specs
from .sweep import study_specs
from .metrics import regime_summary
from .paper import Paper, load_paper
from .report import format_seeds
from .summary import write_summaries

DISTANCE_CAP = 50.0
STORAGE_FILE = "calibration.db"


@dataclass(frozen=True)
class TrialResult:
    number: int
    loss: float
    rules: dict[str, Any]
    indistinguishable: int
    figures: int


@dataclass
class Calibration:
    """A finished calibration: every trial, the chosen rules, and the held-out verdicts."""

    spec: CalibrationSpec
    trials: list[TrialResult]
    chosen: dict[str, Any]
    held_out: Agreement
    held_out_default: Agreement | None  # None when the chosen rules are the defaults


def compute_loss(agreement: Agreement, sections: tuple[str, ...]) -> float:
    """Return the mean squared capped distance (in SEs) of the target figures."""
    distances = [f.distance for f in agreement.figures if f.section in sections]
    if not distances:
        raise InvalidConfig("no target figure could be computed for these regimes (check [targets] sections)")
    return sum(min(abs(d), DISTANCE_CAP) ** 2 if not math.isnan(d) else DISTANCE_CAP ** 2
               for d in distances) / len(distances)


def ensemble_specs(spec: CalibrationSpec, seeds: tuple[int, ...], rules: dict[str, Any]) -> list[RunSpec]:
    return [dataclasses.replace(s, rules=rules)
            for s in study_specs(spec.regimes, seeds, agents=spec.agents, turns=spec.turns)]


def default_rules(spec: CalibrationSpec) -> dict[str, Any]:
    """Return the library's default value of every candidate (the first trial), with the fixed rules."""
    defaults = Rules()
    return {**spec.fixed, **{c.name: getattr(defaults, c.name) for c in spec.candidates}}


def is_in_space(candidate: Candidate, value: Any) -> bool:
    if candidate.kind == "choice":
        return value in candidate.choices
    return candidate.low <= value <= candidate.high


def suggest(trial, candidates: tuple[Candidate, ...]) -> dict[str, Any]:
    """Return the trial's proposal for every candidate."""
    out: dict[str, Any] = {}
    for c in candidates:
        if c.kind == "choice":
            out[c.name] = trial.suggest_categorical(c.name, list(c.choices))
        elif c.kind == "int":
            out[c.name] = trial.suggest_int(c.name, c.low, c.high, log=c.log)
        else:
            out[c.name] = trial.suggest_float(c.name, float(c.low), float(c.high), log=c.log)
    return out


def open_study(spec: CalibrationSpec, out: Path):
    """Return the Optuna study stored in ``out`` (created, or reopened when its spec is the same)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(out / STORAGE_FILE).resolve()}"
    sampler = optuna.samplers.TPESampler(seed=spec.sampler_seed)
    study = optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler, direction="minimize",
                                load_if_exists=True)
    recorded = study.user_attrs.get("spec_digest")
    if recorded is None:
        study.set_user_attr("spec_digest", spec.digest())
        defaults = default_rules(spec)
        if all(is_in_space(c, defaults[c.name]) for c in spec.candidates):
            study.enqueue_trial({c.name: defaults[c.name] for c in spec.candidates})
    elif recorded != spec.digest():
        raise InvalidConfig(f"{out / STORAGE_FILE} holds calibration {spec.name!r} of another spec; "
                            "use another --out or another [calibration] name")
    return study


def completed_trials(study) -> list[TrialResult]:
    import optuna

    return [TrialResult(number=t.number, loss=t.value, rules=t.user_attrs["rules"],
                        indistinguishable=t.user_attrs["indistinguishable"], figures=t.user_attrs["figures"])
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]


def calibrate(spec: CalibrationSpec, out: str | Path, *, workers: int = 1, paper: Paper | None = None,
              on_trial: Callable[[TrialResult, float], None] | None = None,
              on_start: Callable[[int], None] | None = None) -> Calibration:
    """Run the spec's remaining trials, then judge the best rules on the held-out seeds; return it all.

    ``on_start(remaining)`` is called once, ``on_trial(result, best_loss)`` after each trial.
    """
    out = Path(out)
    paper = paper or load_paper()
    study = open_study(spec, out)
    remaining = max(0, spec.trials - len(completed_trials(study)))
    if on_start:
        on_start(remaining)
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else contextlib.nullcontext() as pool:
        def play(seeds: tuple[int, ...], rules: dict[str, Any]) -> list[dict]:
            return simulate_specs(ensemble_specs(spec, seeds, rules), workers=workers, executor=pool)

        def objective(trial) -> float:
            rules = {**spec.fixed, **suggest(trial, spec.candidates)}
            load_rules(rules)
            agreement = judge_agreement(play(spec.fit_seeds, rules), paper)
            trial.set_user_attr("rules", rules)
            trial.set_user_attr("indistinguishable", agreement.n_indistinguishable)
            trial.set_user_attr("figures", len(agreement.figures))
            return compute_loss(agreement, spec.sections)

        def report(study_, frozen) -> None:
            if on_trial and frozen.value is not None:
                on_trial(TrialResult(frozen.number, frozen.value, frozen.user_attrs["rules"],
                                     frozen.user_attrs["indistinguishable"], frozen.user_attrs["figures"]),
                         study_.best_value)

        if remaining:
            study.optimize(objective, n_trials=remaining, callbacks=[report])
        trials = completed_trials(study)
        chosen = min(trials, key=lambda t: (t.loss, t.number)).rules
        held = play(spec.held_out_seeds, chosen)
        defaults = default_rules(spec)
        held_default = None if chosen == defaults else judge_study(play(spec.held_out_seeds, defaults), None, paper)
    write_summaries(held, regime_summary(held), out / "held_out")
    return Calibration(spec=spec, trials=trials, chosen=chosen, held_out=judge_study(held, None, paper),
                       held_out_default=held_default)


# --- the report -----------------------------------------------------------------------------


def write_calibration_report(cal: Calibration, out: str | Path) -> Path:
    """Write report.md, loss.png and calibration.json into ``out``; return the report's path."""
    out = Path(out)
    plot_losses(cal.trials, out / "loss.png")
    (out / "calibration.json").write_text(json.dumps({
        "name": cal.spec.name, "chosen_rules": cal.chosen, "held_out": cal.held_out.headline(),
        "held_out_default": cal.held_out_default.headline() if cal.held_out_default else None,
        "trials": [dataclasses.asdict(t) for t in cal.trials]}, indent=2) + "\n")
    path = out / "report.md"
    path.write_text("\n".join(report_lines(cal)) + "\n")
    return path


def report_lines(cal: Calibration) -> list[str]:
    spec, defaults = cal.spec, Rules()
    best = min(cal.trials, key=lambda t: (t.loss, t.number))
    lines = [f"# Calibration: {spec.name}", "",
             f"{len(cal.trials)} trials; regimes {', '.join(spec.regimes)}; {spec.agents} agents x {spec.turns} turns; "
             f"fitting seeds {format_seeds(sorted(spec.fit_seeds))} and held-out seeds "
             f"{format_seeds(sorted(spec.held_out_seeds))} "
             "per regime (never used in fitting).", "",
             "Method: simulated moments. Each trial plays the fitting seeds in memory and scores "
             f"mean(min(distance, {DISTANCE_CAP:g})^2) over the target figures (sections "
             f"{', '.join(spec.sections)}), a figure's distance being ours minus the paper's in standard errors; "
             f"Optuna TPE (sampler seed {spec.sampler_seed}) proposes the rules; trial 0 is the default rules.", "",
             "## Chosen rules", "", f"Trial {best.number}, loss {best.loss:.3f} on the fitting seeds "
             f"({best.indistinguishable} of {best.figures} figures indistinguishable there).", "",
             "| Rule | Chosen | Default |", "|---|---|---|"]
    for name, value in sorted(cal.chosen.items()):
        lines.append(f"| {name} | {value} | {getattr(defaults, name)} |")
    lines += ["", "## Held-out verdict", "",
              f"- chosen rules: {cal.held_out.headline()}; {cal.held_out.targets_summary()}"]
    if cal.held_out_default is not None:
        lines.append(f"- default rules: {cal.held_out_default.headline()}; {cal.held_out_default.targets_summary()}")
    lines += [""] + cal.held_out.to_markdown(level=3, title="Held-out seeds, chosen rules").splitlines()
    lines += ["", "## Every trial", "", "![Loss over trials, with the best so far](loss.png)", "",
              "| Trial | Loss | Indistinguishable (fitting seeds) | " + " | ".join(c.name for c in spec.candidates) + " |",
              "|---:|---:|---:|" + "---|" * len(spec.candidates)]
    for t in sorted(cal.trials, key=lambda t: t.number):
        cells = " | ".join(format_rule(t.rules.get(c.name)) for c in spec.candidates)
        lines.append(f"| {t.number} | {t.loss:.3f} | {t.indistinguishable} of {t.figures} | {cells} |")
    return lines


def format_rule(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def plot_losses(trials: list[TrialResult], path: Path) -> None:
    """Draw each trial's loss and the best loss so far, deterministically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ordered = sorted(trials, key=lambda t: t.number)
    numbers, losses = [t.number for t in ordered], [t.loss for t in ordered]
    best = [min(losses[: i + 1]) for i in range(len(losses))]
    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    ax.scatter(numbers, losses, s=18, color="#3182bd", label="trial loss")
    ax.step(numbers, best, where="post", color="#de2d26", label="best so far")
    if numbers and numbers[0] == 0:
        ax.annotate("default rules", (0, losses[0]), textcoords="offset points", xytext=(6, -14), fontsize=8)
    if min(losses) > 0 and max(losses) / min(losses) > 20:  # log scale only when losses span decades
        ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("loss: mean squared distance (SE²)")
    ax.set_title("Calibration loss over trials (fitting seeds)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})


__all__ = ["Calibration", "TrialResult", "calibrate", "compute_loss", "write_calibration_report", "DISTANCE_CAP"]
