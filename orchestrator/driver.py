"""Driving a run with a society in-process: create, play, resume, and re-derive recorded turns.

A turn is: observe the state, let the society decide (model calls through a
transport), then step the run with the inputs and the calls' events, the
calls' texts written in the same transaction and the turn's kept answers
forgotten in it. Recorded turns are re-derived with the recording as the only
transport: that is how ``--resume`` catches up (and checks) a run's policies and
how ``verify --reexecute`` proves the inputs follow from the recorded answers.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from ..events import types as ev
import msgspec

from ..events.envelope import ENCODER, encode_payload
from ..ledger.audit import decode_row
from ..ledger.blobs import get_blob, put_blobs
from ..ledger.engine import submitted_event
from ..ledger.errors import LedgerError, RunStateError
from ..ledger.observation import observe
from ..ledger.replay import positioned_events
from ..ledger.run import Run
from ..ledger.store import Store
from ..projections.reducers import apply_event
from ..projections.state import State
from ..study.regimes import engine_config
from ..study.runner import agent_ids, run_name
from .calls import CallRecord, CallRequest, from_event
from .llm_policy import LLMSettings
from .society import Players, TurnDecision, society_identity
from .transport import KeptTransport, LiveTransport, PendingCalls, ReplayTransport, Transport, clear_pending

OnCall = Callable[[CallRequest, CallRecord], None]


class ModelUnreachable(LedgerError):
    """Raised when not one of a turn's model calls could connect: the turn is not recorded (resume later)."""


class BudgetSpent(LedgerError):
    """Raised before a turn when the run's token budget is already spent (the run can be resumed)."""


def society_genesis(*, regime_name: str, regime: dict[str, Any], seed: int, agents: int, turns: int,
                    llm_agents: list[str] | None, settings: LLMSettings) -> dict[str, Any]:
    """Return what a society run's genesis records: agent ids, config, seed, identity (as /init takes them)."""
    ids = agent_ids(agents)
    if settings.seed is None:
        settings = msgspec.structs.replace(settings, seed=sampling_seed(seed))
    identity = {"regime": regime_name, "run_name": f"llm_{run_name(regime_name, seed)}", "turns": turns,
                **society_identity(ids, ids if llm_agents is None else llm_agents, settings, regime["policy"])}
    return {"agent_ids": ids, "config": engine_config(regime, agents), "seed": seed, "identity": identity}


def sampling_seed(run_seed: int) -> int:
    """Return the default ``seed`` sent to the model: derived one way from the run's seed, never the seed itself
    (with seed-derived keys the run's seed is every private key, and model calls are served over HTTP)."""
    digest = hashlib.sha256(ENCODER.encode(["simledger/llm-sampling-seed/v1", run_seed])).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def create_society_run(path: str | Path, **spec: Any) -> Run:
    """Create ``path`` with a genesis that records the society (see :func:`society_genesis`)."""
    genesis = society_genesis(**spec)
    return Run.create(path, agents=genesis["agent_ids"], seed=genesis["seed"], config=genesis["config"],
                      identity=genesis["identity"])


def commit_writes(decision: TurnDecision, turn: int) -> Callable[[Any], None]:
    """Return what the turn's transaction writes besides events: the calls' texts; the kept answers go."""

    def write(conn) -> None:
        put_blobs(conn, decision.blobs)
        clear_pending(conn, turn)

    return write


def tokens_in(positioned: Iterable[tuple[int, int, Any]]) -> int:
    """Return the prompt + completion tokens of every model call among a log's events."""
    return sum(e.usage.prompt_tokens + e.usage.completion_tokens for _, _, e in positioned
               if isinstance(e, ev.ModelCalled))


class Engine(Protocol):
    """Where the turns go: a run in this process (``LocalEngine``) or a ``simledger serve`` (``remote``)."""

    @property
    def next_turn(self) -> int: ...

    def observation(self, max_turns: int) -> dict[str, Any]: ...

    def commit(self, decision: TurnDecision, turn: int) -> None: ...


class LocalEngine:
    def __init__(self, run: Run) -> None:
        self.run = run

    @property
    def next_turn(self) -> int:
        return self.run.next_turn

    def observation(self, max_turns: int) -> dict[str, Any]:
        return observe(self.run.state, self.run.next_turn, max_turns)

    def commit(self, decision: TurnDecision, turn: int) -> None:
        self.run.step(decision.inputs, calls=decision.calls, write_extra=commit_writes(decision, turn))


