"""Run one study run end to end: genesis, turns driven by a policy, a verified log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..ledger.run import Run
from .policy import StudyPolicy, TurnView
from .regimes import engine_config


def agent_ids(n: int) -> list[str]:
    return [f"agent_{i}" for i in range(n)]


def run_name(regime: str, seed: int) -> str:
    return f"{regime}_{seed}"


def execute_run(path: str | Path, *, regime_name: str, regime: dict[str, Any], seed: int, agents: int = 8,
                turns: int = 40, identity: dict[str, Any] | None = None, rules: dict | None = None) -> Run:
    """Create ``path`` and play ``turns`` turns of the study policy; return the (open) run."""
    ident = {"regime": regime_name, "run_name": run_name(regime_name, seed), "turns": turns, **(identity or {})}
    run = Run.create(path, agents=agent_ids(agents), seed=seed, config=engine_config(regime, agents),
                     rules=rules, identity=ident)
    policy = StudyPolicy(regime["policy"], seed)
    for turn in range(1, turns + 1):
        run.step(policy.decide(TurnView.from_state(run.state, turn, turns)))
    return run
