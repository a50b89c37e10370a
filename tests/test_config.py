"""The 17 engine knobs: baseline defaults, recorded in the genesis, and bad values refused naming the field."""

from __future__ import annotations

from fractions import Fraction

import pytest

from simledger.events import types as ev
from simledger.events.config import Config, InvalidConfig, Rules, exact, load_config, load_rules
from simledger.ledger.errors import BadInput
from simledger.ledger.run import Run
from simledger.ledger.store import Store
from simledger.ledger.replay import positioned_events
from simledger.study.regimes import engine_config, load_regimes

# The baseline regime of run_experiments.py, knob by knob.
BASELINE = {
    "num_agents": 8,
    "num_cores": 4,
    "genesis_tokens_per_agent": 1000,
    "commons_threshold_per_turn": 100,
    "base_inference_rate": 1.0,
    "thinking_layer_discount": 0.1,
    "mine_base_weight": 10.0,
    "stake_weight_per_token": 0.01,
    "burn_weight_per_token": 0.05,
    "burn_decay_rate": 0.02,
    "burn_maturity_turns": 3,
    "unstake_delay_turns": 5,
    "interest_rate_per_turn": 0.01,
    "signing_bonus": 50,
    "block_threshold": 20.0,
    "attested_confirmation_window": 3,
    "slash_both_on_timeout": True,
}


def as_dict(config: Config) -> dict:
    return {name: getattr(config, name) for name in config.__struct_fields__}


def test_config_has_seventeen_knobs():
    assert len(Config.__struct_fields__) == 17
    assert set(Config.__struct_fields__) == set(BASELINE)


def test_config_defaults_are_baseline():
    assert as_dict(Config()) == BASELINE
    for name, value in BASELINE.items():
        assert type(getattr(Config(), name)) is type(value), name


def test_baseline_regime_is_the_default_config():
    assert load_config(engine_config(load_regimes()["baseline"], 8)) == Config()


def test_rules_defaults():
    assert as_dict(Rules()) == {"job_pay_units": 28, "job_cooldown_turns": 0, "block_reward": 0,
                                "transfer_fee_min": 0, "study_cost": 20, "study_discount": 0.5,
                                "study_duration_turns": 5, "sign_repeat": "accept",
                                "early_arbitrator_signature": "count", "offer_deadline": "none",
                                "attestation": "principals", "supply_counts_collateral": False,
                                "block_gate": "mining", "job_pay": "compute", "interest_billing": "billed",
                                "interest_to": "sink", "stake_warmup": True, "win_rewarms_stake": True,
                                "win_spends_burns": True, "billable_units": "whole"}


def test_integer_written_for_float_knob_accepted():
    # regimes.json writes base_inference_rate as 1
    assert load_config({"base_inference_rate": 3}).base_inference_rate == 3.0


@pytest.mark.parametrize("value, fraction", [(0.1, Fraction(1, 10)), (0.29, Fraction(29, 100)), (3, Fraction(3)),
                                             (0.02, Fraction(1, 50))])
def test_fractional_knobs_are_exact_decimals(value, fraction):
    assert exact(value) == fraction


def test_genesis_records_config_and_rules(tmp_path):
    config = {**BASELINE, "num_agents": 3, "base_inference_rate": 3.0, "slash_both_on_timeout": False}
    run = Run.create(tmp_path / "r.db", agents=["x", "y", "z"], seed=1, config=config, rules={"study_cost": 7})
    run.close()
    with Store(tmp_path / "r.db") as store:
        _, _, genesis = next(positioned_events(store))
    assert isinstance(genesis, ev.RunGenesis)
    assert as_dict(genesis.config) == config
    assert genesis.rules == Rules(study_cost=7)


def test_config_defaults_to_agent_count(tmp_path):
    run = Run.create(tmp_path / "r.db", agents=["x", "y"], seed=1)
    assert run.state.config == Config(num_agents=2)


# (field, bad value): each changes one knob
BAD_VALUES = [
    ("num_agents", 0),  # zero agents
    ("num_cores", 0),  # zero cores
    ("num_cores", -1),  # negative cores
    ("num_cores", "four"),  # wrong type
    ("num_cores", 2.0),  # a float for an integer knob
    ("num_cores", True),  # a bool for an integer knob
    ("genesis_tokens_per_agent", -1),  # negative tokens
    ("commons_threshold_per_turn", -1),  # negative allowance
    ("base_inference_rate", -1.0),  # negative rate
    ("base_inference_rate", "1"),  # a string
    ("thinking_layer_discount", -0.1),  # negative discount
    ("thinking_layer_discount", 1.5),  # a discount above 1
    ("mine_base_weight", -10.0),  # negative weight
    ("stake_weight_per_token", -0.01),  # negative weight
    ("burn_weight_per_token", -0.05),  # negative weight
    ("burn_decay_rate", 1.1),  # decay above 1
    ("burn_maturity_turns", -3),  # negative turns
    ("unstake_delay_turns", -5),  # negative turns
    ("interest_rate_per_turn", -0.01),  # negative rate
    ("interest_rate_per_turn", 2.0),  # rate above 1
    ("signing_bonus", -50),  # negative bonus
    ("block_threshold", 0.0),  # threshold zero
    ("block_threshold", -20.0),  # threshold negative
    ("attested_confirmation_window", -1),  # negative window
    ("slash_both_on_timeout", 1),  # an int for a bool
    ("slash_both_on_timeout", "yes"),  # a string for a bool
]


@pytest.mark.parametrize("field, value", BAD_VALUES)
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(InvalidConfig) as err:
        load_config({**BASELINE, field: value})
    assert f"$.{field}" in str(err.value) and str(err.value).startswith("invalid config: ")


def test_every_knob_has_a_bad_value_case():
    assert {field for field, _ in BAD_VALUES} == set(BASELINE)


def test_invalid_config_unknown_field():
    with pytest.raises(InvalidConfig, match="unknown field `num_gpus`"):
        load_config({**BASELINE, "num_gpus": 4})


def test_invalid_config_not_an_object():
    with pytest.raises(InvalidConfig, match="invalid config"):
        load_config([1, 2])


@pytest.mark.parametrize("field, value", [("num_cores", 0), ("block_threshold", 0.0), ("base_inference_rate", -1.0)])
def test_run_create_refuses_bad_config_before_writing(tmp_path, field, value):
    with pytest.raises(InvalidConfig, match=rf"\$\.{field}"):
        Run.create(tmp_path / "r.db", agents=["x", "y"], seed=1, config={"num_agents": 2, field: value})
    assert not (tmp_path / "r.db").exists()


def test_run_create_refuses_agent_count_mismatch(tmp_path):
    with pytest.raises(BadInput, match="3 agent ids given but config.num_agents is 2"):
        Run.create(tmp_path / "r.db", agents=["x", "y", "z"], seed=1, config={"num_agents": 2})


@pytest.mark.parametrize("field, value", [
    ("study_cost", -1),  # negative cost
    ("study_discount", 1.5),  # discount above 1
    ("job_pay_units", "25"),  # wrong type
    ("block_reward", -1),  # negative reward
])
def test_invalid_rules_names_the_field(field, value):
    with pytest.raises(InvalidConfig, match=rf"invalid rules: .*\$\.{field}"):
        load_rules({field: value})


def test_invalid_rules_unknown_field():
    with pytest.raises(InvalidConfig, match="unknown field `job_wage`"):
        load_rules({"job_wage": 25})