def play_society(engine: Engine, society: Players, turns: int, live: LiveTransport | None, pending: PendingCalls, *,
                 tokens_so_far: int = 0, run_token_budget: int | None = None, on_call: OnCall | None = None,
                 on_turn: Callable[[int], None] | None = None) -> None:
    """Play through turn ``turns``; answers are kept in ``pending`` as they arrive, so a kill loses none."""
    transport: Transport | None = KeptTransport(live, pending) if live is not None else None
    used = tokens_so_far

    def count(request: CallRequest, record: CallRecord) -> None:
        nonlocal used
        used += record.total_tokens
        if on_call is not None:
            on_call(request, record)

    for turn in range(engine.next_turn, turns + 1):
        if run_token_budget is not None and used >= run_token_budget:
            raise BudgetSpent(f"stopped before turn {turn}: {used:,} tokens used, the run's token budget is "
                              f"{run_token_budget:,}; --resume (with a larger --llm-run-budget, or none) to go on")
        if transport is None and society.models:
            raise RunStateError("this run has LLM-driven agents: pass --llm-url (and --llm-model) to play it")
        decision = society.decide(engine.observation(turns), transport, count)
        if decision.calls and all(call.error.startswith("connection failed") for call in decision.calls):
            raise ModelUnreachable(f"no model call of turn {turn} reached the server ({decision.calls[-1].error}); "
                                   "nothing was recorded for that turn: check the endpoint (--llm-url, or the "
                                   "llm table's url) and resume")
        engine.commit(decision, turn)
        if on_turn is not None:
            on_turn(turn)


# --- recorded turns ---------------------------------------------------------------------


def recorded_calls(events: list[Any], blob: Callable[[str], bytes | None]) -> ReplayTransport:
    """Return a transport serving exactly the model calls among a turn's recorded events."""
    calls = [e for e in events if isinstance(e, ev.ModelCalled)]
    return ReplayTransport({call.key: from_event(call, blob) for call in calls})


def recorded_inputs_of(decision: TurnDecision) -> list[bytes]:
    """Return the canonical bytes of what a decision records: its calls, then its inputs."""
    return [encode_payload(c) for c in decision.calls] + [encode_payload(submitted_event(i)) for i in decision.inputs]


def redrive(positioned: Iterable[tuple[int, int, Any]], blob: Callable[[str], bytes | None], society: Players,
            max_turns: int) -> None:
    """Advance ``society`` over a log's recorded turns, serving model calls from it and checking each decision.

    ``positioned`` yields the log's (seq, turn, event); ``blob`` reads a text by
    hash. A turn whose recorded calls or inputs differ from what the society
    decides (another template, model, regime or seed) raises RunStateError naming
    it; a call the recording lacks raises NotRecorded naming the request.
    """
    state = State()
    for turn, group in itertools.groupby(positioned, key=lambda item: item[1]):
        batch = list(group)
        if turn >= 1:
            events = [event for _, _, event in batch]
            decision = society.decide(observe(state, turn, max_turns), recorded_calls(events, blob))
            recorded = [encode_payload(e) for e in events if isinstance(e, (ev.ModelCalled, ev.ActionSubmitted))]
            if recorded_inputs_of(decision) != recorded:
                raise RunStateError(f"turn {turn} of the log was not played by this society, template and seed")
        for seq, t, event in batch:
            apply_event(state, event, seq, t)


def redrive_store(store: Store, society: Players, max_turns: int) -> None:
    """Advance ``society`` over every turn of a local log (see :func:`redrive`)."""
    redrive(positioned_events(store), lambda digest: get_blob(store.conn, digest), society, max_turns)


def reexecution_driver(store: Store, genesis: ev.RunGenesis):
    """Return a ``ledger.reexecute`` turn driver: inputs re-derived from the recorded answers, offline."""
    society = Players.from_identity(genesis.identity, seed=genesis.seed, agents=genesis.agents)
    max_turns = genesis.identity.get("turns")
    blob = lambda digest: get_blob(store.conn, digest)  # noqa: E731

    def drive(twin: Run, turn: int, rows: list[tuple]):
        events = [decode_row(row) for row in rows if row.kind == "model_called"]
        decision = society.decide(observe(twin.state, turn, max_turns), recorded_calls(events, blob))
        return decision.inputs, decision.calls, lambda conn: put_blobs(conn, decision.blobs)

    return drive
