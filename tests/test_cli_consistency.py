"""The CLI as a new user meets it: --version, help, piped and narrow tables, hex hashes, turn counts,
several logs verified at once, log --turns with a "what" column, diff of runs that part at the genesis."""

from __future__ import annotations

import base64
import copy
import io
import json
import re
import shutil
import sqlite3

import pytest
import typer.main
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

import simledger.cli.output as output
from simledger.cli.main import app, get_version
from simledger.ledger.store import Store
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run

TURNS = 40


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One seed under the baseline and under dearer credit (interest 0.05): the genesis differs in config only."""
    root = tmp_path_factory.mktemp("cli")
    baseline = load_regimes()["baseline"]
    dearer = copy.deepcopy(baseline)
    dearer["config"]["interest_rate_per_turn"] = 0.05
    paths = {}
    for name, regime in (("baseline", baseline), ("dearer", dearer)):
        paths[name] = root / f"{name}.db"
        execute_run(paths[name], regime_name=name, regime=regime, seed=101, agents=8, turns=TURNS).close()
    return paths


def test_version_prints_the_installed_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout == f"simledger {get_version()}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", get_version())


def test_help_shows_no_type_beside_flags():
    command = typer.main.get_command(app)
    for name in [None, *command.commands]:
        result = invoke(*([name] if name else []), "--help")
        assert result.exit_code == 0 and "<bool>" not in result.stdout, name
    assert "--json" in invoke("verify", "--help").stdout


def test_no_tracker_words_in_help():
    command = typer.main.get_command(app)
    for name in command.commands:
        text = " ".join(invoke(name, "--help").stdout.lower().replace("│", " ").split())
        assert not re.search(r"issue \d|#\d+|acceptance bar", text), name


def test_piped_tables_are_tab_separated_with_full_headers(runs):
    result = invoke("replay", runs["baseline"], "--until", "turn", 20)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines.index("# accounts") + 1
    assert lines[header].split("\t") == ["agent", "balance", "staked", "wealth", "locked"]
    rows = [line.split("\t") for line in lines[header + 1:header + 9]]
    assert [row[0] for row in rows] == [f"agent_{i}" for i in range(8)] and all(len(row) == 5 for row in rows)
    assert not any("…" in "".join(row) for row in rows) and "┃" not in result.stdout


def test_a_narrow_terminal_wraps_headers_and_cells_instead_of_cutting_them(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=screen, force_terminal=True, width=40, color_system=None))
    table = Table("scenario", "base_inference_rate", "interest_rate_per_turn", title="sweep")
    table.add_row("baseline__base_inference_rate=3", "3", "0.02")
    output.show_table(table)
    assert "…" not in screen.getvalue()
    assert max(len(line) for line in screen.getvalue().splitlines()) <= 40
    # read each column back by joining its wrapped pieces, header lines and body lines apart
    columns: dict[tuple[str, int], str] = {}
    for line in screen.getvalue().splitlines():
        for bar in ("┃", "│"):
            if bar in line:
                for i, piece in enumerate(line.split(bar)[1:-1]):
                    columns[bar, i] = columns.get((bar, i), "") + piece.strip()
    assert [columns["┃", i] for i in range(3)] == ["scenario", "base_inference_rate", "interest_rate_per_turn"]
    assert [columns["│", i] for i in range(3)] == ["baseline__base_inference_rate=3", "3", "0.02"]


def test_verify_counts_the_turns_after_the_genesis(runs):
    result = invoke("verify", runs["baseline"], "--reexecute")
    assert result.exit_code == 0 and f" in {TURNS} turns verified" in result.stdout
    assert f"re-executed {TURNS} turns" in result.stdout
    doc = json.loads(invoke("verify", runs["baseline"], "--reexecute", "--json").stdout)
    assert doc["turns"] == doc["reexecute"]["turns"] == TURNS


def test_verify_checks_several_logs_in_parallel_one_line_each(runs, tmp_path):
    result = invoke("verify", runs["baseline"], runs["dearer"], "--workers", 2)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    paths = [str(runs["baseline"]), str(runs["dearer"])]
    assert sorted(set(line.split(": ")[0] for line in lines)) == paths  # every line names its log
    for path in paths:
        first, *rest = [line.removeprefix(path + ": ") for line in lines if line.startswith(path + ": ")]
        assert first.startswith("OK: ") and any(line.startswith("proved: ") for line in rest)
    doc = json.loads(invoke("verify", runs["baseline"], runs["dearer"], "--json").stdout)
    assert doc["ok"] is True and [d["path"] for d in doc["logs"]] == [str(runs["baseline"]), str(runs["dearer"])]
    # one tampered log among them: exit 1, the other still OK
    tampered = tmp_path / "tampered.db"
    shutil.copyfile(runs["dearer"], tampered)
    with sqlite3.connect(tampered) as conn:
        conn.execute("UPDATE events SET hash = ? WHERE seq = 5", ["00" * 32])
    result = invoke("verify", runs["baseline"], tampered)
    assert result.exit_code == 1
    assert f"{runs['baseline']}: OK: " in result.stdout and f"{tampered}: FAILED at seq 5" in result.stdout
    # a file that is not a log among them: exit 2, named on its line
    (tmp_path / "notes.db").write_text("not a database")
    result = invoke("verify", runs["baseline"], tmp_path / "notes.db")
    assert result.exit_code == 2 and f"{tmp_path / 'notes.db'}: error: " in result.stdout


def test_verify_of_a_shell_glob_skips_the_signed_heads_beside_the_logs(runs):
    heads = [runs[name].with_suffix(".head") for name in ("baseline", "dearer")]
    assert all(head.is_file() for head in heads)
    result = invoke("verify", runs["baseline"], heads[0], runs["dearer"], heads[1])  # what `verify *` receives
    assert result.exit_code == 0, result.output
    assert {line.split(": ")[0] for line in result.stdout.splitlines()} == {str(runs["baseline"]), str(runs["dearer"])}
    only_heads = invoke("verify", *heads)
    assert only_heads.exit_code == 2 and "none of these files is a log" in only_heads.output


def test_verify_with_expect_head_takes_one_log(runs):
    result = invoke("verify", runs["baseline"], runs["dearer"], "--expect-head", "00" * 32)
    assert result.exit_code == 2 and "give one RUN.db" in result.stderr


def test_head_prints_hashes_in_hex_outside_the_note(runs, tmp_path):
    note_path = tmp_path / "b.head"
    written = invoke("head", runs["baseline"], "--out", note_path)
    assert written.exit_code == 0, written.output
    note = note_path.read_text().split("\n")
    root_hex = base64.b64decode(note[2]).hex()  # the C2SP note keeps its base64 root line
    assert f"Merkle root {root_hex}" in " ".join(written.stdout.split())
    doc = json.loads(invoke("head", runs["baseline"], "--json").stdout)
    with Store(runs["baseline"]) as store:
        head_hash = store.head()[1].hex()
    assert (doc["root"], doc["head_hash"], doc["size"], doc["turn"]) == (root_hex, head_hash, int(note[1]), TURNS)


def log_lines(*args) -> list[list[str]]:
    result = invoke("log", *args)
    assert result.exit_code == 0, result.output
    return [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]


def test_log_turns_takes_a_range_and_says_what_each_event_did(runs):
    header, *rows = log_lines(runs["baseline"], "--turns", "10-12", "--limit", 10_000)
    assert header == ["seq", "turn", "kind", "signed by", "what"]
    assert {int(row[1]) for row in rows} == {10, 11, 12}
    with Store(runs["baseline"]) as store:
        expected = store.select("turn >= 10 AND turn <= 12", [], limit=10_000)
    assert [int(row[0]) for row in rows] == [r[0] for r in expected]
    what = {row[2]: row[4] for row in rows}
    assert re.fullmatch(r"agent_\d submits \w+.*", what["action_submitted"])
    assert re.fullmatch(r"turn 1[0-2] sealed: \d+ events, merkle root [0-9a-f]{12}…, state [0-9a-f]{12}…",
                        what["turn_sealed"])
    assert all(not row[4].startswith("{") for row in rows), "every kind has its own wording"
    # open-ended, and a single turn, select the same as --turn
    assert {int(r[1]) for r in log_lines(runs["baseline"], "--turns", "39-", "--limit", 10_000)[1:]} == {39, 40}
    assert log_lines(runs["baseline"], "--turns", "7") == log_lines(runs["baseline"], "--turn", "7")


@pytest.mark.parametrize("turns", ["12-10", "a-b", "-3", "10-x"])
def test_log_turns_rejects_a_bad_range_in_one_line(runs, turns):
    result = invoke("log", runs["baseline"], "--turns", turns)
    assert result.exit_code == 2 and result.stderr.startswith("error: --turns") and "Traceback" not in result.output


def inputs_by_turn(path) -> dict[int, list[str]]:
    with Store(path) as store:
        rows = store.select("kind = ?", ["action_submitted"], limit=1_000_000)
    grouped: dict[int, list[str]] = {}
    for row in rows:
        grouped.setdefault(row[1], []).append(row[7])
    return grouped


def test_diff_of_runs_parting_at_the_genesis_names_the_first_turn_whose_decisions_differ(runs):
    result = invoke("diff", runs["baseline"], runs["dearer"], "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["divergence"]["seq"] == 0
    changed = {row["name"]: (row["a"], row["b"]) for row in doc["genesis"]}
    assert changed["config.interest_rate_per_turn"] == (0.01, 0.05)
    assert {name.split(".")[0] for name in changed} == {"config", "identity"}  # same seed, same rules
    decided = doc["decision_divergence"]
    a, b = inputs_by_turn(runs["baseline"]), inputs_by_turn(runs["dearer"])
    turn = decided["turn"]
    assert turn > 1 and all(a[t] == b[t] for t in range(1, turn)) and a[turn] != b[turn]
    assert decided["kind_a"] == decided["kind_b"] == "action_submitted"
    assert doc["economic_divergence"]["turn"] <= turn
    text = " ".join(invoke("diff", runs["baseline"], runs["dearer"]).stdout.split())
    assert "the genesis differs in config.interest_rate_per_turn 0.01 → 0.05" in text
    assert f"decisions (agents' inputs) first differ in turn {turn} (seq {decided['seq']})" in text


def parse_json_stdout(result) -> dict:
    """Return the command's stdout as JSON: nothing else may be on it (progress goes to stderr)."""
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_run_json_gives_turns_events_and_head(tmp_path):
    doc = parse_json_stdout(invoke("run", tmp_path / "r.db", "--seed", 5, "--turns", 3, "--json"))
    with Store(tmp_path / "r.db") as store:
        seq, head, turn = store.head()
    assert doc == {"path": str(tmp_path / "r.db"), "turns": 3, "events": seq + 1, "head_hash": head.hex(),
                   "head_file": str(tmp_path / "r.head")}
    assert f"head {head.hex()}" in (tmp_path / "r.head").read_text()
    assert turn == 3


