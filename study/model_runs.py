"""The one place through which the study plays regimes that a language model plays.

Such a run needs the LLM orchestrator's driver, and the orchestrator sits above the
study (it builds on the study's policies and regimes), so the study never imports it.
The orchestrator registers its ``ModelRuns`` here when it is imported, as it registers
its policy kind; the ``simledger`` command always imports it, a library user does
``import simledger.orchestrator``. Process-pool workers forked from such a process
inherit the registration; a worker that never imported the orchestrator refuses a
model-played regime with a one-line error rather than playing it without its model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..events.config import InvalidConfig

LLM_TABLE = "llm"  # a regime's table: where the model is, which agents it plays, its settings


def plays_llm(regime: dict[str, Any]) -> bool:
    """Return whether a regime has agents played by a language model."""
    policy = regime.get("policy")
    return LLM_TABLE in regime or (isinstance(policy, dict) and policy.get("kind") == "llm")


def refuse_in_memory(regime_name: str, regime: dict[str, Any]) -> None:
    """Raise InvalidConfig if a regime plays a language model: its calls need a log to be recorded in."""
    if plays_llm(regime):
        raise InvalidConfig(f"{regime_name!r} plays a language model, whose calls only a log records: "
                            "run it with logs, not in memory")


@dataclass(frozen=True)
class ModelRuns:
    """What the orchestrator provides for model-played runs (see ``orchestrator.society_runs``)."""

    validate: Callable[..., Any]  # (regime) -> None; InvalidConfig names the bad key of its llm table
    plan: Callable[..., Any]  # (regime, agents, seed) -> (endpoint, every agent's policy spec) or None
    play: Callable[..., Any]  # (path, endpoint, **shape) -> the finished, open Run
    resume: Callable[..., Any]  # (path, endpoint, **shape) -> the finished Run, or None when path holds no such run


_registered: list[ModelRuns] = []


def register_model_runs(runs: ModelRuns) -> None:
    """Let the study play model-driven regimes with ``runs`` (called by the orchestrator on import)."""
    _registered[:] = [runs]


def model_runs() -> ModelRuns:
    """Return the registered ModelRuns (InvalidConfig when nothing that plays a model was imported)."""
    if not _registered:
        raise InvalidConfig("this regime plays a language model: import simledger.orchestrator (the simledger "
                            "command does) so the study can play it")
    return _registered[0]
