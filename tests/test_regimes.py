"""The shipped regimes are the seed driver's, and a bad user regimes file is refused in one line.

The driver's ``regimes`` dict, its ``/init`` config and the keys its
``choose_action`` reads are parsed from /work/shared/seed/run_experiments.py
with ``ast``, so these tests compare against the driver itself.
"""

from __future__ import annotations


import ast
import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.events.config import InvalidConfig
from simledger.study.sweep import study_specs
from simledger.study.regimes import DEFAULT_REGIMES, POLICY_KEYS, engine_config, load_regimes
from _seed import SEED

DRIVER = SEED / "run_experiments.py"
FIXED_CONFIG = {
    "thinking_layer_discount": 0.1, "burn_decay_rate": 0.02, "burn_maturity_turns": 3, "unstake_delay_turns": 5,
    "signing_bonus": 50, "attested_confirmation_window": 3, "slash_both_on_timeout": True,
}


# --- the driver, read as data ----------------------------------------------------------


def get_function(name: str) -> ast.FunctionDef:
    tree = ast.parse(DRIVER.read_text())
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


def get_assigned_dict(func: ast.FunctionDef, target: str) -> ast.Dict:
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and \
                any(isinstance(t, ast.Name) and t.id == target for t in node.targets):
            return node.value
    raise AssertionError(f"{func.name} assigns no dict to {target}")


def get_driver_regimes() -> dict[str, dict]:
    """Return the ``regimes`` dict of the driver's main()."""
    return ast.literal_eval(get_assigned_dict(get_function("main"), "regimes"))


def compute_driver_init_config(regime: dict, n_agents: int) -> dict:
    """Evaluate run_single's ``cfg`` expression (the /init config) for ``regime``."""
    node = ast.Expression(get_assigned_dict(get_function("run_single"), "cfg"))
    return eval(compile(node, str(DRIVER), "eval"), {"__builtins__": {}}, {"regime": regime, "n_agents": n_agents})


def get_regime_keys_read_by(func_name: str) -> set[str]:
    """Return the keys a driver function reads as ``regime["..."]``."""
    return {
        node.slice.value for node in ast.walk(get_function(func_name))
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "regime"
        and isinstance(node.slice, ast.Constant)
    }


def canonical(value) -> str:
    """JSON text, so 10 and 10.0 (or 1 and True) are told apart."""
    return json.dumps(value, sort_keys=True)


# --- shipped regimes == the driver's ---------------------------------------------------------


def test_shipped_regimes_are_the_drivers_three():
    assert list(load_regimes()) == list(get_driver_regimes()) == list(DEFAULT_REGIMES)


@pytest.mark.parametrize("name", DEFAULT_REGIMES)
def test_engine_config_is_what_the_driver_sends_to_init(name):
    driver_regime = get_driver_regimes()[name]
    for agents in (8, 5):
        assert canonical(engine_config(load_regimes()[name], agents)) == \
            canonical(compute_driver_init_config(driver_regime, agents))


@pytest.mark.parametrize("name", DEFAULT_REGIMES)
def test_policy_parameters_are_the_drivers(name):
    driver_regime = get_driver_regimes()[name]
    policy_keys = get_regime_keys_read_by("choose_action")
    assert set(POLICY_KEYS) == policy_keys
    assert canonical(load_regimes()[name]["policy"]) == canonical({k: driver_regime[k] for k in policy_keys})


@pytest.mark.parametrize("name", DEFAULT_REGIMES)
def test_every_driver_knob_lands_in_config_or_policy(name):
    driver_regime, shipped = get_driver_regimes()[name], load_regimes()[name]
    assert set(driver_regime) == get_regime_keys_read_by("run_single") | get_regime_keys_read_by("choose_action")
    for key, value in driver_regime.items():
        homes = [part for part in ("config", "policy") if key in shipped[part]]
        assert homes, f"{name}.{key} is in neither config nor policy"
        for part in homes:
            assert canonical(shipped[part][key]) == canonical(value), f"{name}.{part}.{key}"


@pytest.mark.parametrize("name", DEFAULT_REGIMES)
def test_fixed_values_the_driver_sends_are_in_each_config(name):
    config = load_regimes()[name]["config"]
    for key, value in FIXED_CONFIG.items():
        assert canonical(config[key]) == canonical(value), key
    assert {k: v for k, v in compute_driver_init_config(get_driver_regimes()[name], 8).items()
            if k in FIXED_CONFIG} == FIXED_CONFIG


# --- bad user regimes files -------------------------------------------------------------------


def shipped_document() -> dict:
    return {"regimes": copy.deepcopy(load_regimes())}


def write_regimes(tmp_path: Path, document) -> Path:
    path = tmp_path / "regimes.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def with_change(change) -> dict:
    document = shipped_document()
    change(document["regimes"])
    return document


