"""`simledger sweep`: specs, identical logs on any executor, failures and resume, shards, summaries."""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.events.config import InvalidConfig, Rules
from simledger.ledger.errors import FolderInUse
from simledger.ledger.store import Store, library_version
from simledger.ledger.verify import verify_log
from simledger.projections.metrics import headline_metrics
from simledger.study.summary import SUMMARY_FILES
from simledger.study.sweep.spec import MAX_SCENARIO_NAME
from simledger.study.sweep import (
    format_value, load_sweep, parse_shard, parse_sweep, read_genesis, run_sweep,
    scenario_name, select_shard, sweep_specs,
)

REPO = Path(__file__).resolve().parents[1]
SPEC = """
regime = "baseline"
seeds = [101, 102]
agents = 6
turns = 10

[grid]
interest_rate_per_turn = [0.01, 0.02]
"""
RUN_NAMES = sorted(f"baseline__interest_rate_per_turn={rate}__seed={seed}.db"
                   for rate in ("0.01", "0.02") for seed in (101, 102))
# an integer engine rule (the rules are being calibrated: never hard-code one)
RULE = next(name for name in Rules.__struct_fields__ if type(getattr(Rules(), name)) is int)
OUTPUT_FILES = (*SUMMARY_FILES, "sweep_summary.json", "sweep_summary.csv")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *needles: str) -> None:
    """A user mistake: exit 2, one line naming the problem, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    for needle in needles:
        assert needle in result.output, result.output


def write_spec(folder: Path, text: str = SPEC, name: str = "spec.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def log_files(runs: Path) -> list[str]:
    return sorted(p.name for p in runs.glob("*.db"))


def event_rows(path: Path) -> list[tuple]:
    with Store(path) as store:
        return list(store.rows())


def output_bytes(out: Path, names=OUTPUT_FILES) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in names}


def assert_same_logs(runs_a: Path, runs_b: Path) -> None:
    """Both folders hold the same runs, event for event (every column, so every hash and signature)."""
    assert log_files(runs_a) == log_files(runs_b) == RUN_NAMES
    for name in RUN_NAMES:
        rows_a, rows_b = event_rows(runs_a / name), event_rows(runs_b / name)
        assert rows_a == rows_b, name
        assert verify_log(runs_b / name).head_hash == verify_log(runs_a / name).head_hash


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory) -> Path:
    """The spec swept on a 2-process local pool (the reference every other mode is compared with)."""
    root = tmp_path_factory.mktemp("local")
    result = invoke("sweep", write_spec(root), "--out", root / "out", "--workers", 2, "--no-report")
    assert result.exit_code == 0, result.output
    return root / "out"


# --- the spec ------------------------------------------------------------------------


def test_spec_expands_grid_times_seeds_into_sorted_deterministic_names(tmp_path):
    specs = sweep_specs(load_sweep(write_spec(tmp_path)))
    assert [f"{s.name}.db" for s in specs] == RUN_NAMES
    rates = {s.identity["params"]["interest_rate_per_turn"] for s in specs}
    assert rates == {0.01, 0.02}
    # the knob reaches the engine config, the rest is the base regime's
    assert {s.regime["config"]["interest_rate_per_turn"] for s in specs} == {0.01, 0.02}
    assert all(s.agents == 6 and s.turns == 10 for s in specs)


def test_genesis_records_scenario_params_seed_and_library_version(local_sweep):
    path = local_sweep / "runs" / RUN_NAMES[-1]
    genesis = read_genesis(path)
    assert genesis.seed == 102
    assert genesis.library_version == library_version()
    assert genesis.identity["regime"] == "baseline__interest_rate_per_turn=0.02"
    assert genesis.identity["run_name"] == path.stem
    assert genesis.identity["params"] == {"interest_rate_per_turn": 0.02}
    assert genesis.config.interest_rate_per_turn == 0.02
    assert genesis.identity["agents"] == len(genesis.agents) == 6


def test_explicit_scenarios_are_crossed_with_the_grid(tmp_path):
    spec = write_spec(tmp_path, SPEC + """
