"""`simledger.open_study`: many runs (an experiment or a sweep folder) as long-format frames with identity columns."""

from __future__ import annotations

from pathlib import Path

import pytest

import simledger
from simledger.ledger.errors import NotALog
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run
from simledger.study.sweep import parse_sweep, run_sweep

TURNS = 5
RUNS = (("baseline", 101), ("baseline", 102), ("high_compute_cost", 101))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A folder shaped like `simledger experiment`'s output: runs/<regime>_<seed>.db."""
    folder = tmp_path_factory.mktemp("experiment")
    (folder / "runs").mkdir()
    regimes = load_regimes()
    for regime, seed in RUNS:
        execute_run(folder / "runs" / f"{regime}_{seed}.db", regime_name=regime, regime=regimes[regime], seed=seed,
                    turns=TURNS).close()
    return folder


def test_a_study_stacks_every_runs_rows_behind_its_identity(experiment):
    study = simledger.open_study(experiment)
    assert [r.name for r in study.runs] == ["baseline_101", "baseline_102", "high_compute_cost_101"]
    assert study.scenarios() == ["baseline", "high_compute_cost"]
    turns = study.turns()
    assert list(turns.columns[:4]) == ["run", "scenario", "seed", "turn"]
    assert len(turns) == len(RUNS) * (TURNS + 1)
    for run in study.runs:
        mine = turns[turns.run == run.name]
        assert set(mine.scenario) == {run.scenario} and set(mine.seed) == {run.seed}
        alone = simledger.open_run(run.path).turns()
        assert mine.drop(columns=["run", "scenario", "seed"]).reset_index(drop=True).equals(alone)
    accounts = study.accounts()
    assert len(accounts) == len(RUNS) * (TURNS + 1) * 8
    assert accounts.groupby("scenario").run.nunique().to_dict() == {"baseline": 2, "high_compute_cost": 1}
    assert study.contracts().groupby("run").size().sum() == sum(len(r.state().contracts) for r in study.runs)


def test_runs_are_found_by_name_and_from_a_list_of_files(experiment):
    study = simledger.open_study(sorted((experiment / "runs").glob("baseline_*.db")))
    assert [r.name for r in study.runs] == ["baseline_101", "baseline_102"]
    assert study["baseline_102"].seed == 102
    with pytest.raises(KeyError):
        study["nope"]


def test_a_folder_without_logs_is_a_clear_error(tmp_path):
    with pytest.raises(NotALog, match="no run logs"):
        simledger.open_study(tmp_path)
    with pytest.raises(NotALog, match="no such folder"):
        simledger.open_study(tmp_path / "missing")


def test_a_sweep_folder_has_one_column_per_swept_parameter(tmp_path):
    sweep = parse_sweep({"regime": "baseline", "seeds": [7], "turns": 3,
                         "grid": {"base_inference_rate": [1, 3], "policy.mine_prob": [0.3]}})
    run_sweep(sweep, tmp_path, workers=1, report=False, plots=False)
    study = simledger.open_study(tmp_path)
    turns = study.turns()
    assert list(turns.columns[:6]) == ["run", "scenario", "seed", "base_inference_rate", "policy.mine_prob", "turn"]
    by_rate = turns.groupby("base_inference_rate").fees.sum()
    assert list(by_rate.index) == [1, 3] and by_rate[3] > by_rate[1], "dearer compute, higher fees"
    assert set(turns["policy.mine_prob"]) == {0.3} and set(turns.seed) == {7}


def test_the_readmes_notebook_lines_run(experiment, tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    lines = [line[4:] for line in block.splitlines() if line.startswith(">>> ")]
    assert len(lines) >= 5 and lines[0] == "import simledger"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").symlink_to(experiment)
    namespace: dict = {}
    for line in lines:
        exec(line, namespace)
    assert set(namespace["turns"].scenario) == {"baseline", "high_compute_cost"}
