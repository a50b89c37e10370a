"""``simledger compare``, ``report`` and ``yardstick``: a study's results beside the paper's.

Both read a results folder written by ``simledger experiment`` or
``simledger summarize`` (``run_summaries.json``, ``regime_summary.json``, and
``runs/`` for the balance trajectories). The paper's figures default to the
copies shipped with the package.

Exit codes of ``compare``: 0 when every published figure is indistinguishable
from the paper's (no test rejects after the multiple-testing correction), 1 when
some figure differs, 2 on a usage error (missing or malformed files), with a
one-line message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..projections.metrics import run_csv_fields
from ..study.paper import METRICS, Paper, PaperDataError, load_paper
from .common import console, fail, handle_errors, print_json
from .output import show_markdown, show_table

RESULTS_HELP = "A results folder holding run_summaries.json (from `simledger experiment` or `summarize`)."
PAPER_HELP = "The paper's regime_summary.csv (default: the copy shipped with simledger)."
PAPER_RUNS_HELP = "The paper's run_summaries.csv, for its run-level SDs (default: the shipped copy)."


def read_json_file(path: Path, what: str) -> Any:
    """Return the JSON in ``path``, or exit 2 with a one-line message naming ``what`` it should be."""
    if not path.is_file():
        fail(f"{path} not found (expected the study's {what})")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        fail(f"{path} is not valid JSON: {err}")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_run_summaries(results_dir: Path) -> list[dict[str, Any]]:
    """Return the run summaries of a results folder, checked for the fields the comparison reads."""
    if not results_dir.is_dir():
        fail(f"{results_dir} is not a folder")
    path = results_dir / "run_summaries.json"
    runs = read_json_file(path, "run summaries")
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        fail(f"{path}: expected a JSON list of run summaries")
    if not runs:
        fail(f"{path}: no runs")
    for i, run in enumerate(runs):
        missing = [k for k in run_csv_fields() if k not in run]
        if missing:
            fail(f"{path}: run {i} has no field {missing[0]!r}")
        wrong = [k for k in run_csv_fields() if k not in ("run_id", "regime") and not is_number(run[k])]
        if wrong:
            fail(f"{path}: run {run['run_id']}: {wrong[0]} is not a number")
    return runs


def load_regime_rows(results_dir: Path, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return regime_summary.json's rows, or recompute them from the runs when the file is absent."""
    from ..study.metrics import regime_summary

    path = results_dir / "regime_summary.json"
    if not path.exists():
        return regime_summary(runs)
    rows = read_json_file(path, "regime summary")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        fail(f"{path}: expected a JSON list of regime rows")
    for row in rows:
        missing = [k for k in ("regime", "n_runs", *METRICS) if k not in row]
        if missing:
            fail(f"{path}: a row has no field {missing[0]!r}")
    return rows


def load_paper_files(paper: Optional[Path], paper_runs: Optional[Path]) -> Paper:
    try:
        return load_paper(paper, paper_runs)
    except PaperDataError as err:
        fail(str(err))


