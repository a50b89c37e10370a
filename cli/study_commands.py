"""``simledger experiment``, ``summarize`` and ``run``: the study and single runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..study.experiment import DEFAULT_SEEDS, default_workers
from ..study.regimes import DEFAULT_REGIMES, load_regimes, regime_rules
from ..study.sweep import parse_seeds, run_sweep, study_sweep
from .common import console, fail, handle_errors


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
    console.print(table)


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
    force: Annotated[bool, typer.Option(help="Replace finished logs in OUT/runs that record other runs.")] = False,
) -> None:
    """Run the paper's study: every run a verified log in OUT/runs, summaries and report in OUT.

    A rerun skips logs that already verify as the same runs; a folder holding
    finished runs of another study is refused unless --force. Exit code 1 when
    some run failed (listed in OUT/failures.json).

    Example: simledger experiment --seeds 101-104 --turns 20 --out results
    """
    from ..study.compare import compare
    from .sweep_command import report_failures, sweep_progress

    study = study_sweep([r.strip() for r in regimes.split(",") if r.strip()], parse_seeds(seeds), agents, turns,
                        regimes_file)
    workers = workers or default_workers()
    started = time.perf_counter()
    progress, advance = sweep_progress(len(study.scenarios) * len(study.seeds))
    with progress:
        result = run_sweep(study, out, workers=workers, report=report, force=force, on_progress=advance)
    if result.regime_rows:
        print_regime_table(result.regime_rows)
    if report and result.summaries:
        console.print(f"paper comparison: {compare(result.summaries, result.regime_rows).verdict}  "
                      f"(details: {out}/report.md)")
    report_failures(result, out, f" in {time.perf_counter() - started:.1f} s with {workers} worker(s)")


def summarize_folder(paths: list[Path], out: Path, *, report: bool, workers: int = 1) -> None:
    """Verify and fold every log, write the four summary files, the report and the comparison."""
    from ..study.compare import compare
    from ..study.report import write_report
    from ..study.summary import summarize as write_summary_files

    runs, rows = write_summary_files(paths, out, workers=workers)
    print_regime_table(rows)
    if report:
        folders = {Path(p).parent for p in paths}
        write_report(out, runs, rows, runs_dir=folders.pop() if len(folders) == 1 else None)
        console.print(f"paper comparison: {compare(runs, rows).verdict}  (details: {out}/report.md)")


@handle_errors
def summarize(
    logs: Annotated[list[Path], typer.Argument(help="Run logs (*.db).")],
    out: Annotated[Path, typer.Option(help="Where to write the summary files.")] = Path("results"),
    report: Annotated[bool, typer.Option(help="Also write report.md and plots.")] = True,
    workers: Annotated[int, typer.Option(min=0, help="Worker processes (0 = all cores).")] = 0,
) -> None:
    """Recompute the four summary files (and the report) from stored logs alone, after verifying each.

    Example: simledger summarize results/runs/*.db --out results
    """
    missing = [str(p) for p in logs if not p.is_file()]
    if missing:
        fail(f"no such log: {missing[0]}")
    summarize_folder(logs, out, report=report, workers=workers or default_workers())


@handle_errors
def run(
    db: Annotated[Path, typer.Argument(help="The log to create (or continue with --resume).")],
    regime: Annotated[str, typer.Option(help="Regime name.")] = "baseline",
    seed: Annotated[int, typer.Option(help="Seed of the run.")] = 101,
    agents: Annotated[int, typer.Option(min=3)] = 8,
    turns: Annotated[int, typer.Option(min=1, help="Total turns of the run.")] = 40,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run (regime, seed, turns come from its log).")] = False,
    regimes_file: Annotated[Optional[Path], typer.Option()] = None,
    keystore: Annotated[Optional[Path], typer.Option(
        "--keystore", metavar="DIR",
        help="Sign with keys from this directory (created 0700, keys 0600) instead of keys derived from the seed.",
    )] = None,
) -> None:
    """Play one study run into DB; --resume continues an interrupted one to the same final head.

    Writes the log's signed head beside it (DB with suffix .head): keep a copy to
    check the log against later with `simledger verify DB --expect-head`.

    Example: simledger run baseline_101.db --regime baseline --seed 101 --turns 40
    """
    from ..ledger.store import is_unstarted_log
    from ..study.runner import execute_run, resume_run

    catalogue = load_regimes(regimes_file)
    if resume and db.exists() and db.stat().st_size > 0 and not is_unstarted_log(db):
        finished = resume_run(db, catalogue, keystore=keystore)
    else:
        if regime not in catalogue:
            fail(f"unknown regime {regime!r}; known: {', '.join(catalogue)}")
        if db.exists() and db.stat().st_size > 0 and not resume:
            fail(f"{db} exists; use --resume to continue it or remove it")
        finished = execute_run(db, regime_name=regime, regime=catalogue[regime], seed=seed, agents=agents, turns=turns,
                               rules=regime_rules(catalogue[regime]), keystore=keystore)
    head, last = finished.head_hash.hex(), finished.state.sealed_turn
    finished.close()
    console.print(f"{db}: {last} turns, head {head}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(experiment)
    app.command()(summarize)
    app.command()(run)
