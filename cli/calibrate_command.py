"""``simledger calibrate``: fit engine rules to the paper's figures, judged on held-out seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..study.experiment import default_workers
from .common import console, err_console, fail, handle_errors, print_json


@handle_errors
def calibrate(
    spec_file: Annotated[Path, typer.Argument(help="The calibration spec (TOML; see study/data/example_calibration.toml).")],
    out: Annotated[Path, typer.Option(help="Output folder: Optuna storage, report.md, loss.png, held_out/.")] = Path("calibration"),
    trials: Annotated[Optional[int], typer.Option(min=1, help="Total trials (overrides the spec's).")] = None,
    workers: Annotated[int, typer.Option(min=0, help="Worker processes (0 = all cores).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON (progress stays on stderr).")] = (
        False),
) -> None:
    """Fit the spec's candidate Rules by simulated moments; test the best on held-out seeds.

    Runs are played in memory. A re-run with the same spec and folder continues where the last one stopped.

    Example: simledger calibrate study/data/example_calibration.toml --out calibration
    """
    import dataclasses

    try:
        import optuna  # noqa: F401
    except ImportError:
        fail('simledger calibrate needs Optuna: pip install "simledger[calibrate]"')
    from ..study.calibrate import calibrate as run_calibration
    from ..study.calibrate import write_calibration_report
    from ..study.calibration_spec import load_calibration

    spec = load_calibration(spec_file)
    if trials is not None:
        spec = dataclasses.replace(spec, trials=trials)
    # On stderr and only on a terminal, like every progress bar: stdout holds the result.
    progress = Progress(TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[best]}"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                        disable=not err_console.is_terminal)
    with progress:
        task = progress.add_task("trials", total=None, best="")
        result = run_calibration(
            spec, out, workers=workers or default_workers(),
            on_start=lambda remaining: progress.update(task, total=remaining),
            on_trial=lambda trial, best: progress.update(task, advance=1, best=f"best loss {best:.3f}"))
    path = write_calibration_report(result, out)
    best = min(result.trials, key=lambda t: (t.loss, t.number))
    if as_json:
        default = result.held_out_default
        print_json({"trials": len(result.trials), "best_trial": best.number, "best_loss": best.loss,
                    "chosen": dict(sorted(result.chosen.items())), "held_out": result.held_out.headline(),
                    "held_out_default": None if default is None else default.headline(), "report": str(path)})
        return
    console.print(f"{len(result.trials)} trials; chosen rules (trial {best.number}, loss {best.loss:.3f}): "
                  + ", ".join(f"{k} = {v}" for k, v in sorted(result.chosen.items())), highlight=False, soft_wrap=True)
    for name, verdict in (("chosen", result.held_out), ("default", result.held_out_default)):
        if verdict is not None:
            console.print(f"held-out seeds, {name} rules: {verdict.headline()}; {verdict.targets_summary()}",
                          highlight=False, soft_wrap=True)
    console.print(f"report: {path}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(calibrate)
