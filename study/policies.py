"""The policy registry: each kind's parameters as a Struct, and the society that plays a run.

A policy spec is plain data, ``{"kind": "study", ...parameters}`` (``kind``
defaults to ``study``, so a regime's ``policy`` object is a spec as written).
``load_policy`` validates it once against its kind's Struct. A run's society
names a spec per agent; agents with equal specs share one policy object.

The study registers its own kind; a higher layer adds its kinds with
``register_policy`` when it is imported (the orchestrator registers ``llm``),
so this layer never imports upward.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..events.actions import AgentInput
from ..events.config import InvalidConfig, load_struct
from .policy import Policy, PolicyKind, TurnView, decide_turn
from .study_policy import STUDY

DEFAULT_KIND = "study"
POLICIES: dict[str, PolicyKind] = {DEFAULT_KIND: STUDY}


def register_policy(kind: str, entry: PolicyKind) -> None:
    """Add a policy kind to the registry (its parameter Struct must be tagged with ``kind``)."""
    tag = entry.params.__struct_config__.tag
    if tag != kind:
        raise ValueError(f"the parameters of policy kind {kind!r} are tagged {tag!r}")
    POLICIES[kind] = entry


def load_policy(data: Any) -> msgspec.Struct:
    """Return the validated parameters of a policy spec (InvalidConfig names the bad field)."""
    if isinstance(data, msgspec.Struct):
        return data
    if not isinstance(data, dict):
        raise InvalidConfig(f"a policy must be an object, got {data!r}")
    kind = data.get("kind", DEFAULT_KIND)
    if kind not in POLICIES:
        raise InvalidConfig(f"unknown policy kind {kind!r}; known: {', '.join(POLICIES)}")
    return load_struct(POLICIES[kind].params, data, what="policy")


def policy_kind(params: msgspec.Struct) -> PolicyKind:
    return POLICIES[params.__struct_config__.tag]


class Society:
    """Which policy plays each agent of a run."""

    def __init__(self, specs: dict[str, Any], seed: int) -> None:
        """``specs``: agent -> policy spec, in agent order; equal specs share one policy (one random stream)."""
        params = {agent: load_policy(spec) for agent, spec in specs.items()}
        shared: dict[bytes, Policy] = {}
        self.players: dict[str, Policy] = {}
        self.replayable: dict[str, bool] = {}
        for agent, p in params.items():
            key = msgspec.msgpack.encode(p)
            if key not in shared:
                shared[key] = policy_kind(p).build(p, seed)
            self.players[agent] = shared[key]
            self.replayable[agent] = policy_kind(p).replayable

    def decide(self, view: TurnView) -> list[AgentInput]:
        """Return every agent's input for the turn, in agent order."""
        return decide_turn(self.players.__getitem__, view)
