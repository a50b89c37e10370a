"""The policy registry: specs validated once, per-agent societies, resume without re-driving a policy."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from simledger.events.actions import AgentInput
from simledger.events.config import InvalidConfig
from simledger.ledger.verify import verify_log
from simledger.study.policies import POLICIES, Society, load_policy
from simledger.study.policy import AgentView, PolicyKind, TurnView
from simledger.study.regimes import load_regimes
from simledger.study.runner import execute_run, resume_run
from simledger.study.study_policy import StudyParams, StudyPolicy


class Interrupted(Exception):
    """Stands in for a kill in the middle of a run."""


class ScriptedParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="scripted",
                     tag_field="kind"):
    amount: int = 1
    stop_at_turn: int = 0  # raise Interrupted when asked for this turn (0: never)


class ScriptedPolicy:
    """A policy that cannot be re-driven: each input draws from a counter no seed restores."""

    counter = itertools.count(1)
    turns_asked: list[int] = []

    def __init__(self, params: ScriptedParams, seed: int) -> None:
        self.params = params

    def act(self, view: AgentView) -> AgentInput:
        if view.turn == self.params.stop_at_turn:
            raise Interrupted(view.turn)
        ScriptedPolicy.turns_asked.append(view.turn)
        return AgentInput(agent_id=view.agent_id, action={"action": "burn", "amount": self.params.amount},
                          speech=f"call {next(ScriptedPolicy.counter)}")


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setitem(POLICIES, "scripted", PolicyKind(params=ScriptedParams, build=ScriptedPolicy,
                                                          replayable=False))
    ScriptedPolicy.turns_asked = []
    return ScriptedPolicy


def test_a_regime_policy_object_is_a_study_spec():
    params = load_policy(load_regimes()["baseline"]["policy"])
    assert isinstance(params, StudyParams)
    assert msgspec.to_builtins(params)["kind"] == "study"


@pytest.mark.parametrize("change, words", [
    ({"mine_probability": 0.1}, ["mine_probability", "did you mean mine_prob?"]),
    ({"kind": "oracle"}, ["unknown policy kind 'oracle'", "study"]),
    ({"sign_prob": 1.5}, ["sign_prob", "<= 1.0"]),
    ({"num_cores": 0}, ["num_cores", ">= 1"]),
])
def test_a_bad_policy_spec_is_refused_naming_the_field(change, words):
    spec = {**load_regimes()["baseline"]["policy"], **change}
    with pytest.raises(InvalidConfig) as caught:
        load_policy(spec)
    for word in words:
        assert word in str(caught.value)


def test_agents_with_equal_specs_share_one_policy_and_its_random_stream():
    regime = load_regimes()["baseline"]
    agents = [f"agent_{i}" for i in range(8)]
    society = Society({a: regime["policy"] for a in agents}, 101)
    assert len({id(p) for p in society.players.values()}) == 1
    view = TurnView(turn=1, max_turns=40, contracts=[],
                    agents=[{"agent_id": a, "balance": 1000, "staked": 0} for a in agents])
    assert society.decide(view) == StudyPolicy(regime["policy"], 101).decide(view)


def test_a_mixed_society_is_recorded_in_the_genesis_and_played_per_agent(scripted, tmp_path):
    regime = load_regimes()["baseline"]
    policies = {"agent_2": {"kind": "scripted", "amount": 3}}
    run = execute_run(tmp_path / "mixed.db", regime_name="baseline", regime=regime, seed=101, agents=4, turns=3,
                      policies=policies)
    try:
        identity = run.state.identity
    finally:
        run.close()
    assert identity["policies"] == {"agent_2": {"kind": "scripted", "amount": 3, "stop_at_turn": 0}}
    assert scripted.turns_asked == [1, 2, 3]
    assert verify_log(tmp_path / "mixed.db").ok


def test_resume_keeps_the_recorded_inputs_of_a_policy_that_cannot_be_re_driven(scripted, tmp_path):
    regime = load_regimes()["baseline"]
    path = tmp_path / "resumed.db"
    with pytest.raises(Interrupted):
        execute_run(path, regime_name="baseline", regime=regime, seed=101, agents=4, turns=6,
                    policies={"agent_1": {"kind": "scripted", "stop_at_turn": 4}})
    assert scripted.turns_asked == [1, 2, 3]
    # The genesis records stop_at_turn 4, so a resume would stop again; the same run, made resumable,
    # is the log as written up to turn 3 with a policy spec that no longer stops.
    catalogue = load_regimes()
    POLICIES["scripted"] = PolicyKind(params=ScriptedParams, build=NeverStops, replayable=False)
    run = resume_run(path, catalogue)
    try:
        assert run.state.sealed_turn == 6
    finally:
        run.close()
    assert scripted.turns_asked == [1, 2, 3, 4, 5, 6], "recorded turns are not asked again"
    assert verify_log(path).ok


class NeverStops(ScriptedPolicy):
    def __init__(self, params: ScriptedParams, seed: int) -> None:
        super().__init__(msgspec.structs.replace(params, stop_at_turn=0), seed)


def test_resume_still_refuses_a_log_the_study_policy_did_not_play(tmp_path):
    """The replayable agents are still checked against what they recorded."""
    from simledger.ledger.errors import RunStateError
    from simledger.ledger.run import Run

    regime = load_regimes()["baseline"]
    path = tmp_path / "other.db"
    run = Run.create(path, agents=[f"agent_{i}" for i in range(4)], seed=101,
                     config={"num_agents": 4, **regime["config"]},
                     identity={"regime": "baseline", "run_name": "baseline_101", "turns": 5})
    try:
        run.step([AgentInput(agent_id=f"agent_{i}", action={"action": "mine"}) for i in range(4)])
    finally:
        run.close()
    with pytest.raises(RunStateError, match="turn 1"):
        resume_run(path, load_regimes())


def test_the_study_layer_loads_without_the_orchestrator_which_registers_its_kind_when_imported():
    import subprocess
    import sys

    code = ("import sys; import simledger.study.policies as p, simledger.study.sweep, simledger.study.study_run;"
            "before = sorted(p.POLICIES), 'simledger.orchestrator' in sys.modules;"
            "import simledger.orchestrator; print(before, sorted(p.POLICIES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(['study'], False) ['llm', 'study']"


def test_a_kind_is_registered_under_its_own_tag(monkeypatch):
    from simledger.study.policies import register_policy

    entry = PolicyKind(params=ScriptedParams, build=ScriptedPolicy, replayable=True)
    with pytest.raises(ValueError, match="tagged 'scripted'"):
        register_policy("other", entry)
    monkeypatch.setattr("simledger.study.policies.POLICIES", dict(POLICIES))
    register_policy("scripted", entry)
    assert isinstance(load_policy({"kind": "scripted"}), ScriptedParams)
