"""Many runs at once (a study or a sweep) as long-format tables: one frame, a row per run and turn (and agent).

Each row carries the run's identity first: ``run``, ``scenario`` (the regime, or
the sweep scenario), ``seed``, then one column per swept parameter, as radCAD and
Mesa's batch runner hand them out, ready for ``groupby``.

>>> import simledger
>>> study = simledger.open_study("results")                       # doctest: +SKIP
>>> study.turns().groupby(["scenario", "turn"]).gini_wealth.mean().unstack(0).plot()  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from simledger.ledger.errors import NotALog
from .frames import to_frame
from .reader import DTYPES, TABLES, RunLog

ID_COLUMNS = ("run", "scenario", "seed")


def find_logs(folder: str | Path) -> list[Path]:
    """Return the run logs of an experiment or sweep folder (``DIR/runs/*.db``), or of ``DIR/*.db``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotALog(f"{folder}: no such folder")
    runs = folder / "runs"
    logs = sorted(runs.glob("*.db")) if runs.is_dir() else []
    logs = logs or sorted(folder.glob("*.db"))
    if not logs:
        raise NotALog(f"{folder}: no run logs (*.db) here or in {runs}")
    return logs


def open_study(source: str | Path | Iterable[str | Path]) -> "Study":
    """Return the runs of a study or sweep folder (its ``runs/*.db``), or of the given log files."""
    paths = find_logs(source) if isinstance(source, (str, Path)) else [Path(p) for p in source]
    return Study([RunLog(p) for p in paths])


class Study:
    """Several runs read together; ``runs`` are sorted by scenario, seed and name."""

    def __init__(self, runs: list[RunLog]) -> None:
        self.runs = sorted(runs, key=lambda r: (r.scenario, r.seed, r.name))
        self.param_names = sorted({name for run in self.runs for name in run.params})

    def __repr__(self) -> str:
        return f"<Study of {len(self.runs)} runs, {len(self.scenarios())} scenarios>"

    def __getitem__(self, name: str) -> RunLog:
        """Return the run named ``name`` (its file stem, e.g. ``baseline_101``)."""
        for run in self.runs:
            if name in (run.name, run.path.stem):
                return run
        raise KeyError(name)

    def scenarios(self) -> list[str]:
        return sorted({run.scenario for run in self.runs})

    def id_columns(self, table: str) -> list[str]:
        """Return the identity columns: run, scenario, seed, then each parameter (``param_<name>`` on a clash)."""
        taken = set(ID_COLUMNS) | set(TABLES[table])
        return [*ID_COLUMNS, *(f"param_{p}" if p in taken else p for p in self.param_names)]

    def rows(self, table: str) -> tuple[list[str], list[tuple]]:
        """Return (columns, rows) of ``accounts``, ``turns`` or ``contracts`` over every run."""
        rows: list[tuple] = []
        for run in self.runs:
            ident = (run.name, run.scenario, run.seed, *(run.params.get(p) for p in self.param_names))
            rows.extend(ident + row for row in run.rows(table))
        return [*self.id_columns(table), *TABLES[table]], rows

    def frame(self, table: str) -> Any:
        columns, rows = self.rows(table)
        return to_frame(columns, rows, dtypes=DTYPES.get(table))

    def accounts(self):
        """Return every run's ``RunLog.accounts()`` rows, identity columns first."""
        return self.frame("accounts")

    def turns(self):
        """Return every run's ``RunLog.turns()`` rows, identity columns first."""
        return self.frame("turns")

    def contracts(self):
        """Return every run's ``RunLog.contracts()`` rows, identity columns first."""
        return self.frame("contracts")
