"""Run one study run end to end: genesis, turns driven by a policy, a verified log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..ledger.head import write_run_head
from ..ledger.run import Run
from .policy import StudyPolicy, TurnView
from .regimes import engine_config


def agent_ids(n: int) -> list[str]:
    return [f"agent_{i}" for i in range(n)]


def run_name(regime: str, seed: int) -> str:
    return f"{regime}_{seed}"


def execute_run(path: str | Path, *, regime_name: str, regime: dict[str, Any], seed: int, agents: int = 8,
                turns: int = 40, identity: dict[str, Any] | None = None, rules: dict | None = None,
                keystore: str | Path | None = None) -> Run:
    """Create ``path`` and play ``turns`` turns of the study policy; return the (open) run."""
    ident = {"regime": regime_name, "run_name": run_name(regime_name, seed), "turns": turns, **(identity or {})}
    run = Run.create(path, agents=agent_ids(agents), seed=seed, config=engine_config(regime, agents),
                     rules=rules, identity=ident, keystore=keystore)
    return play_to(run, StudyPolicy(regime["policy"], seed), turns)


def play_to(run: Run, policy: StudyPolicy, turns: int) -> Run:
    """Play ``policy`` from the run's next turn through turn ``turns`` and write the log's signed head
    beside it; close the run if a turn fails."""
    try:
        for turn in range(run.next_turn, turns + 1):
            run.step(policy.decide(TurnView.from_state(run.state, turn, turns)))
        write_run_head(run)
    except BaseException:
        run.close()
        raise
    return run


def resume_run(path: str | Path, catalogue: dict[str, Any], keystore: str | Path | None = None) -> Run:
    """Reopen an interrupted study run and play it to its recorded number of turns."""
    from ..ledger.errors import RunStateError

    run = Run.open(path, keystore=keystore)
    try:
        ident = run.state.identity
        regime_name, turns = ident.get("regime"), ident.get("turns")
        if regime_name not in catalogue or not isinstance(turns, int):
            raise RunStateError(f"{path} was not written by a study run (genesis identity {ident!r})")
        policy = replay_policy(run.store, catalogue[regime_name]["policy"], run.state.seed, turns)
    except BaseException:
        run.close()
        raise
    return play_to(run, policy, turns)


def replay_policy(store, params: dict[str, Any], seed: int, max_turns: int) -> StudyPolicy:
    """Return the study policy advanced past every turn in ``store``, as if it had played them.

    The policy's random stream depends on what it saw each turn, so it is
    re-driven with the start-of-turn view of each recorded turn (folded from
    the log); each decision is checked against the recorded inputs, so a
    resume with the wrong regime or seed is refused instead of diverging.
    """
    from ..events.envelope import encode_payload
    from ..ledger.engine import submitted_event
    from ..ledger.errors import RunStateError
    from ..ledger.replay import positioned_events
    from ..projections.reducers import apply_event
    from ..projections.state import State

    policy, state = StudyPolicy(params, seed), State()
    pending: list = []
    turn_seen = 0

    def play(turn: int, batch: list) -> None:
        decided = policy.decide(TurnView.from_state(state, turn, max_turns))
        recorded = [e for _, _, e in batch if e.__struct_config__.tag == "action_submitted"]
        if [encode_payload(submitted_event(i)) for i in decided] != [encode_payload(e) for e in recorded]:
            raise RunStateError(f"turn {turn} of the log was not played by this regime, seed and turn count")
        for seq, t, event in batch:
            apply_event(state, event, seq, t)

    for seq, turn, event in positioned_events(store):
        if turn != turn_seen:
            if turn_seen >= 1:
                play(turn_seen, pending)
            pending, turn_seen = [], turn
        if turn == 0:
            apply_event(state, event, seq, turn)
        else:
            pending.append((seq, turn, event))
    if turn_seen >= 1:
        play(turn_seen, pending)
    return policy
