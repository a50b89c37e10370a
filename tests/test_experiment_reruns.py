"""The experiment is a sweep of the regimes: regimes files validated like sweep specs, finished logs never lost."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.ledger.verify import verify_log
from simledger.study.regimes import load_regimes
from simledger.study.sweep import load_sweep, read_genesis


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def experiment(out: Path, *args):
    return invoke("experiment", "--regimes", "baseline", "--seeds", "101-102", "--agents", 4, "--turns", 4,
                  "--workers", 1, "--no-report", "--out", out, *args)


def stamps(runs: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(runs.glob("*.db"))}


def one_line_error(result, *words: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def regimes_file(tmp_path: Path, change) -> Path:
    regimes = copy.deepcopy(load_regimes())
    change(regimes["baseline"])
    path = tmp_path / "regimes.json"
    path.write_text(json.dumps({"regimes": regimes}))
    return path


@pytest.fixture
def finished(tmp_path) -> Path:
    out = tmp_path / "out"
    result = experiment(out)
    assert result.exit_code == 0, result.output
    return out


def test_a_rerun_skips_finished_logs_and_writes_failures_json(finished):
    before = stamps(finished / "runs")
    again = experiment(finished)
    assert again.exit_code == 0, again.output
    assert "2 runs: 2 already done, 0 ran, 0 failed" in again.output
    assert stamps(finished / "runs") == before
    assert json.loads((finished / "failures.json").read_text()) == []


def test_a_folder_of_runs_with_other_turns_is_refused_and_nothing_is_deleted(finished):
    before = stamps(finished / "runs")
    refused = experiment(finished, "--turns", 3)
    one_line_error(refused, "baseline_101.db", "turns=4 (this run: 3)", "--force")
    assert stamps(finished / "runs") == before
    assert all(verify_log(finished / "runs" / name).turns == 4 for name in before)


def test_a_folder_of_runs_with_other_agents_is_refused(finished):
    one_line_error(experiment(finished, "--agents", 5), "baseline_101.db", "4 agents", "--force")


def test_force_replaces_runs_of_another_shape(finished):
    forced = experiment(finished, "--turns", 3, "--force")
    assert forced.exit_code == 0, forced.output
    assert "2 ran, 2 replaced, 0 failed" in forced.output
    assert [verify_log(p).turns for p in sorted((finished / "runs").glob("*.db"))] == [3, 3]


def test_rules_in_a_regimes_file_apply(tmp_path, finished):
    path = regimes_file(tmp_path, lambda regime: regime.update(rules={"study_cost": 999}))
    out = tmp_path / "ruled"
    result = experiment(out, "--regimes-file", path)
    assert result.exit_code == 0, result.output
    genesis = read_genesis(out / "runs" / "baseline_101.db")
    assert genesis.rules.study_cost == 999
    assert verify_log(out / "runs" / "baseline_101.db").head_hash != verify_log(
        finished / "runs" / "baseline_101.db").head_hash
    refused = experiment(finished, "--regimes-file", path)
    one_line_error(refused, "other engine rules", "--force")


@pytest.mark.parametrize("change, words", [
    (lambda r: r["policy"].update(mine_probability=0.5), ["policy.mine_probability", "did you mean policy.mine_prob?"]),
    (lambda r: r.update(rulez={"study_cost": 1}), ["rulez", "did you mean rules?"]),
    (lambda r: r.update(rules={"study_cots": 1}), ["rules.study_cots", "did you mean rules.study_cost?"]),
])
def test_typos_in_a_regimes_file_fail_with_did_you_mean(tmp_path, change, words):
    path = regimes_file(tmp_path, change)
    one_line_error(experiment(tmp_path / "out", "--regimes-file", path), "baseline", *words)
    assert not (tmp_path / "out" / "runs").exists()


def test_a_sweep_spec_says_the_same_about_the_same_typo(tmp_path):
    """One validator: a scenario's policy section and a regime's policy section get the same message."""
    spec = tmp_path / "spec.toml"
    spec.write_text('seeds = [1]\n[[scenarios]]\nname = "a"\npolicy = { mine_probability = 0.5 }\n')
    sweep_error = one_line_error(invoke("sweep", spec, "--out", tmp_path / "s"))
    path = regimes_file(tmp_path, lambda r: r["policy"].update(mine_probability=0.5))
    regimes_error = one_line_error(experiment(tmp_path / "e", "--regimes-file", path))
    tail = "policy.mine_probability: unknown knob (did you mean policy.mine_prob?)"
    assert tail in sweep_error and tail in regimes_error


@pytest.mark.parametrize("text, words", [("101-x", ["seeds", "'101-x'"]), ("5,5", ["duplicate seed '5'"]),
                                         ("9-3", ["range '9-3' is empty"])])
def test_experiment_and_sweep_share_one_seed_parser(tmp_path, text, words):
    one_line_error(invoke("experiment", "--seeds", text, "--out", tmp_path / "out"), *words)
    spec = tmp_path / "spec.toml"
    spec.write_text(f'seeds = "{text}"\n[grid]\nnum_cores = [3]\n')
    one_line_error(invoke("sweep", spec, "--out", tmp_path / "s"), *words)


def test_the_shipped_example_sweep_still_loads():
    assert load_sweep(Path(__file__).parents[1] / "study" / "data" / "example_sweep.toml").scenarios