[[scenarios]]
name = "push"
regime = "coordination_push"

[[scenarios]]
name = "cheap"
config = { base_inference_rate = 0.5 }
policy = { mine_prob = 0.6 }
rules = { %s = 30 }
""" % RULE)
    specs = sweep_specs(load_sweep(spec))
    assert len(specs) == 2 * 2 * 2
    cheap = [s for s in specs if s.name.startswith("cheap__")]
    assert {s.name for s in cheap} == {f"cheap__interest_rate_per_turn={r}__seed={s}" for r in ("0.01", "0.02")
                                       for s in (101, 102)}
    assert all(s.regime["config"]["base_inference_rate"] == 0.5 and s.regime["policy"]["mine_prob"] == 0.6
               and s.rules == {RULE: 30} for s in cheap)
    push = [s for s in specs if s.name.startswith("push__")]
    assert all(s.identity["base_regime"] == "coordination_push" for s in push)


def test_num_agents_knob_sets_the_number_of_agents(tmp_path):
    spec = write_spec(tmp_path, SPEC.replace("interest_rate_per_turn = [0.01, 0.02]", "num_agents = [4, 7]"))
    assert {s.agents for s in sweep_specs(load_sweep(spec))} == {4, 7}


def test_nested_and_dotted_policy_and_rules_keys_are_the_same_knob(tmp_path):
    dotted = parse_sweep({"seeds": [1], "grid": {"policy.mine_prob": [0.2], f"rules.{RULE}": [5]}})
    nested = parse_sweep({"seeds": [1], "grid": {"policy": {"mine_prob": [0.2]}, "rules": {RULE: [5]}}})
    assert [s.name for s in sweep_specs(dotted)] == [s.name for s in sweep_specs(nested)] == [
        f"baseline__policy.mine_prob=0.2__rules.{RULE}=5__seed=1"]
    assert sweep_specs(dotted)[0].rules == {RULE: 5}


def test_long_names_keep_a_readable_prefix_and_a_hash_of_the_parameters():
    point = {f"knob_number_{i}": 0.001 * i for i in range(12)}
    name = scenario_name("baseline", point, {"params": point})
    other = scenario_name("baseline", point, {"params": {**point, "knob_number_11": 1.0}})
    assert len(name) <= MAX_SCENARIO_NAME and name.startswith("baseline__knob_number_0=0.0")
    assert "~" in name and name != other
    kept = name.split("~")[0].split("__")[1:]
    assert kept and all(pair in [f"{k}={format_value(v)}" for k, v in point.items()] for pair in kept)  # no cut value
    assert name == scenario_name("baseline", point, {"params": point})  # deterministic


@pytest.mark.parametrize(("text", "needles"), [
    # an engine knob misspelt: named, with a suggestion
    ('seeds = [1]\n[grid]\nbase_inference_rat = [1]', ["grid.base_inference_rat", "base_inference_rate"]),
    # a value out of range: load_config's own validation, naming the knob and the value
    ('seeds = [1]\n[grid]\ninterest_rate_per_turn = [0.01, 2]', ["grid.interest_rate_per_turn[1]", "<= 1"]),
    # an int knob given a float
    ('seeds = [1]\n[grid]\nnum_cores = [2.5]', ["grid.num_cores[0]", "Expected `int`"]),
    # a policy probability out of range
    ('seeds = [1]\n[grid]\npolicy.mine_prob = [1.5]', ["grid.policy.mine_prob[0]", "<= 1.0"]),
    # a rules field that does not exist
    (f'seeds = [1]\n[grid]\nrules.{RULE}x = [1]', [f"rules.{RULE}x", f"did you mean rules.{RULE}?"]),
    # an empty list of values
    ('seeds = [1]\n[grid]\nnum_cores = []', ["grid.num_cores", "empty grid"]),
    # neither a grid nor scenarios
    ('seeds = [1]', ["empty grid"]),
    # a scalar where a list is needed
    ('seeds = [1]\n[grid]\nnum_cores = 3', ["grid.num_cores must be a list"]),
    # duplicate values would make two identical scenarios
    ('seeds = [1]\n[grid]\nnum_cores = [3, 3]', ["duplicate value in grid.num_cores"]),
    # bad seeds: missing, negative, duplicated, not a range
    ('[grid]\nnum_cores = [3]', ["seeds: missing"]),
    ('seeds = [-1]\n[grid]\nnum_cores = [3]', ["seeds[0]"]),
    ('seeds = [5, 5]\n[grid]\nnum_cores = [3]', ["duplicate seed '5'"]),
    ('seeds = "101-x"\n[grid]\nnum_cores = [3]', ["seeds: '101-x'"]),
    # a top-level key that does not exist
    ('seed = [1]\n[grid]\nnum_cores = [3]', ["seed: unknown key", "seeds"]),
    # an unknown base regime
    ('regime = "basline"\nseeds = [1]\n[grid]\nnum_cores = [3]', ["regime: unknown regime 'basline'", "baseline"]),
    # too few agents, no turns
    ('agents = 2\nseeds = [1]\n[grid]\nnum_cores = [3]', ["agents must be an integer >= 3"]),
    ('turns = 0\nseeds = [1]\n[grid]\nnum_cores = [3]', ["turns must be an integer >= 1"]),
    # a scenario that sets a knob the grid sweeps
    ('seeds = [1]\n[grid]\nnum_cores = [3]\n[[scenarios]]\nname = "a"\nconfig = { num_cores = 2 }',
     ["scenarios[0] (a) sets num_cores"]),
    # a scenario name that is not filesystem-safe
    ('seeds = [1]\n[[scenarios]]\nname = "a/b"', ["scenarios[0].name"]),
    # not TOML
    ('seeds = [1', ["not valid TOML"]),
])
def test_bad_spec_is_one_line_error_naming_the_key(tmp_path, text, needles):
    spec = write_spec(tmp_path, text)
    assert_one_line_error(invoke("sweep", spec, "--out", tmp_path / "out"), str(spec), *needles)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_bad_shard_is_a_user_error(tmp_path, text):
    assert_one_line_error(invoke("sweep", write_spec(tmp_path), "--out", tmp_path / "out", "--shard", text),
                          "--shard")


def test_dask_option_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError
    result = invoke("sweep", write_spec(tmp_path), "--out", tmp_path / "out", "--dask", "tcp://127.0.0.1:1")
    assert_one_line_error(result, "simledger[dask]")


def test_shards_partition_the_sorted_runs_round_robin(tmp_path):
    specs = sweep_specs(load_sweep(write_spec(tmp_path)))
    parts = [select_shard(specs, parse_shard(f"{i}/3")) for i in (1, 2, 3)]
    assert sorted(s.name for part in parts for s in part) == sorted(s.name for s in specs)
    assert [s.name for s in parts[1]] == [specs[1].name]


# --- executors: identical logs and summaries ----------------------------------------------


def test_dask_cluster_and_local_pool_write_identical_logs_and_summaries(local_sweep, tmp_path):
    import dask
    from distributed import LocalCluster

    spec = write_spec(tmp_path)
    with dask.config.set({"distributed.comm.timeouts.connect": "20s", "distributed.comm.timeouts.tcp": "30s"}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=logging.ERROR) as cluster:
            shared = invoke("sweep", spec, "--out", tmp_path / "shared", "--dask", cluster.scheduler_address,
                            "--no-report")
            returned = invoke("sweep", spec, "--out", tmp_path / "returned", "--dask", cluster.scheduler_address,
                              "--return-logs", "--no-report", "--no-plots")
    assert shared.exit_code == 0, shared.output
    assert returned.exit_code == 0, returned.output
    for out in (tmp_path / "shared", tmp_path / "returned"):
        assert_same_logs(local_sweep / "runs", out / "runs")
        assert output_bytes(out) == output_bytes(local_sweep)
        assert json.loads((out / "failures.json").read_text()) == []


def test_return_logs_on_the_local_pool_and_one_worker_give_the_same_logs(local_sweep, tmp_path):
    spec = write_spec(tmp_path)
    returned = invoke("sweep", spec, "--out", tmp_path / "returned", "--workers", 2, "--return-logs", "--no-report",
                      "--no-plots")
    inline = invoke("sweep", spec, "--out", tmp_path / "inline", "--workers", 1, "--no-report", "--no-plots",
                    "--shared-dir", tmp_path / "elsewhere")
    assert returned.exit_code == 0 and inline.exit_code == 0, returned.output + inline.output
    assert_same_logs(local_sweep / "runs", tmp_path / "returned" / "runs")
    assert_same_logs(local_sweep / "runs", tmp_path / "elsewhere")
    assert not (tmp_path / "inline" / "runs").exists()  # the logs went to the shared folder only
    for runs in (local_sweep / "runs", tmp_path / "returned" / "runs", tmp_path / "elsewhere"):
        heads = {p.stem: p.read_text() for p in runs.glob("*.head")}  # each log's signed head came along
        assert sorted(heads) == sorted(p.stem for p in runs.glob("*.db"))
        assert heads == {p.stem: p.read_text() for p in (local_sweep / "runs").glob("*.head")}
    assert output_bytes(tmp_path / "returned") == output_bytes(tmp_path / "inline") == output_bytes(local_sweep)


# --- failures and resuming ------------------------------------------------------------------


def file_stamps(runs: Path, names: list[str]) -> dict[str, tuple[int, int]]:
    return {n: ((runs / n).stat().st_ino, (runs / n).stat().st_mtime_ns) for n in names}


def test_failed_run_is_recorded_and_a_rerun_retries_only_it(tmp_path):
    # The failure is an honest environment fault, independent of the engine's economics:
    # a folder squats on one run's log path, so execute_spec raises (IsADirectoryError)
    # when it clears the path, on whichever worker runs it.
    spec, out = write_spec(tmp_path), tmp_path / "out"
    blocked = RUN_NAMES[1]
    (out / "runs" / blocked).mkdir(parents=True)
    first = invoke("sweep", spec, "--out", out, "--workers", 2, "--no-report", "--no-plots")
    assert first.exit_code == 1, first.output
    failures = json.loads((out / "failures.json").read_text())
    assert [(f["run"], f["scenario"], f["seed"]) for f in failures] == [
        (Path(blocked).stem, "baseline__interest_rate_per_turn=0.01", 102)]
    assert "IsADirectoryError" in failures[0]["error"]
    good = [n for n in RUN_NAMES if n != blocked]
    assert all(verify_log(out / "runs" / n).ok for n in good)
    runs = json.loads((out / "run_summaries.json").read_text())
    assert sorted(r["log_file"] for r in runs) == good  # summaries cover the runs that finished

    stamps = file_stamps(out / "runs", good)
    again = invoke("sweep", spec, "--out", out, "--workers", 2, "--no-report", "--no-plots")
    assert again.exit_code == 1, again.output
    assert "3 already done, 0 ran, 1 failed" in again.output
    assert file_stamps(out / "runs", good) == stamps  # not rewritten
    assert [f["run"] for f in json.loads((out / "failures.json").read_text())] == [Path(blocked).stem]

    (out / "runs" / blocked).rmdir()  # fix the fault: only the missing run is played
    fixed = invoke("sweep", spec, "--out", out, "--workers", 2, "--no-report", "--no-plots")
    assert fixed.exit_code == 0, fixed.output
    assert "3 already done, 1 ran, 0 failed" in fixed.output
    assert file_stamps(out / "runs", good) == stamps
    assert json.loads((out / "failures.json").read_text()) == []
    assert verify_log(out / "runs" / blocked).ok


def test_returned_log_that_cannot_be_written_is_recorded_and_leaves_no_partial_file(tmp_path):
    out = tmp_path / "out"
    blocked = RUN_NAMES[2]
    (out / "runs" / blocked).mkdir(parents=True)  # the client cannot put the returned bytes there
    result = run_sweep(load_sweep(write_spec(tmp_path)), out, workers=2, return_logs=True, report=False,
                       plots=False)
    assert [f["run"] for f in result.failures] == [Path(blocked).stem]
    assert sorted(result.ran) == [Path(n).stem for n in RUN_NAMES if n != blocked]
    assert log_files(out / "runs") == RUN_NAMES and (out / "runs" / blocked).is_dir()
    assert not list((out / "runs").glob("*.part"))
    assert json.loads((out / "failures.json").read_text()) == result.failures


def test_rerun_replaces_a_truncated_log_but_refuses_a_log_of_another_identity_unless_forced(local_sweep, tmp_path):
    runs = tmp_path / "out" / "runs"
    shutil.copytree(local_sweep / "runs", runs)
    victim, stranger = RUN_NAMES[0], RUN_NAMES[3]
    with Store(runs / victim, write=True) as store:  # drop the last turn: verifies, but unfinished
        for table in ("events", "account_turns", "turns"):  # the log and its per-turn read models
            store.conn.execute(f"DELETE FROM {table} WHERE turn = 10")
        store.conn.commit()
    assert verify_log(runs / victim).ok
    shutil.copyfile(runs / RUN_NAMES[2], runs / stranger)  # a valid, finished log, but of another seed
    stamps = file_stamps(runs, RUN_NAMES)
    with pytest.raises(FolderInUse, match=rf"{Path(stranger).stem}\.db: it records .*seed=101 \(this run: 102\)"):
        run_sweep(load_sweep(write_spec(tmp_path)), tmp_path / "out", workers=1, report=False, plots=False)
    assert file_stamps(runs, RUN_NAMES) == stamps, "nothing is run or replaced before the refusal"
    assert not (tmp_path / "out" / "failures.json").exists()

    result = run_sweep(load_sweep(write_spec(tmp_path)), tmp_path / "out", workers=1, report=False, plots=False,
                       force=True)
    assert sorted(result.ran) == sorted(Path(n).stem for n in (victim, stranger))
    assert result.replaced == [Path(stranger).stem]
    assert len(result.skipped) == 2 and result.ok
    assert_same_logs(local_sweep / "runs", runs)


def test_a_fault_while_checking_an_existing_log_never_discards_it(local_sweep, tmp_path, monkeypatch):
    runs = tmp_path / "out" / "runs"
    shutil.copytree(local_sweep / "runs", runs)
    stamps = file_stamps(runs, RUN_NAMES)

    def broken_fold(path, **kwargs):
        raise AttributeError("a bug in this installation, not in the log")

    monkeypatch.setattr("simledger.study.sweep.execute.summarize_log", broken_fold)
    result = run_sweep(load_sweep(write_spec(tmp_path)), tmp_path / "out", workers=1, report=False, plots=False)
    assert result.ran == [] and result.skipped == []
    assert [f["run"] for f in result.failures] == [Path(n).stem for n in RUN_NAMES]
    assert all("left untouched" in f["error"] for f in result.failures)
    assert file_stamps(runs, RUN_NAMES) == stamps


def test_rerun_with_other_turns_is_refused_and_forced_plays_every_run_again(tmp_path):
    out = tmp_path / "out"
    one_seed = SPEC.replace("seeds = [101, 102]", "seeds = [101]").replace("[0.01, 0.02]", "[0.01]")
    first = run_sweep(load_sweep(write_spec(tmp_path, one_seed)), out, report=False, plots=False)
    shorter = write_spec(tmp_path, one_seed.replace("turns = 10", "turns = 4"))
    refused = invoke("sweep", shorter, "--out", out, "--no-report", "--no-plots")
    assert_one_line_error(refused, "turns=10 (this run: 4)", "--force")
    assert verify_log(out / "runs" / f"{first.runs[0]}.db").turns == 10  # untouched: turns 1..10 after the genesis
    second = run_sweep(load_sweep(shorter), out, report=False, plots=False, force=True)
    assert first.ran == second.ran == second.replaced == [first.runs[0]] and second.skipped == []
    assert verify_log(out / "runs" / f"{first.runs[0]}.db").turns == 4  # turns 1..4 after the genesis


# --- shards and summaries ------------------------------------------------------------------


def test_shards_summarized_together_equal_the_unsharded_sweep(local_sweep, tmp_path):
    spec = write_spec(tmp_path)
    for index in (1, 2):
        result = invoke("sweep", spec, "--out", tmp_path / f"part{index}", "--shard", f"{index}/2", "--workers", 1,
                        "--no-report", "--no-plots")
        assert result.exit_code == 0, result.output
    halves = [log_files(tmp_path / f"part{i}" / "runs") for i in (1, 2)]
    assert halves == [RUN_NAMES[0::2], RUN_NAMES[1::2]]
    logs = [tmp_path / f"part{i}" / "runs" / name for i, names in zip((1, 2), halves) for name in names]
    merged = invoke("summarize", *logs, "--out", tmp_path / "merged", "--no-report")
    assert merged.exit_code == 0, merged.output
    assert output_bytes(tmp_path / "merged", SUMMARY_FILES) == output_bytes(local_sweep, SUMMARY_FILES)


def test_summaries_group_by_scenario(local_sweep):
    regimes = json.loads((local_sweep / "regime_summary.json").read_text())
    assert [(r["regime"], r["n_runs"]) for r in regimes] == [
        ("baseline__interest_rate_per_turn=0.01", 2), ("baseline__interest_rate_per_turn=0.02", 2)]
    runs = json.loads((local_sweep / "run_summaries.json").read_text())
    assert [r["run_id"] for r in runs] == [Path(n).stem for n in RUN_NAMES]


def test_sweep_summary_has_params_means_and_confidence_intervals(local_sweep):
    runs = json.loads((local_sweep / "run_summaries.json").read_text())
    rows = json.loads((local_sweep / "sweep_summary.json").read_text())
    with open(local_sweep / "sweep_summary.csv", newline="") as handle:
        assert [r["scenario"] for r in csv.DictReader(handle)] == [r["scenario"] for r in rows]
    assert [r["interest_rate_per_turn"] for r in rows] == [0.01, 0.02]
    for row in rows:
        members = [r for r in runs if r["regime"] == row["scenario"]]
        assert row["n_runs"] == len(members) == 2
        fees = [r["inference_fees_total"] for r in members]
        assert row["inference_fees_total_mean"] == pytest.approx(sum(fees) / 2)
        # two runs, the study's one convention: 1.96 * population SD / sqrt(2), population SD = |a - b| / 2
        assert row["inference_fees_total_ci95"] == pytest.approx(1.96 * abs(fees[0] - fees[1]) / 2 / math.sqrt(2))
        rates = [r["contracts_settled_total"] / r["contracts_total"] if r["contracts_total"] else 0.0 for r in members]
        assert row["settlement_rate_mean"] == pytest.approx(sum(rates) / 2)
        assert all(math.isfinite(row[f"{m.run}_mean"]) for m in headline_metrics())
    assert (local_sweep / "plots" / "sweep_interest_rate_per_turn.png").stat().st_size > 1000
    assert "<svg" in (local_sweep / "plots" / "sweep_interest_rate_per_turn.svg").read_text()


def test_example_spec_is_valid_and_lists_its_runs(tmp_path):
    example = REPO / "study" / "data" / "example_sweep.toml"
    sweep = load_sweep(example)
    result = invoke("sweep", example, "--out", tmp_path / "out", "--dry-run", "--shard", "1/2")
    assert result.exit_code == 0, result.output
    listed = result.output.split()
    assert len(listed) == len(sweep.scenarios) * len(sweep.seeds) // 2
    assert "baseline__base_inference_rate=3__interest_rate_per_turn=0.02__seed=101.db" in \
        [f"{s.name}.db" for s in sweep_specs(sweep)]
    assert not (tmp_path / "out").exists()


def test_parse_sweep_errors_are_invalid_config():
    with pytest.raises(InvalidConfig, match=r"^spec: grid.nope: unknown knob"):
        parse_sweep({"seeds": [1], "grid": {"nope": [1]}})


def test_values_are_spelt_filesystem_safe():
    assert [format_value(v) for v in (0.02, 3, 3.0, True, "a/b c", 1e-05)] == [
        "0.02", "3", "3.0", "true", "a-b-c", "1e-05"]
