"""``simledger experiment``, ``summarize`` and ``run``: the study and single runs."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..study.experiment import (
    DEFAULT_HELD_OUT, DEFAULT_SEEDS, HELD_OUT_FIRST, default_workers, held_out_seeds, simulate_specs,
)
from ..study.metrics import regime_summary
from ..study.regimes import DEFAULT_REGIMES, load_regimes, regime_rules
from ..study.summary import write_summaries
from ..study.sweep import parse_seeds, run_sweep, study_specs, study_sweep, sweep_specs
from . import llm_options as opt
from .common import console, err_console, fail, handle_errors, print_json
from .output import show_table


def print_regime_table(rows: list[dict]) -> None:
    table = Table(title="Regime means (Table 4.1)", show_lines=False)
    table.add_column("metric")
    for row in rows:
        table.add_column(row["regime"], justify="right")
    for key in rows[0]:
        if key == "regime":
            continue
        cells = [f"{row[key]:,.3f}" if isinstance(row[key], float) else str(row[key]) for row in rows]
        table.add_row(key, *cells)
    show_table(table)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON (progress stays on stderr).")]


def study_progress() -> Progress:
    """Return the progress display every long step shares.

    It goes to stderr, so stdout holds only the result, and only when stderr is a
    terminal: a log file or a pipe gets the result and any one-line error, not bars.
    """
    return Progress(TextColumn("[bold]{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err_console, disable=not err_console.is_terminal)


@handle_errors
def experiment(
    regimes: Annotated[str, typer.Option(help="Comma-separated regime names.")] = ",".join(DEFAULT_REGIMES),
    seeds: Annotated[str, typer.Option(help="Seeds, e.g. 101-112 or 101,104.")] = f"{DEFAULT_SEEDS[0]}-{DEFAULT_SEEDS[-1]}",
    agents: Annotated[int, typer.Option(min=3, help="Agents per run.")] = 8,
    turns: Annotated[int, typer.Option(min=1, help="Turns per run.")] = 40,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results"),
    workers: Annotated[int, typer.Option(min=0, help="Worker processes (0 = all cores).")] = 0,
    regimes_file: Annotated[Optional[Path], typer.Option(help="Your own regimes JSON (same shape as the shipped one).")] = None,
    report: Annotated[bool, typer.Option(help="Also write report.md and plots.")] = True,
    logs: Annotated[bool, typer.Option(help="Write a verified log per run; --no-logs plays the runs in memory "
                                            "(same economy, summaries and report only, no .db files).")] = True,
    held_out: Annotated[int, typer.Option(min=0, help=f"Runs per regime of a held-out ensemble (seeds "
                                                      f"{HELD_OUT_FIRST} on, in memory) whose verdict the report "
                                                      "adds; 0 for none.")] = DEFAULT_HELD_OUT,
    force: Annotated[bool, typer.Option(help="Replace finished logs in OUT/runs that record other runs.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run the paper's study: every run a verified log in OUT/runs, summaries and report in OUT.

    The study is a sweep of the regimes: a rerun skips logs that already verify
    as the same runs, a folder holding finished runs of another study is refused
    unless --force, and a run that fails is listed in OUT/failures.json (exit 1).
    The report tests these runs, and a held-out ensemble on seeds never used
    to choose a rule (OUT/held_out), against the paper's figures.

    Example: simledger experiment --seeds 101-104 --turns 20 --out results
    """
    from .sweep_command import print_outcome, result_document

    regime_names = [r.strip() for r in regimes.split(",") if r.strip()]
    study = study_sweep(regime_names, parse_seeds(seeds), agents, turns, regimes_file)
    specs = sweep_specs(study)
    held_specs = study_specs(regime_names, held_out_seeds(held_out), agents, turns, regimes_file) if report and held_out else []
    runs_dir = out / "runs"
    workers = workers or default_workers()
    started, events, result = time.perf_counter(), 0, None
    with study_progress() as progress:
        def counter(description: str, total: int):
            """Return a progress callback taking a run's event count, with this stage's own rate."""
            task = progress.add_task(description, total=total, rate="")
            stage_started, stage_events = time.perf_counter(), 0

            def done(count: int) -> None:
                nonlocal events, stage_events
                events, stage_events = events + count, stage_events + count
                rate = stage_events / max(time.perf_counter() - stage_started, 1e-9)
                progress.update(task, advance=1, rate=f"{rate:,.0f} events/s")
            return done

        if logs:
            task, counts = progress.add_task("runs", total=len(specs), rate=""), Counter()

            def ran(event: str, name: str) -> None:
                counts[event] += 1
                progress.update(task, advance=1, rate=", ".join(f"{n} {e}" for e, n in counts.items()))

            result = run_sweep(study, out, workers=workers, report=False, force=force, on_progress=ran)
            runs, rows = result.summaries, result.regime_rows
        else:
            played = counter("runs (in memory)", len(specs))
            runs = simulate_specs(specs, workers=workers, on_done=lambda _, count: played(count))
        held: list[dict] = []
        if held_specs:
            held_done = counter("held-out (in memory)", len(held_specs))
            held = simulate_specs(held_specs, workers=workers, on_done=lambda _, count: held_done(count))
            write_summaries(held, regime_summary(held), out / "held_out")
        if not logs:
            rows = regime_summary(runs)
            write_summaries(runs, rows, out)
        doc = {"out": str(out), "regimes": rows}
        if report and runs:
            doc.update(write_verdicts(out, runs, rows, runs_dir=runs_dir if logs else None, progress=progress,
                                      held_out=held))
    seconds = time.perf_counter() - started
    outcome = result_document(result, out) if result is not None else {"runs": len(specs)}
    if as_json:
        print_json({**outcome, "held_out_runs": len(held_specs), "events": events, "seconds": round(seconds, 1),
                    "workers": workers, **doc})
    else:
        if rows:
            print_summary(doc)
        held_note = f" and {len(held_specs)} held-out runs in memory ({events:,} events)" if held_specs else ""
        timing = f"{held_note} in {seconds:.1f} s with {workers} worker(s)"
        if result is not None:
            print_outcome(result, out, timing)
        else:
            console.print(f"{len(specs)} runs in memory{timing} -> {out}/", highlight=False, soft_wrap=True)
    if result is not None and result.failures:
        raise typer.Exit(1)


