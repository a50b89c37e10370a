"""The paper's study end to end: its runs, the held-out ensemble, the summaries, the report and its verdicts.

``run_study`` is what ``simledger experiment`` does and ``summarize_study`` what
``simledger summarize`` does; the CLI only parses arguments, draws the progress
it is told about (``StudyProgress``) and renders the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .experiment import DEFAULT_HELD_OUT, held_out_seeds, simulate_specs
from .model_runs import plays_llm
from .metrics import regime_summary
from .summary import summarize, write_summaries
from .sweep import SweepResult, run_sweep, study_specs, study_sweep, sweep_specs


class StudyProgress:
    """What a study says while it runs; each hook starts a stage and returns its per-step callback.

    This base class ignores everything; the CLI subclasses it to draw bars.
    """

    def logged(self, total: int) -> Callable[[str, str], None]:
        """Start the logged runs; the callback gets (what happened to a run: done, skipped, failed, ...; its name)."""
        return lambda event, name: None

    def played(self, stage: str, total: int) -> Callable[[int], None]:
        """Start runs played in memory (stage ``runs`` or ``held-out``); the callback gets a run's event count."""
        return lambda events: None

    def folded(self, total: int) -> Callable[[str], None]:
        """Start verifying and folding logs; the callback gets each log's path."""
        return lambda path: None

    def report(self, total: int) -> Callable[[str], None]:
        """Start writing the report; the callback gets each step's name."""
        return lambda step: None


@dataclass(frozen=True)
class StudyResult:
    """What a study did: the study's runs, the held-out ensemble and what was written in ``out``."""

    out: Path
    planned: int  # runs of the study
    held_out_runs: int  # runs of the held-out ensemble
    events: int  # events of the runs played in memory
    sweep: SweepResult | None  # the logged runs (None with logs=False)
    summary: dict[str, Any]  # out, regimes (the regime means) and, with a report, report and verdicts


def run_study(regimes: Iterable[str], seeds: Iterable[int], *, agents: int, turns: int, out: Path, workers: int,
              regimes_file: Path | None = None, report: bool = True, logs: bool = True,
              held_out: int = DEFAULT_HELD_OUT, force: bool = False,
              progress: StudyProgress | None = None) -> StudyResult:
    """Run the study as a sweep of ``regimes`` (a verified log per run in ``out/runs``, or in memory without
    ``logs``), play ``held_out`` runs per regime in memory (``out/held_out``), write the summaries and, with
    ``report``, the report and its verdicts."""
    progress = progress or StudyProgress()
    regime_names = list(regimes)
    study = study_sweep(regime_names, list(seeds), agents, turns, regimes_file)
    specs = sweep_specs(study)
    held_specs = study_specs(regime_names, held_out_seeds(held_out), agents, turns, regimes_file) if report and held_out else []
    held_specs = [s for s in held_specs if not plays_llm(s.regime)]  # in memory: a model's calls need a log
    events = 0

    def play(stage: str, todo: list) -> list[dict]:
        tick = progress.played(stage, len(todo))

        def done(_summary: dict, count: int) -> None:
            nonlocal events
            events += count
            tick(count)
        return simulate_specs(todo, workers=workers, on_done=done)

    result = None
    if logs:
        result = run_sweep(study, out, workers=workers, report=False, force=force,
                           on_progress=progress.logged(len(specs)))
        runs, rows = result.summaries, result.regime_rows
    else:
        runs = play("runs", specs)
    held = play("held-out", held_specs) if held_specs else []
    if held_specs:
        write_summaries(held, regime_summary(held), out / "held_out")
    if not logs:
        rows = regime_summary(runs)
        write_summaries(runs, rows, out)
    summary: dict[str, Any] = {"out": str(out), "regimes": rows}
    if report and runs:
        summary.update(write_verdicts(out, runs, rows, runs_dir=out / "runs" if logs else None, progress=progress,
                                      held_out=held))
    return StudyResult(out=out, planned=len(specs), held_out_runs=len(held_specs), events=events, sweep=result,
                       summary=summary)


def summarize_study(paths: list[Path], out: Path, *, report: bool, workers: int,
                    progress: StudyProgress | None = None) -> dict[str, Any]:
    """Verify and fold every log, write the four summary files and, with ``report``, the report and verdicts;
    return what was written (out, regimes, report, verdicts)."""
    progress = progress or StudyProgress()
    runs, rows = summarize(paths, out, workers=workers, on_log=progress.folded(len(paths)))
    summary: dict[str, Any] = {"out": str(out), "regimes": rows}
    if report:
        folders = {Path(p).parent for p in paths}
        summary.update(write_verdicts(out, runs, rows, runs_dir=folders.pop() if len(folders) == 1 else None,
                                      progress=progress, held_out=None))
    return summary


def write_verdicts(out: Path, runs: list[dict], rows: list[dict], *, runs_dir: Path | None, progress: StudyProgress,
                   held_out: list[dict] | None) -> dict[str, Any]:
    """Write the report; return its path and the verdict of the runs (and of the held-out ensemble)."""
    from .compare import judge_study
    from .report import format_seeds, report_steps, write_report

    write_report(out, runs, rows, runs_dir=runs_dir, held_out=held_out,
                 on_step=progress.report(report_steps(runs, runs_dir)))
    verdicts = {f"seeds {format_seeds(sorted({r['seed'] for r in runs}))}": judge_study(runs).headline()}
    if held_out:
        agreement = judge_study(held_out)
        seeds = format_seeds(sorted({r["seed"] for r in held_out}))
        verdicts[f"held-out seeds {seeds}"] = f"{agreement.headline()}; {agreement.targets_summary()}"
    return {"report": str(out / "report.md"), "verdicts": verdicts}


__all__ = ["StudyProgress", "StudyResult", "run_study", "summarize_study", "write_verdicts"]
