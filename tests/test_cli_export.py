"""`simledger export` writes the notebook tables per run and combined (CSV, Parquet); `datasette-metadata` describes a run.db."""

from __future__ import annotations

import csv
import json
import sqlite3
import sys

import pytest
from typer.testing import CliRunner

import simledger
from simledger.cli.main import app
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run

TURNS = 6
RUNS = (("baseline", 101), ("high_compute_cost", 102))


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, text: str) -> None:
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    assert len(result.output.strip().splitlines()) == 1 and text in result.output, result.output


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    (folder / "runs").mkdir()
    for regime, seed in RUNS:
        execute_run(folder / "runs" / f"{regime}_{seed}.db", regime_name=regime, regime=load_regimes()[regime],
                    seed=seed, turns=TURNS).close()
    return folder


def read_csv(path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def as_csv_cells(rows) -> list[list[str]]:
    return [["" if v is None else str(v) for v in row] for row in rows]


def test_csv_export_writes_each_run_and_the_combined_tables(results, tmp_path):
    result = invoke("export", results, "--format", "csv", "--workers", "2", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    study = simledger.open_study(results)
    for table in ("accounts", "turns", "contracts"):
        columns, rows = study.rows(table)
        assert read_csv(tmp_path / "out" / f"{table}.csv") == (columns, as_csv_cells(rows))
        for run in study.runs:
            header, cells = read_csv(tmp_path / "out" / "runs" / run.path.stem / f"{table}.csv")
            assert header == list(simledger.reader.TABLES[table]) and cells == as_csv_cells(run.rows(table))


def test_export_of_a_shell_glob_skips_the_signed_heads_beside_the_logs(results, tmp_path):
    files = sorted((results / "runs").iterdir())  # what `simledger export results/runs/*` receives
    assert any(f.suffix == ".head" for f in files)
    result = invoke("export", *files, "--format", "csv", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    exported = sorted(p.name for p in (tmp_path / "out" / "runs").iterdir())
    assert exported == sorted(f.stem for f in files if f.suffix == ".db")


def test_parquet_export_reads_back_as_the_study_frames(results, tmp_path):
    import pandas

    result = invoke("export", results, "--format", "parquet", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["runs"] == len(RUNS) and len(report["files"]) == 3 * (len(RUNS) + 1)
    study = simledger.open_study(results)
    turns = pandas.read_parquet(results / "export" / "turns.parquet")
    assert turns.astype(object).equals(study.turns().astype(object))
    accounts = pandas.read_parquet(results / "export" / "runs" / "baseline_101" / "accounts.parquet")
    assert accounts.assign(owns_core=accounts.owns_core.astype(bool)).equals(study["baseline_101"].accounts())


def test_parquet_without_pyarrow_is_one_line_and_writes_nothing(results, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    result = invoke("export", results, "--format", "parquet", "--out", tmp_path / "out")
    assert_one_line_error(result, "pip install 'simledger[parquet]'")
    assert not (tmp_path / "out").exists()


def test_a_log_that_does_not_verify_is_not_exported(results, tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes((results / "runs" / "baseline_101.db").read_bytes())
    conn = sqlite3.connect(bad)
    with conn:
        conn.execute("UPDATE turns SET fees = fees + 1 WHERE turn = 2")
    conn.close()
    assert_one_line_error(invoke("export", bad, "--out", tmp_path / "out"), "(turn 2): read model turns differs from the fold of the log")
    assert not (tmp_path / "out").exists(), "nothing written"
    assert invoke("export", bad, "--no-verify", "--out", tmp_path / "out").exit_code == 0


@pytest.mark.parametrize("args, text", [
    (("--format", "xml"), "unknown format 'xml'"),
    (("missing.db",), "missing.db: no such file"),
])
def test_user_mistakes_are_one_line(results, tmp_path, args, text):
    source = [] if args[0] == "missing.db" else [results]
    assert_one_line_error(invoke("export", *source, *args, "--out", tmp_path / "out"), text)


def test_several_sources_need_an_out_folder(results):
    assert_one_line_error(invoke("export", *sorted((results / "runs").glob("*.db"))), "--out")


def test_datasette_metadata_describes_every_table_and_column_of_a_run_db(results):
    log = results / "runs" / "baseline_101.db"
    result = invoke("datasette-metadata", log)
    assert result.exit_code == 0, result.output
    metadata = json.loads(result.output)
    database = metadata["databases"]["baseline_101"]
    conn = sqlite3.connect(log)
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert set(database["tables"]) == tables
        for table, about in database["tables"].items():
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            if "sort" in about:
                assert about["sort"] in columns
            assert set(about.get("columns", columns)) == set(columns), table
        for query in database["queries"].values():
            conn.execute(query["sql"]).fetchone()
    finally:
        conn.close()
    assert database["tables"]["contracts"]["sort"] == "rank"


def test_a_parquet_column_whose_values_share_no_type_is_written_as_text(tmp_path):
    import pyarrow.parquet

    from simledger.export import write_parquet

    write_parquet(tmp_path / "t.parquet", ["param", "turn"], [(1, 0), ("a", 1), (None, 2)])
    table = pyarrow.parquet.read_table(tmp_path / "t.parquet")
    assert table.column("param").to_pylist() == ["1", "a", None]
    assert table.column("turn").to_pylist() == [0, 1, 2]
