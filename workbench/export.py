"""Write a study's (or one run's) tables to files: per run and combined, as CSV or Parquet.

Layout under ``out``: ``accounts``, ``turns`` and ``contracts`` of all runs together
(identity columns first, as :class:`simledger.Study` gives them), and the same three
per run in ``runs/<log file stem>/``. Cells are as the run.db's read models store
them: 0/1 flags, JSON text for ``errors_by_reason``, empty (CSV) or null (Parquet)
where a value is missing. CSV needs nothing beyond the standard library; Parquet
needs pyarrow (``pip install 'simledger[parquet]'``).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable, Sequence

from simledger.ledger.errors import ChainError, LedgerError
from .reader import TABLES, RunLog
from .studies import Study

FORMATS = ("csv", "parquet")
PYARROW_MISSING = "Parquet needs pyarrow: pip install 'simledger[parquet]'"


def write_csv(path: Path, columns: Sequence[str], rows: list[tuple]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


def arrow_column(values: list):
    """Return a column's Arrow array; as text when its values share no type (a parameter swept over 1 and "a")."""
    import pyarrow

    try:
        return pyarrow.array(values)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError):
        return pyarrow.array([None if value is None else str(value) for value in values])


def write_parquet(path: Path, columns: Sequence[str], rows: list[tuple]) -> None:
    import pyarrow
    import pyarrow.parquet

    table = pyarrow.table({name: arrow_column([row[i] for row in rows]) for i, name in enumerate(columns)})
    pyarrow.parquet.write_table(table, path)


WRITERS: dict[str, Callable[[Path, Sequence[str], list[tuple]], None]] = {"csv": write_csv, "parquet": write_parquet}


def check_format(fmt: str) -> None:
    """Raise before anything is written: an unknown format (LedgerError), or Parquet without pyarrow (ImportError)."""
    if fmt not in WRITERS:
        raise LedgerError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise ImportError(PYARROW_MISSING) from None


def write_table(path: Path, fmt: str, columns: Sequence[str], rows: list[tuple]) -> Path:
    """Write one table completely or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        WRITERS[fmt](temporary, columns, rows)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def verify_logs(runs: list[RunLog], workers: int = 1, on_verified: Callable[[RunLog], None] | None = None) -> None:
    """Verify every run's log, ``workers`` at a time; raise ChainError naming the first log that fails."""
    from concurrent.futures import ProcessPoolExecutor

    from simledger.ledger.verify import verify_log

    paths = [run.path for run in runs]
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 and len(paths) > 1 else None
    try:
        results = pool.map(verify_log, paths) if pool else map(verify_log, paths)
        for run, result in zip(runs, results):
            if not result.ok:
                raise ChainError(f"{run.path}: {result.message}")
            if on_verified:
                on_verified(run)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)


def export_study(study: Study, out: str | Path, fmt: str = "csv", *, verify: bool = True, workers: int = 1,
                 on_verified: Callable[[RunLog], None] | None = None) -> list[Path]:
    """Write every run's tables and the combined tables into ``out``; return the files written.

    With ``verify`` every log is verified first (``workers`` processes), and nothing
    is written when one fails (ChainError names it).

    >>> export_study(simledger.open_study("results"), "results/export", "parquet")  # doctest: +SKIP
    """
    check_format(fmt)
    stems = [run.path.stem for run in study.runs]
    if len(set(stems)) != len(stems):
        raise LedgerError("two logs have the same file name; export them into separate folders")
    if verify:
        verify_logs(study.runs, workers, on_verified)
    out = Path(out)
    written = []
    for run in study.runs:
        for table, columns in TABLES.items():
            written.append(write_table(out / "runs" / run.path.stem / f"{table}.{fmt}", fmt, columns, run.rows(table)))
    for table in TABLES:
        columns, rows = study.rows(table)
        written.append(write_table(out / f"{table}.{fmt}", fmt, columns, rows))
    return written
