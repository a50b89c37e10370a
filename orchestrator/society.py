"""A society: which policy drives each agent, as recorded in the run's genesis.

``identity["society"]`` maps every agent to ``"llm"`` or ``"study"`` (the
study's stochastic heuristic), ``identity["llm"]`` holds the LLM settings
including the prompt template, and ``identity["study_policy"]`` the heuristic's
parameters (its regime's), so a log alone says how each agent was driven. The
society decides a turn from an observation alone, so the same decisions come
out in-process, over HTTP and in re-execution.
"""

from __future__ import annotations

from typing import Any, Callable

import msgspec

from ..events import types as ev
from ..events.actions import AgentInput
from ..ledger.errors import BadInput, RunStateError
from ..study.policy import StudyPolicy, TurnView
from .calls import CallRecord, CallRequest
from .llm_policy import LLMPolicy, LLMSettings
from .transport import Transport

POLICY_KINDS = ("llm", "study")


class TurnDecision(msgspec.Struct, frozen=True, kw_only=True):
    inputs: list[AgentInput]  # agent order
    calls: list[ev.ModelCalled]  # agent order, then attempt order
    blobs: dict[str, bytes]


def society_identity(agents: list[str], llm_agents: list[str], settings: LLMSettings,
                     study_policy: dict[str, Any]) -> dict[str, Any]:
    """Return the genesis identity entries of a society where ``llm_agents`` are LLM-driven."""
    unknown = sorted(set(llm_agents) - set(agents))
    if unknown:
        raise BadInput(f"no agent {unknown[0]!r} in this run (agents are {agents[0]} .. {agents[-1]})")
    identity = {"society": {a: "llm" if a in llm_agents else "study" for a in agents},
                "llm": msgspec.to_builtins(settings)}
    if len(llm_agents) < len(agents):
        identity["study_policy"] = dict(study_policy)
    return identity


def is_society_run(identity: dict[str, Any]) -> bool:
    return isinstance(identity.get("society"), dict)


def view_of(observation: dict[str, Any]) -> TurnView:
    """Return the study policy's view of an observation (balances, open contracts in creation order)."""
    return TurnView(turn=observation["turn"], max_turns=observation["max_turns"],
                    agents=[{"agent_id": a["agent_id"], "balance": a["balance"], "staked": a["staked"]}
                            for a in observation["agents"]],
                    contracts=observation["contracts"])


class Society:
    """Each agent's policy; decides a whole turn, inputs in agent order."""

    def __init__(self, kinds: dict[str, str], llm: LLMPolicy | None, study: StudyPolicy | None) -> None:
        self.kinds, self.llm, self.study = kinds, llm, study

    @classmethod
    def from_identity(cls, identity: dict[str, Any], *, seed: int, agents: list[str],
                      concurrency: int = 4) -> "Society":
        kinds = identity.get("society")
        if not isinstance(kinds, dict) or list(kinds) != list(agents) or set(kinds.values()) - set(POLICY_KINDS):
            raise RunStateError("the genesis names no valid society (one of llm/study per agent, in agent order)")
        llm = study = None
        if "llm" in kinds.values():
            try:
                settings = msgspec.convert(identity.get("llm"), LLMSettings)
            except msgspec.ValidationError as err:
                raise RunStateError(f"the genesis holds invalid LLM settings: {err}") from None
            llm = LLMPolicy(settings, run_seed=seed, concurrency=concurrency)
        if "study" in kinds.values():
            params = identity.get("study_policy")
            if not isinstance(params, dict):
                raise RunStateError("the genesis names study agents but holds no study_policy parameters")
            study = StudyPolicy(params, seed)
        return cls(dict(kinds), llm, study)

    def members(self, kind: str) -> list[str]:
        return [agent for agent, k in self.kinds.items() if k == kind]

    def decide(self, observation: dict[str, Any], transport: Transport,
               on_call: Callable[[CallRequest, CallRecord], None] | None = None) -> TurnDecision:
        """Return the turn's inputs and the model calls behind them."""
        by_agent: dict[str, AgentInput] = {}
        calls: dict[str, list[ev.ModelCalled]] = {}
        blobs: dict[str, bytes] = {}
        if self.study is not None:
            members = self.members("study")
            by_agent.update(zip(members, self.study.decide(view_of(observation), members)))
        if self.llm is not None:
            members = self.members("llm")
            for agent, decision in zip(members, self.llm.decide(observation, members, transport, on_call)):
                by_agent[agent], calls[agent] = decision.input, decision.calls
                blobs.update(decision.blobs)
        order = list(self.kinds)
        return TurnDecision(inputs=[by_agent[a] for a in order],
                            calls=[call for a in order for call in calls.get(a, [])], blobs=blobs)
