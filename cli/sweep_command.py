"""``simledger sweep``: a parameter sweep from a TOML spec, on a local pool or a Dask cluster.

Exit codes: 0 every run finished and verified, 1 some runs failed (listed in
DIR/failures.json), 2 a user error (bad spec or options; one line, no traceback).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..projections.metrics import headline_metrics
from ..study.experiment import default_workers
from ..study.sweep.tables import CI_CONVENTION
from ..study.sweep import (
    Sweep, SweepResult, format_value, load_sweep, parse_shard, run_sweep, select_shard, sweep_specs,
)
from .common import console, err_console, fail, handle_errors, print_json
from .output import show_table

DASK_TIMEOUT = "30s"


def connect_dask(address: str):
    """Return a Dask client connected to ``address`` (the optional ``dask`` extra must be installed)."""
    try:
        from distributed import Client
    except ImportError:
        fail("--dask needs the optional Dask extra: pip install 'simledger[dask]'")
    try:
        return Client(address, timeout=DASK_TIMEOUT)
    except (OSError, TimeoutError) as err:
        fail(f"cannot reach the Dask scheduler at {address}: {err}")


def format_metric(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


def print_sweep_table(sweep: Sweep, result: SweepResult, limit: int = 30) -> None:
    """Print per-scenario parameter values and headline means (the first ``limit`` scenarios)."""
    rows = result.sweep_rows
    if not rows:
        return
    labels = {s.name: s.label or s.base_regime for s in sweep.scenarios}
    table = Table(title=f"Sweep means over seeds ({len(rows)} scenarios; full names in sweep_summary.csv)",
                  caption=f"sweep_summary.csv also gives each mean's {CI_CONVENTION}")
    table.add_column("scenario")
    for knob in sweep.knobs:
        table.add_column(knob, justify="right")
    table.add_column("runs", justify="right")
    for metric in headline_metrics():
        table.add_column(metric.headline, justify="right")
    for row in rows[:limit]:
        cells = [format_value(row[k]) for k in sweep.knobs] + [str(row["n_runs"])]
        cells += [format_metric(row[f"{m.run}_mean"]) for m in headline_metrics()]
        table.add_row(labels.get(row["scenario"], row["scenario"]), *cells)
    show_table(table)
    if len(rows) > limit:
        console.print(f"... {len(rows) - limit} more in sweep_summary.csv", highlight=False)


def sweep_progress(total: int):
    """Return the progress display, the run callback, and the call that closes the last step.

    After the last run the sweep writes its summaries, report and plots (seconds, with no run events):
    a second bar, without a count, says so while it lasts.
    """
    from .study_commands import study_progress

    progress = study_progress()
    task = progress.add_task("runs", total=total, rate="")
    counts = {"skipped": 0, "done": 0, "failed": 0}
    outputs: list = []

    def start_outputs() -> None:
        outputs.append(progress.add_task("outputs", total=None, rate="summaries, report, plots"))

    def advance(event: str, name: str) -> None:
        counts[event] += 1
        progress.update(task, advance=1, rate=", ".join(f"{v} {k}" for k, v in counts.items() if v))
        if sum(counts.values()) == total:
            start_outputs()

    def finish() -> None:
        if not outputs:  # no run at all (an empty shard)
            start_outputs()
        progress.update(outputs[0], total=1, completed=1)

    return progress, advance, finish


@handle_errors
def sweep(
    spec: Annotated[Path, typer.Argument(help="The sweep spec (TOML; see study/data/example_sweep.toml).")],
    out: Annotated[Path, typer.Option(help="Output folder: runs/, summaries, sweep_summary.*, plots/.")] = (
        Path("sweep")),
    workers: Annotated[int, typer.Option(min=0, help="Local worker processes (0 = all cores).")] = 0,
    dask: Annotated[Optional[str], typer.Option(help="Run on a Dask cluster, e.g. tcp://scheduler:8786.")] = None,
    shared_dir: Annotated[Optional[Path], typer.Option(help="Folder for the logs that every worker can see "
                                                             "(default OUT/runs).")] = None,
    return_logs: Annotated[bool, typer.Option(help="Workers share no folder: they return each finished log "
                                                   "and this client writes and verifies it.")] = False,
    shard: Annotated[Optional[str], typer.Option(help="Run only the i-th of k slices, e.g. 1/4.")] = None,
    dry_run: Annotated[bool, typer.Option(help="List the runs (of this shard) and exit.")] = False,
    report: Annotated[bool, typer.Option(help="Also write the study's report.md and plots.")] = True,
    plots: Annotated[bool, typer.Option(help="Write plots/sweep_<knob>.png and .svg.")] = True,
    force: Annotated[bool, typer.Option(help="Replace finished logs that record other runs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON (progress stays on stderr).")] = (
        False),
) -> None:
    """Run a parameter sweep: every run a verified log, resumable, shardable; summaries grouped by scenario.

    Example: simledger sweep study/data/example_sweep.toml --out sweep --workers 4

    Split over machines: simledger sweep spec.toml --shard 2/3 --out part2; then
    simledger summarize part*/runs/*.db --out merged. Exit code 1 when some run failed.
    """
    parsed = load_sweep(spec)
    shard_slice = parse_shard(shard) if shard is not None else None
    if dask and workers:
        fail("--workers is for the local pool; with --dask the cluster decides (drop one of them)")
    if return_logs and shared_dir is not None:
        fail("--return-logs and --shared-dir exclude each other (logs are either shared or returned)")
    specs = select_shard(sweep_specs(parsed), shard_slice)
    if dry_run:
        if as_json:
            print_json({"runs": [f"{run_spec.name}.db" for run_spec in specs]})
            return
        for run_spec in specs:
            console.print(f"{run_spec.name}.db", highlight=False, soft_wrap=True)
        return
    result = execute(parsed, out, workers=workers, dask=dask, shared_dir=shared_dir, return_logs=return_logs,
                     shard=shard_slice, report=report, plots=plots, force=force, total=len(specs))
    if as_json:
        print_json({**result_document(result, out), "scenarios": result.sweep_rows})
    else:
        print_sweep_table(parsed, result)
        print_outcome(result, out)
    if result.failures:
        raise typer.Exit(1)


def result_document(result: SweepResult, out: Path) -> dict:
    """Return what a sweep (or the study) did, as JSON: runs skipped, run, replaced, failed."""
    return {"out": str(out), "runs": len(result.runs), "skipped": len(result.skipped), "ran": len(result.ran),
            "replaced": len(result.replaced), "failed": len(result.failures), "failures": result.failures}


def print_outcome(result: SweepResult, out: Path, timing: str = "") -> None:
    """Print each failed run and the closing count line."""
    for failure in result.failures:
        err_console.print(f"[bold red]failed:[/] {failure['run']}: {escape(failure['error'])}", highlight=False,
                          soft_wrap=True)
    replaced = f", {len(result.replaced)} replaced" if result.replaced else ""
    console.print(f"{len(result.runs)} runs: {len(result.skipped)} already done, {len(result.ran)} ran{replaced}, "
                  f"{len(result.failures)} failed{timing} -> {out}/", highlight=False, soft_wrap=True)


def execute(parsed, out: Path, *, workers: int, dask: str | None, shared_dir: Path | None, return_logs: bool,
            shard, report: bool, plots: bool, force: bool, total: int) -> SweepResult:
    """Run the sweep on the chosen executor, closing the Dask client (if any) afterwards."""
    client = connect_dask(dask) if dask else None
    try:
        executor = client.get_executor(pure=False) if client is not None else None
        count = sum(client.nthreads().values()) if client is not None else (workers or default_workers())
        progress, advance, finish = sweep_progress(total)
        with progress:
            result = run_sweep(parsed, out, executor=executor, workers=count, shard=shard, runs_dir=shared_dir,
                               return_logs=return_logs, report=report, plots=plots, force=force,
                               on_progress=advance)
            finish()
            return result
    finally:
        if client is not None:
            client.close()


def register(app: typer.Typer) -> None:
    app.command()(sweep)