BAD_FILES = {
    "prob above one": (with_change(lambda r: r["high_compute_cost"]["policy"].update(sign_prob=1.2)),
                       ["high_compute_cost", "sign_prob"]),
    "negative prob": (with_change(lambda r: r["baseline"]["policy"].update(dispute_prob=-0.1)),
                      ["baseline", "dispute_prob"]),
    "missing policy key": (with_change(lambda r: r["coordination_push"]["policy"].pop("confirm_prob")),
                           ["coordination_push", "confirm_prob"]),
    "policy key not a number": (with_change(lambda r: r["baseline"]["policy"].update(mine_prob="0.4")),
                                ["baseline", "mine_prob"]),
    "negative rate": (with_change(lambda r: r["baseline"]["config"].update(interest_rate_per_turn=-0.01)),
                      ["baseline", "interest_rate_per_turn"]),
    "rate above one": (with_change(lambda r: r["high_compute_cost"]["config"].update(burn_decay_rate=1.5)),
                       ["high_compute_cost", "burn_decay_rate"]),
    "unknown config field": (with_change(lambda r: r["baseline"]["config"].update(intrest_rate=0.01)),
                             ["baseline", "intrest_rate"]),
    "no policy object": (with_change(lambda r: r["baseline"].pop("policy")), ["baseline", "policy"]),
    "zero cores": (with_change(lambda r: r["baseline"]["policy"].update(num_cores=0)), ["baseline", "num_cores"]),
    "no regimes": ({"regimes": {}}, ["regimes"]),
    "not JSON": ("{\"regimes\": {\"baseline\": ", ["regimes.json", "not valid JSON"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_regimes_file_is_refused_in_one_line_naming_regime_and_field(case, tmp_path):
    document, words = BAD_FILES[case]
    path = write_regimes(tmp_path, document)
    with pytest.raises(InvalidConfig) as caught:
        load_regimes(path)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_a_missing_regimes_file_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "nowhere.json"
    with pytest.raises(InvalidConfig, match="nowhere.json"):
        load_regimes(path)


def test_a_good_user_file_is_accepted_and_used(tmp_path):
    document = shipped_document()
    cheap = copy.deepcopy(document["regimes"]["baseline"])
    cheap["config"]["base_inference_rate"] = 0.5
    document["regimes"]["cheap"] = cheap
    path = write_regimes(tmp_path, document)
    specs = study_specs(["cheap"], [7], agents=4, turns=3, regimes_file=path)
    assert [(s.name, s.regime["config"]["base_inference_rate"]) for s in specs] == [("cheap_7", 0.5)]


# --- through the CLI -----------------------------------------------------------------------------


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:")
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


@pytest.mark.parametrize("case", ["prob above one", "missing policy key", "negative rate", "not JSON"])
def test_experiment_refuses_a_bad_regimes_file_with_one_line_and_exit_2(case, tmp_path):
    document, words = BAD_FILES[case]
    path = write_regimes(tmp_path, document)
    out = tmp_path / "out"
    result = invoke("experiment", "--regimes-file", path, "--seeds", "101", "--turns", 2, "--out", out,
                    "--workers", 1, "--no-report")
    assert_one_line_error(result, *words)
    assert not (out / "runs").exists(), "nothing may run before the regimes are validated"


def test_experiment_refuses_a_missing_regimes_file_with_one_line_and_exit_2(tmp_path):
    result = invoke("experiment", "--regimes-file", tmp_path / "nowhere.json", "--out", tmp_path / "out",
                    "--no-report")
    assert_one_line_error(result, "nowhere.json")


def test_experiment_refuses_an_unknown_regime_name_with_one_line_and_exit_2(tmp_path):
    result = invoke("experiment", "--regimes", "baseline,no_such_regime", "--seeds", "101", "--turns", 2,
                    "--out", tmp_path / "out", "--no-report")
    assert_one_line_error(result, "no_such_regime")


def test_run_refuses_a_bad_regimes_file_with_one_line_and_exit_2(tmp_path):
    document, words = BAD_FILES["prob above one"]
    path = write_regimes(tmp_path, document)
    result = invoke("run", tmp_path / "r.db", "--regimes-file", path, "--turns", 2)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "r.db").exists()


def test_experiment_runs_a_regime_from_a_user_file(tmp_path):
    document = shipped_document()
    document["regimes"]["cheap"] = copy.deepcopy(document["regimes"]["baseline"])
    path = write_regimes(tmp_path, document)
    out = tmp_path / "out"
    result = invoke("experiment", "--regimes-file", path, "--regimes", "cheap", "--seeds", "7", "--agents", 4,
                    "--turns", 3, "--out", out, "--workers", 1, "--no-report")
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "run_summaries.json").read_text())
    assert [(r["run_id"], r["regime"], r["turns"], r["agents"]) for r in rows] == [("cheap_7", "cheap", 3, 4)]
