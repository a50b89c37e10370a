"""Run one study run end to end: genesis, turns played by the run's society, a verified log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from ..ledger.head import head_file_of, write_run_head
from ..ledger.memory import MemoryRun
from ..ledger.run import Run
from .model_runs import model_runs, plays_llm, refuse_in_memory
from .policies import Society, load_policy
from .policy import TurnView
from .regimes import engine_config


def agent_ids(n: int) -> list[str]:
    return [f"agent_{i}" for i in range(n)]


def run_name(regime: str, seed: int) -> str:
    return f"{regime}_{seed}"


def society_specs(regime: dict[str, Any], agents: list[str], policies: dict[str, Any] | None) -> dict[str, Any]:
    """Return each agent's policy spec: its own from ``policies``, else the regime's."""
    return {agent: (policies or {}).get(agent, regime["policy"]) for agent in agents}


def run_identity(regime_name: str, seed: int, turns: int, identity: dict[str, Any] | None,
                 policies: dict[str, Any] | None) -> dict[str, Any]:
    """Return the genesis identity of a study run (with the agents' own policy specs, when any)."""
    ident = {"regime": regime_name, "run_name": run_name(regime_name, seed), "turns": turns, **(identity or {})}
    if policies:
        ident["policies"] = {a: msgspec.to_builtins(load_policy(spec)) for a, spec in sorted(policies.items())}
    return ident


def genesis_identity(regime_name: str, regime: dict[str, Any], seed: int, agents: int, turns: int,
                     identity: dict[str, Any] | None = None, policies: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the identity ``execute_run`` records; a regime that plays a language model adds every agent's spec.

    Raises InvalidConfig (naming the key) for a regime's ``llm`` table that cannot be played.
    """
    plan = model_runs().plan(regime, agent_ids(agents), seed) if plays_llm(regime) else None
    if plan is None:
        return run_identity(regime_name, seed, turns, identity, policies)
    return {**run_identity(regime_name, seed, turns, identity, None), "policies": plan[1]}


def remove_log_files(path: str | Path) -> None:
    """Remove a log, its SQLite side files and its signed head if present (never a folder)."""
    path = Path(path)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"), head_file_of(path)):
        if stale.is_file():
            stale.unlink()


def execute_run(path: str | Path, *, regime_name: str, regime: dict[str, Any], seed: int, agents: int = 8,
                turns: int = 40, identity: dict[str, Any] | None = None, rules: dict | None = None,
                policies: dict[str, Any] | None = None, keystore: str | Path | None = None) -> Run:
    """Create ``path`` and play ``turns`` turns; return the (open) run.

    Every agent plays the regime's policy unless ``policies`` names another spec
    for it; those agents' specs are recorded in the genesis identity (``policies``),
    so the log says who played each agent and a resume rebuilds the same society.
    A regime with an ``llm`` table is played by the LLM orchestrator's driver
    (``orchestrator.society_runs``), every model call recorded in the log; an
    unfinished log of the same run at ``path`` is continued, not replaced, so
    the model calls it recorded (and kept) are not paid for again.
    """
    ids = agent_ids(agents)
    if plays_llm(regime):
        model = model_runs()
        plan = model.plan(regime, ids, seed)
        shape = dict(agents=ids, seed=seed, config=engine_config(regime, agents), rules=rules, turns=turns,
                     keystore=keystore, identity=genesis_identity(regime_name, regime, seed, agents, turns, identity))
        run = model.resume(path, plan[0], **shape)
        if run is None:
            remove_log_files(path)
            run = model.play(path, plan[0], **shape)
        return run
    society = Society(society_specs(regime, ids, policies), seed)
    run = Run.create(path, agents=ids, seed=seed, config=engine_config(regime, agents), rules=rules,
                     identity=run_identity(regime_name, seed, turns, identity, policies), keystore=keystore)
    return play_to(run, society, turns)


def simulate_run(*, regime_name: str, regime: dict[str, Any], seed: int, agents: int = 8, turns: int = 40,
                 identity: dict[str, Any] | None = None, rules: dict | None = None,
                 policies: dict[str, Any] | None = None, keep_events: bool = False) -> MemoryRun:
    """Play the same run as ``execute_run`` in memory (no log, so no head to sign); return it."""
    refuse_in_memory(regime_name, regime)
    ids = agent_ids(agents)
    society = Society(society_specs(regime, ids, policies), seed)
    run = MemoryRun.create(agents=ids, seed=seed, config=engine_config(regime, agents), rules=rules,
                           identity=run_identity(regime_name, seed, turns, identity, policies),
                           keep_events=keep_events)
    return play_turns(run, society, turns)


def play_to(run: Run, society, turns: int) -> Run:
    """Play ``society`` (anything with ``decide(TurnView)``) through turn ``turns`` and write the log's signed
    head beside it; close the run if a turn fails."""
    play_turns(run, society, turns)
    try:
        write_run_head(run)
    except BaseException:
        run.close()
        raise
    return run


def play_turns(run: Run | MemoryRun, society, turns: int) -> Run | MemoryRun:
    """Play ``society`` from the run's next turn through turn ``turns``; close the run if a turn fails."""
    offers: dict = {}  # each contract's data for the views, converted once per run (TurnView.from_state)
    try:
        for turn in range(run.next_turn, turns + 1):
            run.step(society.decide(TurnView.from_state(run.state, turn, turns, offers)))
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
        specs = society_specs(catalogue[regime_name], run.state.agents, ident.get("policies"))
        society = Society(specs, run.state.seed)
        replay_society(run.store, society, turns)
    except BaseException:
        run.close()
        raise
    return play_to(run, society, turns)


def replay_society(store, society: Society, max_turns: int) -> None:
    """Advance the society's replayable policies past every turn in ``store``, as if they had played them.

    A replayable policy's random stream depends on what it saw each turn, so it
    is re-driven with the start-of-turn view of each recorded turn (folded from
    the log), and each decision is checked against the recorded input, so a
    resume with the wrong regime or seed is refused instead of diverging. Agents
    whose policy cannot be re-driven (``replayable`` false) keep their recorded
    inputs and are not asked again.
    """
    from ..events.envelope import encode_payload
    from ..ledger.engine import submitted_event
    from ..ledger.errors import RunStateError
    from ..ledger.replay import positioned_events
    from ..projections.reducers import apply_event
    from ..projections.state import State

    state = State()
    pending: list = []
    turn_seen = 0

    def play(turn: int, batch: list) -> None:
        view = TurnView.from_state(state, turn, max_turns)
        redriven = [a["agent_id"] for a in view.agents if society.replayable[a["agent_id"]]]
        decided = [society.players[a].act(view.seen_by(a)) for a in redriven]
        recorded = [e for _, _, e in batch if e.__struct_config__.tag == "action_submitted" and e.agent in redriven]
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