def summarize_folder(paths: list[Path], out: Path, *, report: bool, workers: int, progress: Progress,
                     held_out: list[dict] | None = None) -> dict:
    """Verify and fold every log, write the four summary files, the report and the verdicts; return what was
    written (a progress bar for each step)."""
    from ..study.summary import summarize as write_summary_files

    task = progress.add_task("summarize", total=len(paths), rate="")
    runs, rows = write_summary_files(paths, out, workers=workers, on_log=lambda path: progress.advance(task))
    doc: dict = {"out": str(out), "regimes": rows}
    if report:
        folders = {Path(p).parent for p in paths}
        doc.update(write_verdicts(out, runs, rows, runs_dir=folders.pop() if len(folders) == 1 else None,
                                  progress=progress, held_out=held_out))
    return doc


def write_verdicts(out: Path, runs: list[dict], rows: list[dict], *, runs_dir: Path | None, progress: Progress,
                   held_out: list[dict] | None) -> dict:
    """Write the report; return its path and the verdict of the runs (and of the held-out ensemble)."""
    from ..study.compare import judge_study
    from ..study.report import format_seeds, report_steps, write_report

    task = progress.add_task("report", total=report_steps(runs, runs_dir), rate="")
    write_report(out, runs, rows, runs_dir=runs_dir, held_out=held_out, on_step=lambda name: progress.advance(task))
    verdicts = {f"{name} {format_seeds(sorted({r['seed'] for r in ensemble}))}": judge_study(ensemble).headline()
                for name, ensemble in (("seeds", runs), ("held-out seeds", held_out or [])) if ensemble}
    return {"report": str(out / "report.md"), "verdicts": verdicts}


def print_summary(doc: dict) -> None:
    """Print the regime means and, with a report, each verdict."""
    print_regime_table(doc["regimes"])
    for seeds, headline in doc.get("verdicts", {}).items():
        console.print(f"{seeds}: {headline}", highlight=False, soft_wrap=True)
    if "report" in doc:
        console.print(f"details: {doc['report']}", highlight=False, soft_wrap=True)