@pytest.fixture
def stderr_terminal(monkeypatch):
    """Make stderr count as a terminal: progress is drawn only there (a pipe or log file gets none)."""
    from simledger.cli.common import err_console

    monkeypatch.setattr(err_console, "_force_terminal", True)


def bars(result) -> str:
    """Return the progress a command drew on stderr, without the terminal's cursor codes."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stderr)


def test_progress_is_not_drawn_into_a_pipe(tmp_path):
    result = invoke("experiment", "--regimes", "baseline", "--seeds", "101", "--turns", 2, "--workers", 1,
                    "--out", tmp_path, "--no-report", "--json")
    assert parse_json_stdout(result)["runs"] == 1 and result.stderr == ""


def test_experiment_and_summarize_json_with_progress_on_stderr(tmp_path, stderr_terminal):
    result = invoke("experiment", "--regimes", "baseline", "--seeds", "101-102", "--turns", 4, "--workers", 1,
                    "--out", tmp_path, "--json")
    doc = parse_json_stdout(result)
    assert (doc["runs"], doc["out"], doc["report"]) == (2, str(tmp_path), str(tmp_path / "report.md"))
    assert [row["regime"] for row in doc["regimes"]] == ["baseline"] and doc["regimes"][0]["n_runs"] == 2
    assert doc["verdicts"].keys() == {"seeds 101, 102", "held-out seeds 9001-9120"}
    assert all(v.startswith("indistinguishable from the paper at α = 0.05 in ") for v in doc["verdicts"].values())
    # the study's logged runs are a sweep of the regimes: "runs" counts them; then the held-out ensemble and report
    for step in ("runs", "held-out", "report"):
        assert re.search(rf"^{step}\s.*\d+/\d+", bars(result), re.M), step
    again = invoke("summarize", *sorted((tmp_path / "runs").glob("*.db")), "--out", tmp_path / "again", "--json")
    redone = parse_json_stdout(again)
    assert redone["regimes"] == doc["regimes"] and redone["runs"] == 2
    assert re.search(r"^summarize\s.*2/2", bars(again), re.M)


def test_sweep_json_lists_each_scenario(tmp_path, stderr_terminal):
    spec = tmp_path / "spec.toml"
    spec.write_text('regime = "baseline"\nseeds = [101]\nagents = 4\nturns = 3\n'
                    '[grid]\ninterest_rate_per_turn = [0.01, 0.02]\n')
    result = invoke("sweep", spec, "--out", tmp_path / "out", "--workers", 1, "--no-report", "--no-plots", "--json")
    doc = parse_json_stdout(result)
    assert (doc["runs"], doc["ran"], doc["failed"]) == (2, 2, 0)
    assert re.search(r"^runs\s.*2/2", bars(result), re.M) and re.search(r"^outputs\s", bars(result), re.M)
    assert [row["interest_rate_per_turn"] for row in doc["scenarios"]] == [0.01, 0.02]
    listed = parse_json_stdout(invoke("sweep", spec, "--out", tmp_path / "out", "--dry-run", "--json"))
    assert len(listed["runs"]) == 2 and all(name.endswith("__seed=101.db") for name in listed["runs"])


def test_compare_prints_tables_on_a_terminal_and_markdown_through_a_pipe(tmp_path, monkeypatch):
    # two runs: a statistical test needs at least two per regime
    assert parse_json_stdout(invoke("experiment", "--regimes", "baseline", "--seeds", "101-102", "--turns", 3,
                                    "--workers", 1, "--out", tmp_path, "--no-report", "--json"))["runs"] == 2
    piped = invoke("compare", tmp_path)
    assert "|---" in piped.stdout
    screen = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=screen, force_terminal=True, width=80, color_system=None))
    shown = invoke("compare", tmp_path)
    assert shown.exit_code == piped.exit_code and "|---" not in screen.getvalue() and "──" in screen.getvalue()
    assert "Wealth Gini" in screen.getvalue()
    assert not re.search(r"issue \d|acceptance bar", piped.stdout + screen.getvalue(), re.I)


def test_report_json_lists_the_report_and_every_figure_as_png_and_svg(tmp_path):
    parse_json_stdout(invoke("experiment", "--regimes", "baseline", "--seeds", 101, "--turns", 3, "--workers", 1,
                             "--out", tmp_path, "--no-report", "--json"))
    doc = parse_json_stdout(invoke("report", tmp_path, "--json"))
    assert doc["report"] == str(tmp_path / "report.md")
    names = {name.rsplit("/", 1)[-1] for name in doc["figures"]}
    stems = {name.rsplit(".", 1)[0] for name in names}
    assert {f"{stem}.{ext}" for stem in stems for ext in ("png", "svg")} == names
    assert {"distributions", "contract_outcomes", "action_composition", "balance_trajectory"} <= stems
