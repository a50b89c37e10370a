"""``simledger experiment``, ``summarize`` and ``run``: the study and single runs."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..study.experiment import DEFAULT_HELD_OUT, DEFAULT_SEEDS, HELD_OUT_FIRST, default_workers
from ..study.regimes import DEFAULT_REGIMES, load_regimes, regime_rules
from ..study.model_runs import LLM_TABLE
from ..study.study_run import StudyProgress, run_study, summarize_study
from ..study.sweep import parse_seeds
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


class BarProgress(StudyProgress):
    """Draw each stage of a study as a bar: logged runs count what happened to them, runs in memory show
    their rate in events per second."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def logged(self, total: int):
        task, counts = self.progress.add_task("runs", total=total, rate=""), Counter()

        def ran(event: str, name: str) -> None:
            counts[event] += 1
            self.progress.update(task, advance=1, rate=", ".join(f"{n} {e}" for e, n in counts.items()))
        return ran

    def played(self, stage: str, total: int):
        task = self.progress.add_task(f"{stage} (in memory)", total=total, rate="")
        started, events = time.perf_counter(), 0

        def done(count: int) -> None:
            nonlocal events
            events += count
            rate = events / max(time.perf_counter() - started, 1e-9)
            self.progress.update(task, advance=1, rate=f"{rate:,.0f} events/s")
        return done

    def folded(self, total: int):
        task = self.progress.add_task("summarize", total=total, rate="")
        return lambda path: self.progress.advance(task)

    def report(self, total: int):
        task = self.progress.add_task("report", total=total, rate="")
        return lambda step: self.progress.advance(task)


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

    workers = workers or default_workers()
    started = time.perf_counter()
    with study_progress() as progress:
        study = run_study([r.strip() for r in regimes.split(",") if r.strip()], parse_seeds(seeds), agents=agents,
                          turns=turns, out=out, workers=workers, regimes_file=regimes_file, report=report,
                          logs=logs, held_out=held_out, force=force, progress=BarProgress(progress))
    seconds, result, doc = time.perf_counter() - started, study.sweep, study.summary
    outcome = result_document(result, out) if result is not None else {"runs": study.planned}
    if as_json:
        print_json({**outcome, "held_out_runs": study.held_out_runs, "events": study.events,
                    "seconds": round(seconds, 1), "workers": workers, **doc})
    else:
        if doc["regimes"]:
            print_summary(doc)
        held_note = (f" and {study.held_out_runs} held-out runs in memory ({study.events:,} events)"
                     if study.held_out_runs else "")
        timing = f"{held_note} in {seconds:.1f} s with {workers} worker(s)"
        if result is not None:
            print_outcome(result, out, timing)
        else:
            console.print(f"{study.planned} runs in memory{timing} -> {out}/", highlight=False, soft_wrap=True)
    if result is not None and result.failures:
        raise typer.Exit(1)


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
        doc = summarize_study(paths, out, report=report, workers=workers or default_workers(),
                              progress=BarProgress(progress))
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
    # A regime whose llm table names the endpoint is played as a sweep would play it (execute_run);
    # one whose policy is an llm spec without a table takes the endpoint from the --llm options.
    regime_plays_llm = (regime in catalogue and catalogue[regime]["policy"].get("kind") == "llm"
                        and LLM_TABLE not in catalogue[regime])
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