@handle_errors
def summarize(
    logs: Annotated[list[Path], typer.Argument(help="Run logs (*.db).", readable=False)],
    out: Annotated[Path, typer.Option(help="Where to write the summary files.")] = Path("results"),
    report: Annotated[bool, typer.Option(help="Also write report.md and plots.")] = True,
    workers: Annotated[int, typer.Option(min=0, help="Worker processes (0 = all cores).")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Recompute the four summary files (and the report) from stored logs alone, after verifying each.

    Example: simledger summarize results/runs/*.db --out results
    """
    from ..study.summary import log_files

    paths = [Path(p) for p in log_files(logs)]
    if not paths:
        fail("none of the given files is a log (SQLite sidecars, lock and .head files are skipped)")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        fail(f"no such log: {missing[0]}")
    with study_progress() as progress:
        doc = summarize_folder(paths, out, report=report, workers=workers or default_workers(), progress=progress)
    if as_json:
        print_json({"runs": len(paths), **doc})
    else:
        print_summary(doc)


@handle_errors
@opt.with_llm_options
def run(
    db: Annotated[Path, typer.Argument(help="The log to create (or continue with --resume).", readable=False)],
    regime: Annotated[str, typer.Option(help="Regime name.")] = "baseline",
    seed: Annotated[int, typer.Option(help="Seed of the run.")] = 101,
    agents: Annotated[int, typer.Option(min=3)] = 8,
    turns: Annotated[int, typer.Option(min=1, help="Total turns of the run.")] = 40,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run (regime, seed, turns come from its log).")] = False,
    regimes_file: Annotated[Optional[Path], typer.Option(help="Your own regimes JSON.")] = None,
    keystore: Annotated[Optional[Path], typer.Option(
        "--keystore", metavar="DIR",
        help="Sign with keys from this directory (created 0700, keys 0600) instead of keys derived from the seed.",
    )] = None,
    policy: Annotated[str, typer.Option(help="study (the paper's heuristic) or llm (agents driven by a model).")] = "study",
    as_json: JsonFlag = False,
    llm: opt.LLMOptions = opt.LLMOptions(),
) -> None:
    """Play one run into DB; --resume continues an interrupted one to the same final head.

    With --policy llm a model drives the agents (all, or --llm-agents) through a
    chat-completions endpoint; every call is recorded in the log (docs/llm.md).

    Writes the log's signed head beside it (DB with suffix .head): keep a copy to
    check the log against later with `simledger verify DB --expect-head`.

    Example: simledger run baseline_101.db --regime baseline --seed 101 --turns 40

    Example: simledger run llm.db --policy llm --llm-url http://127.0.0.1:8080/v1 --llm-model qwen --agents 5 --turns 10
    """
    from ..ledger.head import head_file_of
    from ..ledger.store import is_unstarted_log
    from ..study.runner import execute_run, resume_run
    from .llm_commands import run_society

    catalogue = load_regimes(regimes_file)
    if policy not in ("study", "llm"):
        fail(f"--policy must be study or llm, got {policy!r}")
    started = db.exists() and db.stat().st_size > 0 and not is_unstarted_log(db)
    regime_plays_llm = regime in catalogue and catalogue[regime]["policy"].get("kind") == "llm"
    if policy == "llm" or regime_plays_llm or (resume and started and is_society_log(db)):
        run_society(db, regime=regime, seed=seed, agents=agents, turns=turns, resume=resume and started,
                    catalogue=catalogue, options=llm, as_json=as_json)
        return
    if resume and started:
        finished = resume_run(db, catalogue, keystore=keystore)
    else:
        if regime not in catalogue:
            fail(f"unknown regime {regime!r}; known: {', '.join(catalogue)}")
        if db.exists() and db.stat().st_size > 0 and not resume:
            fail(f"{db} exists; use --resume to continue it or remove it")
        finished = execute_run(db, regime_name=regime, regime=catalogue[regime], seed=seed, agents=agents, turns=turns,
                               rules=regime_rules(catalogue[regime]), keystore=keystore)
    head, last, events = finished.head_hash.hex(), finished.state.sealed_turn, finished.state.events
    finished.close()
    if as_json:
        print_json({"path": str(db), "turns": last, "events": events, "head_hash": head,
                    "head_file": str(head_file_of(db))})
    else:
        console.print(f"{db}: {last} turns, {events:,} events, head {head}; signed head in {head_file_of(db)}"
                      " (keep a copy to pin it)", soft_wrap=True, highlight=False)


def is_society_log(db: Path) -> bool:
    """Return whether a log's genesis records a society (LLM-driven or mixed agents)."""
    from ..ledger.store import Store
    from ..orchestrator.society import is_society_run

    with Store(db, write=True) as store:  # as the resume will: a killed writer's WAL needs a writer to recover
        return is_society_run(store.genesis().identity)


def register(app: typer.Typer) -> None:
    app.command()(experiment)
    app.command()(summarize)
    app.command()(run)
