"""The study policy is the seed driver's ``choose_action``: same actions, same random stream.

The strongest checks load the driver's own ``choose_action`` from
/work/shared/seed/run_experiments.py and compare it with ``StudyPolicy`` on
identical inputs and identical ``random.Random`` state: same action, same
speech, and the generator left in the same state.
"""

from __future__ import annotations


import copy
import importlib.util
import json
import random

import pytest

from simledger.events.actions import AgentInput
from simledger.ledger.run import Run
from simledger.study.policy import TurnView
from simledger.study.study_policy import StudyPolicy
from simledger.study.regimes import engine_config, load_regimes
from simledger.study.runner import agent_ids, execute_run, run_name
from _seed import SEED

DRIVER = SEED / "run_experiments.py"
STATUSES = ("proposed", "countersigned", "active", "disputed", "settled", "defaulted", "expired")
ALL_ACTIONS = {"arbitrator_ruling", "sign_contract", "confirm_delivery", "dispute_delivery", "bid_core", "job",
               "mine", "stake", "burn", "transfer", "propose_contract", "study"}
PROB_KEYS = ("mine_prob", "stake_prob", "burn_prob", "transfer_prob", "propose_prob", "study_prob", "sign_prob",
             "arb_sign_prob", "confirm_prob", "dispute_prob")
LADDER_KEYS = ("mine_prob", "stake_prob", "burn_prob", "transfer_prob", "propose_prob")


