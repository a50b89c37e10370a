"""``simledger export`` (a run's or a study's tables as CSV/Parquet) and ``simledger datasette-metadata``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .common import console, err_console, fail, handle_errors, print_json


def collect_logs(sources: list[Path]) -> list[Path]:
    """Return the logs named: files as given (skipping the sidecars and heads ``summarize`` skips, so
    ``export runs/*`` works), folders by their ``runs/*.db`` (or ``*.db``)."""
    from simledger.studies import find_logs

    from ..study.summary import log_files

    logs: list[Path] = []
    for source in sources:
        logs.extend(find_logs(source) if source.is_dir() else [Path(p) for p in log_files([source])])
    return logs


def default_out(sources: list[Path]) -> Path:
    if len(sources) != 1:
        fail("several sources: say where to write with --out DIR")
    source = sources[0]
    return source / "export" if source.is_dir() else source.with_name(f"{source.stem}_export")


@handle_errors
def export(
    sources: Annotated[list[Path], typer.Argument(metavar="RUN.db|DIR", show_default=False, readable=False,
                                                  help="Run logs, or folders of them (an experiment's or sweep's output).")],
    fmt: Annotated[str, typer.Option("--format", metavar="csv|parquet", help="File format.")] = "csv",
    out: Annotated[Optional[Path], typer.Option("--out", metavar="DIR",
                                                help="Where to write (default: DIR/export, or RUN_export beside RUN.db).")] = None,
    verify: Annotated[bool, typer.Option(help="Verify every log before exporting (nothing is written if one fails).")] = True,
    workers: Annotated[int, typer.Option(min=0, help="Processes verifying logs (0 = all cores).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the files written as JSON.")] = False,
) -> None:
    """Write the accounts (per turn and agent), turns and contracts tables, per run and combined.

    Combined tables (OUT/accounts.csv, ...) start with the run, scenario, seed and parameter columns; per-run tables are in OUT/runs/<run>/. Parquet needs pyarrow.

    Example: simledger export results --format parquet
    """
    from simledger.export import check_format, export_study
    from simledger.studies import open_study
    from simledger.study.experiment import default_workers

    out = out or default_out(sources)
    try:
        check_format(fmt)
    except ImportError as err:
        fail(str(err))
    study = open_study(collect_logs(sources))
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("verify" if verify else "export", total=len(study.runs) if verify else None)
        written = export_study(study, out, fmt, verify=verify, workers=workers or default_workers(),
                               on_verified=lambda run: progress.advance(task))
    if as_json:
        print_json({"format": fmt, "out": str(out), "runs": len(study.runs), "files": [str(p) for p in written]})
        return
    console.print(f"{len(study.runs)} run(s): accounts, turns, contracts as {fmt} -> {out}/ (combined) and "
                  f"{out}/runs/<run>/ (per run)", highlight=False, markup=False, soft_wrap=True)


@handle_errors
def datasette_metadata(
    logs: Annotated[list[Path], typer.Argument(metavar="RUN.db", show_default=False, readable=False,
                                               help="The run logs you will open in Datasette.")],
    out: Annotated[Optional[Path], typer.Option("--out", metavar="FILE", help="Write here instead of printing.")] = None,
) -> None:
    """Print Datasette metadata for run logs: table titles, descriptions, JSON columns, contracts sorted by rank.

    Example: simledger datasette-metadata run.db > metadata.json && datasette run.db -m metadata.json
    """
    from simledger.datasette import datasette_metadata as build

    missing = [str(p) for p in logs if not p.is_file()]
    if missing:
        fail(f"{missing[0]}: no such file")
    text = json.dumps(build(logs), indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command()(export)
    app.command("datasette-metadata")(datasette_metadata)