@handle_errors
def compare(
    results_dir: Annotated[Path, typer.Argument(help=RESULTS_HELP)],
    paper: Annotated[Optional[Path], typer.Option(help=PAPER_HELP)] = None,
    paper_runs: Annotated[Optional[Path], typer.Option(help=PAPER_RUNS_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Test a study against the paper's per-run rows and printed figures (Welch, KS, Fisher, ...).

    Prints how many published figures are statistically indistinguishable from
    the paper's at alpha 0.05 (Benjamini-Hochberg over all tests), the worst
    ones, and one table of every figure. Any number of seeds per regime.
    Exit 0 when every figure is indistinguishable, 1 when some differ, 2 on a usage error.

    Example: simledger compare results --json
    """
    from ..study.compare import judge_study

    runs = load_run_summaries(results_dir)
    rows = load_regime_rows(results_dir, runs)
    agreement = judge_study(runs, rows, load_paper_files(paper, paper_runs))
    if as_json:
        typer.echo(agreement.to_json(), nl=False)
    else:
        show_markdown(agreement.to_markdown())
    if agreement.n_indistinguishable < len(agreement.figures):
        raise typer.Exit(1)


@handle_errors
def report(
    results_dir: Annotated[Path, typer.Argument(help=RESULTS_HELP)],
    runs_dir: Annotated[Optional[Path], typer.Option(
        help="Folder of the run logs, for the balance trajectories (default: RESULTS_DIR/runs when present).")] = None,
    paper: Annotated[Optional[Path], typer.Option(help=PAPER_HELP)] = None,
    paper_runs: Annotated[Optional[Path], typer.Option(help=PAPER_RUNS_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """Regenerate RESULTS_DIR/report.md and its plots from the summaries (byte-identical for the same inputs).

    A held-out ensemble in RESULTS_DIR/held_out (written by `simledger experiment`) gets its own verdict.

    Example: simledger report results
    """
    from ..study.report import write_report

    runs = load_run_summaries(results_dir)
    rows = load_regime_rows(results_dir, runs)
    if runs_dir is None and (results_dir / "runs").is_dir():
        runs_dir = results_dir / "runs"
    elif runs_dir is not None and not runs_dir.is_dir():
        fail(f"{runs_dir} is not a folder")
    held_dir = results_dir / "held_out"
    held_out = load_run_summaries(held_dir) if (held_dir / "run_summaries.json").is_file() else None
    path = write_report(results_dir, runs, rows, runs_dir=runs_dir, paper=load_paper_files(paper, paper_runs),
                        held_out=held_out)
    figures = sorted(str(p) for p in (results_dir / "plots").iterdir() if p.suffix in (".png", ".svg"))
    if as_json:
        print_json({"report": str(path), "figures": figures})
    else:
        console.print(f"wrote {path} and {len(figures)} figure files (PNG, SVG) in {results_dir / 'plots'}/",
                      soft_wrap=True, highlight=False)


@handle_errors
def yardstick(
    results_dir: Annotated[Path, typer.Argument(help="A results folder of a large in-memory ensemble (at least "
                                                "12 x PAPERS + 240 seeds), e.g. from `simledger experiment --seeds "
                                                "30001-33600 --no-logs --held-out 0`.")],
    papers: Annotated[int, typer.Option(min=1, help="Stand-in papers: the first PAPERS blocks of 12 seeds.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rates as JSON.")] = False,
) -> None:
    """How often a faithful engine would meet each reproduction target, beside how often ours does.

    Our engine stands in for the original: each block of 12 seeds plays the paper
    and each later 120-seed range the ensemble, judged as against the real paper.
    The rates assume the original's run-to-run spread is like ours.

    Example: simledger yardstick results_large --papers 100
    """
    from ..study.yardstick import YardstickError, compute_yardstick, split_seeds
    from .study_commands import study_progress

    runs = load_run_summaries(results_dir)
    paper = load_paper()
    try:
        stand_ins, ranges = split_seeds(runs, papers)
    except YardstickError as err:
        fail(str(err))
    with study_progress() as progress:
        task = progress.add_task("pairs", total=len(stand_ins) * len(ranges), rate="")
        result = compute_yardstick(runs, paper, papers, on_pair=lambda: progress.advance(task))
    if as_json:
        print_json(result.to_dict())
        return
    table = Table(title=f"Reproduction targets: {result.pairs} (stand-in paper, 120-seed range) pairs; "
                        f"{result.ranges} ranges against the paper", title_justify="left")
    table.add_column("target")
    table.add_column("a faithful engine", justify="right")
    table.add_column("ours, against the paper", justify="right")
    for row in result.to_dict()["targets"]:
        table.add_row(row["target"], f"{row['faithful_rate']:.1%}", f"{row['ours_met']} of {row['ours_ranges']}")
    show_table(table)


def register(app: typer.Typer) -> None:
    app.command()(compare)
    app.command()(report)
    app.command()(yardstick)