@pytest.fixture(scope="module")
def driver():
    """The seed driver module, imported from its path (it imports only the standard library)."""
    spec = importlib.util.spec_from_file_location("seed_run_experiments_policy", DRIVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def regimes():
    return load_regimes()


# --- building views ------------------------------------------------------------------


def make_view(balances: list[int], turn: int, max_turns: int = 40, contracts: list[dict] | None = None) -> TurnView:
    agents = [{"agent_id": f"agent_{i}", "balance": b, "staked": 0} for i, b in enumerate(balances)]
    return TurnView(turn=turn, max_turns=max_turns, agents=agents, contracts=contracts or [])


def make_contract(cid: str, proposer: str, counterparty: str, arbitrator: str, status: str, delivery: int) -> dict:
    return {
        "contract_id": cid, "proposer": proposer, "counterparty": counterparty, "arbitrator": arbitrator,
        "contract_type": "service", "status": status,
        "terms": {"description": "hand-built", "price": 30, "delivery_turn": delivery, "condition": None,
                  "pool_members": None},
        "collateral": {"proposer_locked": 10, "counterparty_locked": 10, "arbitrator_locked": 5},
        "settlement_type": "attested", "penalty": 5, "arbitrator_fee": 2, "payload": None,
    }


def split_lists(view: TurnView) -> tuple[list, list, list]:
    """Return (pending_sign, due_confirm, pending_rulings) exactly as run_single builds them."""
    contracts = view.contracts
    pending_sign = [c for c in contracts if c["status"] in {"proposed", "countersigned"}]
    due_confirm = [c for c in contracts if c["status"] == "active" and int(c["terms"]["delivery_turn"]) <= view.turn]
    pending_rulings = [c for c in contracts if c["status"] == "disputed"]
    return pending_sign, due_confirm, pending_rulings


def driver_choose(driver, rng, view: TurnView, agent: str, params: dict):
    """Call the driver's choose_action for one agent with the lists run_single would pass."""
    state_by_agent = {a["agent_id"]: a for a in view.agents}
    pending_sign, due, rulings = split_lists(view)
    return driver.choose_action(rng, view.turn, view.max_turns, agent, state_by_agent, pending_sign, rulings, due,
                                params)


def policy_choose(policy: StudyPolicy, view: TurnView, agent: str):
    """Call StudyPolicy.choose for one agent, as its own act() does."""
    return policy.choose(view.seen_by(agent))


def driver_turn(driver, rng, view: TurnView, params: dict) -> list[dict]:
    """Return the /turn inputs run_single would send for this view (its loop, verbatim in effect)."""
    inputs = []
    for agent in [a["agent_id"] for a in view.agents]:
        action, speech = driver_choose(driver, rng, view, agent, params)
        inputs.append({"agent_id": agent, "thinking": "", "action": action, "speech": speech,
                       "thinking_units": rng.randint(10, 100), "output_units": rng.randint(20, 180)})
    return inputs


def as_dicts(inputs: list[AgentInput]) -> list[dict]:
    return [{"agent_id": i.agent_id, "thinking": i.thinking, "action": i.action, "speech": i.speech,
             "thinking_units": i.thinking_units, "output_units": i.output_units} for i in inputs]


def policy_with_rng_of(params: dict, seed: int) -> StudyPolicy:
    return StudyPolicy(copy.deepcopy(params), seed)


# --- turn 1: the core auction -----------------------------------------------------------


def restate_turn_one(seed: int, params: dict, balances: list[int]) -> list[dict]:
    """A minimal independent re-statement of the driver's random calls on turn 1."""
    rng = random.Random(seed)
    out = []
    for i, balance in enumerate(balances):
        core = rng.randrange(params["num_cores"])
        bid = max(1, int(abs(rng.gauss(params["core_bid_mean"], params["core_bid_std"]))))
        bid = min(bid, max(1, int(balance * 0.35)))
        out.append({"agent_id": f"agent_{i}", "action": {"action": "bid_core", "core_id": f"core_{core}", "amount": bid},
                    "thinking_units": rng.randint(10, 100), "output_units": rng.randint(20, 180)})
    return out


def test_turn_one_replays_the_drivers_random_stream_from_a_real_genesis(regimes, tmp_path):
    regime = regimes["baseline"]
    run = Run.create(tmp_path / "g.db", agents=agent_ids(8), seed=101, config=engine_config(regime, 8))
    try:
        view = TurnView.from_state(run.state, 1, 40)
    finally:
        run.close()
    balances = [a["balance"] for a in view.agents]
    assert len(balances) == 8
    decided = StudyPolicy(regime["policy"], 101).decide(view)
    expected = restate_turn_one(101, regime["policy"], balances)
    assert [{"agent_id": i.agent_id, "action": i.action, "thinking_units": i.thinking_units,
             "output_units": i.output_units} for i in decided] == expected


@pytest.mark.parametrize("regime_name", ["baseline", "coordination_push", "high_compute_cost"])
def test_turn_one_is_a_clamped_core_bid_for_every_agent(regimes, regime_name):
    params = regimes[regime_name]["policy"]
    balances = [1000, 500, 100, 10, 2, 0, -50, 3000]  # several hit the 35% clamp, some the floor of 1
    for seed in range(1, 40):
        decided = StudyPolicy(params, seed).decide(make_view(balances, turn=1))
        assert decided == [
            AgentInput(agent_id=f"agent_{i}", thinking="", action=e["action"], speech=None,
                       thinking_units=e["thinking_units"], output_units=e["output_units"])
            for i, e in enumerate(restate_turn_one(seed, params, balances))
        ]
        for agent_input, balance in zip(decided, balances):
            action = agent_input.action
            assert action["action"] == "bid_core"
            assert 0 <= int(action["core_id"].removeprefix("core_")) < params["num_cores"]
            assert 1 <= action["amount"] <= max(1, int(balance * 0.35))
            assert 10 <= agent_input.thinking_units <= 100
            assert 20 <= agent_input.output_units <= 180


# --- priorities on hand-built later turns ----------------------------------------------------


def forced(params: dict, **overrides) -> dict:
    return {**params, **overrides}


def test_arbitrator_ruling_comes_before_signing_and_confirmation(regimes):
    params = forced(regimes["baseline"]["policy"], sign_prob=1.0, arb_sign_prob=1.0, confirm_prob=1.0)
    contracts = [
        make_contract("c_sign", "agent_0", "agent_1", "agent_3", "proposed", 9),
        make_contract("c_due", "agent_1", "agent_4", "agent_5", "active", 3),
        make_contract("c_disp", "agent_2", "agent_6", "agent_1", "disputed", 3),
    ]
    view = make_view([500] * 8, turn=5, contracts=contracts)
    for seed in range(20):
        policy = policy_with_rng_of(params, seed)
        action, speech = policy_choose(policy, view, "agent_1")
        expected_rng = random.Random(seed)
        ruling_for = "agent_2" if expected_rng.random() < 0.55 else "agent_6"
        assert (action, speech) == ({"action": "arbitrator_ruling", "contract_id": "c_disp",
                                     "ruling_for": ruling_for}, None)
        assert policy.rng.getstate() == expected_rng.getstate()


def test_counterparty_signs_before_confirming_a_due_contract(regimes):
    params = forced(regimes["baseline"]["policy"], sign_prob=1.0, confirm_prob=1.0)
    contracts = [
        make_contract("c_due", "agent_1", "agent_4", "agent_5", "active", 3),
        make_contract("c_sign", "agent_0", "agent_1", "agent_3", "proposed", 9),
    ]
    policy = policy_with_rng_of(params, 7)
    action, _ = policy_choose(policy, make_view([500] * 8, turn=5, contracts=contracts), "agent_1")
    assert action == {"action": "sign_contract", "contract_id": "c_sign", "role": "counterparty"}


def test_arbitrator_signs_a_countersigned_contract(regimes):
    params = forced(regimes["baseline"]["policy"], arb_sign_prob=1.0)
    contracts = [make_contract("c1", "agent_0", "agent_2", "agent_1", "countersigned", 9)]
    policy = policy_with_rng_of(params, 7)
    action, _ = policy_choose(policy, make_view([500] * 8, turn=5, contracts=contracts), "agent_1")
    assert action == {"action": "sign_contract", "contract_id": "c1", "role": "arbitrator"}


def test_a_declined_signature_falls_through_to_confirmation(regimes):
    params = forced(regimes["baseline"]["policy"], sign_prob=0.0, confirm_prob=1.0)
    contracts = [
        make_contract("c_sign", "agent_0", "agent_1", "agent_3", "proposed", 9),
        make_contract("c_due", "agent_4", "agent_1", "agent_5", "active", 5),
    ]
    policy = policy_with_rng_of(params, 3)
    action, _ = policy_choose(policy, make_view([500] * 8, turn=5, contracts=contracts), "agent_1")
    assert action == {"action": "confirm_delivery", "contract_id": "c_due"}


def test_a_party_that_does_not_confirm_may_dispute(regimes):
    params = forced(regimes["baseline"]["policy"], confirm_prob=0.0, dispute_prob=1.0)
    contracts = [make_contract("c_due", "agent_1", "agent_4", "agent_5", "active", 5)]
    policy = policy_with_rng_of(params, 3)
    action, _ = policy_choose(policy, make_view([500] * 8, turn=5, contracts=contracts), "agent_1")
    assert action == {"action": "dispute_delivery", "contract_id": "c_due"}


def test_a_contract_not_yet_due_is_not_confirmed(regimes):
    params = forced(regimes["baseline"]["policy"], confirm_prob=1.0, mine_prob=1.0)
    contracts = [make_contract("c_later", "agent_1", "agent_4", "agent_5", "active", 6)]
    policy = policy_with_rng_of(params, 3)
    action, _ = policy_choose(policy, make_view([500] * 8, turn=5, contracts=contracts), "agent_1")
    assert action == {"action": "mine"}


def test_indebted_agents_take_jobs_or_mine(regimes):
    params = regimes["baseline"]["policy"]
    for seed in range(20):
        policy = policy_with_rng_of(params, seed)
        action, speech = policy_choose(policy, make_view([-10] * 8, turn=5), "agent_1")
        job = random.Random(seed).random() < 0.6
        assert (action, speech) == (({"action": "job"}, "taking job to cover debt") if job else ({"action": "mine"}, None))


def test_the_routine_ladder_follows_one_uniform_draw(regimes, driver):
    """With the ladder's first rung certain, the agent mines; with it impossible, the next rung decides."""
    base = regimes["baseline"]["policy"]
    zero = {k: 0.0 for k in PROB_KEYS}
    cases = [
        ({**zero, "mine_prob": 1.0}, "mine"),
        ({**zero, "stake_prob": 1.0}, "stake"),
        ({**zero, "burn_prob": 1.0}, "burn"),
        ({**zero, "transfer_prob": 1.0}, "transfer"),
        ({**zero, "propose_prob": 1.0}, "propose_contract"),
        ({**zero, "study_prob": 1.0}, "study"),
        (zero, "mine"),
    ]
    for overrides, name in cases:
        params = {**base, **overrides, "low_balance_threshold": 0}
        view = make_view([500] * 8, turn=5, max_turns=40)
        policy = policy_with_rng_of(params, 11)
        action, _ = policy_choose(policy, view, "agent_1")
        assert action["action"] == name
        rng = random.Random(11)
        assert driver_choose(driver, rng, view, "agent_1", params)[0] == action
        assert policy.rng.getstate() == rng.getstate()


# --- the driver's own choose_action, on many random views -----------------------------------


def random_params(rng: random.Random, regimes: dict) -> dict:
    """Return a shipped regime's policy, or one with random probabilities (to reach every branch)."""
    params = dict(rng.choice(list(regimes.values()))["policy"])
    if rng.random() < 0.5:
        scale = rng.choice([1.0, 0.15])  # a sparse ladder leaves room for the study rung
        params.update({k: rng.random() * (scale if k in LADDER_KEYS else 1.0) for k in PROB_KEYS})
        params["low_balance_threshold"] = rng.choice([0, 100, 220, 600])
    return params


def random_view(rng: random.Random) -> TurnView:
    n = rng.randint(3, 9)
    max_turns = rng.randint(3, 45)
    turn = rng.choice([1, rng.randint(1, max_turns)])
    balances = [rng.choice([rng.randint(-400, 2000), rng.choice([-1, 0, 15, 16, 20, 21, 80, 81, 100, 101, 120])])
                for _ in range(n)]
    agents = [f"agent_{i}" for i in range(n)]
    contracts = []
    for k in range(rng.randint(0, 7)):
        proposer, counterparty, arbitrator = rng.sample(agents, 3)
        contracts.append(make_contract(f"c_{k}", proposer, counterparty, arbitrator, rng.choice(STATUSES),
                                       rng.randint(1, max_turns + 2)))
    view = make_view(balances, turn, max_turns, contracts)
    for a in view.agents:
        a["staked"] = rng.randint(0, 200)
    return view


def test_choose_matches_the_drivers_choose_action_on_random_views(regimes, driver):
    gen = random.Random(2024)
    seen: set[str] = set()
    roles: set[str] = set()
    for case in range(300):
        view, params = random_view(gen), random_params(gen, regimes)
        agent = gen.choice(view.agents)["agent_id"]
        seed = gen.randrange(2**32)
        theirs_rng = random.Random(seed)
        ours = policy_with_rng_of(params, seed)
        expected = driver_choose(driver, theirs_rng, copy.deepcopy(view), agent, params)
        assert policy_choose(ours, view, agent) == expected, f"case {case}"
        assert ours.rng.getstate() == theirs_rng.getstate(), f"case {case}: random stream diverged"
        seen.add(expected[0]["action"])
        roles.add(expected[0].get("role", ""))
    assert seen == ALL_ACTIONS, f"branches never reached: {ALL_ACTIONS - seen}"
    assert {"counterparty", "arbitrator"} <= roles


def test_decide_matches_the_drivers_turn_loop_on_random_views(regimes, driver):
    gen = random.Random(77)
    for case in range(200):
        view, params = random_view(gen), random_params(gen, regimes)
        seed = gen.randrange(2**32)
        theirs_rng = random.Random(seed)
        ours = policy_with_rng_of(params, seed)
        expected = driver_turn(driver, theirs_rng, copy.deepcopy(view), params)
        assert as_dicts(ours.decide(view)) == expected, f"case {case}"
        assert ours.rng.getstate() == theirs_rng.getstate(), f"case {case}"


def test_one_rng_carries_across_turns_like_the_drivers(regimes, driver):
    """The driver uses one generator for the whole run; so does the policy (no reseeding per turn)."""
    gen = random.Random(5)
    params = regimes["coordination_push"]["policy"]
    ours, theirs = StudyPolicy(params, 123), random.Random(123)
    for _ in range(30):
        view = random_view(gen)
        assert as_dicts(ours.decide(view)) == driver_turn(driver, theirs, copy.deepcopy(view), params)
    assert ours.rng.getstate() == theirs.getstate()


# --- a real run: the driver's loop, reading the live read model, writes the same log -------------


def test_a_run_driven_by_the_drivers_loop_has_the_study_runs_head(regimes, driver, tmp_path):
    """Play a run with run_single's loop (driver's choose_action, driver's fetch_contracts on the live
    contracts table) and compare, turn by turn, with StudyPolicy (and the view, with and without the memo of
    contract data a run keeps); the log's head equals execute_run's."""
    name, seed, turns, regime = "high_compute_cost", 102, 12, regimes["high_compute_cost"]
    params = regime["policy"]
    ident = {"regime": name, "run_name": run_name(name, seed), "turns": turns}
    path = tmp_path / "driver.db"
    run = Run.create(path, agents=agent_ids(8), seed=seed, config=engine_config(regime, 8), identity=ident)
    rng, policy = random.Random(seed), StudyPolicy(params, seed)
    kinds_played, offers = set(), {}  # offers: the memo play_turns keeps across a run's views
    try:
        for turn in range(1, turns + 1):
            state_by_agent = {a: {"agent_id": a, "balance": run.state.accounts[a].balance,
                                  "staked": run.state.accounts[a].staked} for a in run.state.agents}
            contracts = driver.fetch_contracts(path)
            view = TurnView(turn=turn, max_turns=turns, agents=list(state_by_agent.values()), contracts=contracts)
            assert TurnView.from_state(run.state, turn, turns) == view, f"turn {turn}: view differs from the table"
            assert TurnView.from_state(run.state, turn, turns, offers) == view, f"turn {turn}: memo view differs"
            inputs = driver_turn(driver, rng, view, params)
            assert as_dicts(policy.decide(TurnView.from_state(run.state, turn, turns))) == inputs, f"turn {turn}"
            kinds_played |= {i["action"]["action"] for i in inputs}
            run.step([AgentInput(**i) for i in inputs])
        head = run.head_hash.hex()
    finally:
        run.close()
    assert {"bid_core", "sign_contract", "propose_contract"} <= kinds_played
    study = execute_run(tmp_path / "study.db", regime_name=name, regime=regime, seed=seed, turns=turns)
    try:
        assert study.head_hash.hex() == head
    finally:
        study.close()


def test_policy_parameters_are_not_mutated(regimes):
    params = copy.deepcopy(regimes["baseline"]["policy"])
    before = json.dumps(params, sort_keys=True)
    policy = StudyPolicy(params, 1)
    gen = random.Random(9)
    for _ in range(20):
        policy.decide(random_view(gen))
    assert json.dumps(params, sort_keys=True) == before
