"""A run held in memory: the same engine, events and reducers as a logged run, nothing signed or stored.

Ensembles (thousands of seeds for a comparison or a calibration) need only each
run's final state. ``MemoryRun`` drives ``engine.process_turn`` exactly as
``Run`` does, and every event is folded into the state by the same reducer.
What it leaves out is what only a stored log needs: Ed25519 signatures, the
readable JSON copy, SQLite rows, read models and checkpoints.

Event hashes are still computed, because they are part of the economy: each
turn's seal commits to the Merkle root of its events' hashes, and the next
block lottery draws from that seal (R9). The envelope names the signer by its
key id, so the seed-derived public keys are derived once per run (no private
key ever signs). The result is the very economy ``Run`` writes: the same
events, the same hashes, the same head (``tests/test_memory_run.py``).
"""

from __future__ import annotations

from typing import Any, Iterable

from ..events import types as ev
from ..events.actions import AgentInput
from ..events.config import Config, Rules
from ..events.envelope import ENGINE, ZERO_HASH, seal_envelope
from ..events.keys import SeedKeys, key_id
from ..projections.reducers import apply_event
from ..projections.state import State, TurnMetrics
from . import engine
from .run import build_genesis, check_inputs, coerce_input, load_settings


class MemoryRecorder:
    """Hashes and folds each event as ``run.Recorder`` does, without signing or keeping rows."""

    def __init__(self, state: State, signer_ids: dict[str, str], events: list | None) -> None:
        self.state = state
        self.seq, self.prev_hash, self.turn = -1, ZERO_HASH, 0
        self._signer_ids = signer_ids
        self._events = events
        self.hashes: list[bytes] = []

    def start_turn(self, turn: int) -> None:
        self.turn, self.hashes = turn, []

    def emit(self, event: Any, *, signature: bytes | None = None) -> int:
        seq = self.seq + 1
        signer = self._signer_ids[event.agent if isinstance(event, ev.ActionSubmitted) else ENGINE]
        _, digest = seal_envelope(event, seq=seq, turn=self.turn, prev_hash=self.prev_hash, signer=signer)
        apply_event(self.state, event, seq, self.turn)
        self.hashes.append(digest)
        if self._events is not None:
            self._events.append((seq, self.turn, event))
        self.seq, self.prev_hash = seq, digest
        return seq

    def turn_hashes(self) -> list[bytes]:
        return self.hashes


class MemoryRun:
    """A run whose log is never written: ``create``, then ``step`` turn by turn, as with ``Run``.

    With ``keep_events=True`` the (seq, turn, event) triples are kept in
    ``events``, for tests and tools that compare a run's events.
    """

    def __init__(self, recorder: MemoryRecorder, events: list | None) -> None:
        self._rec = recorder
        self.events = events

    @classmethod
    def create(cls, *, agents: list[str], seed: int, config: Config | dict | None = None,
               rules: Rules | dict | None = None, identity: dict | None = None, run_id: str | None = None,
               keep_events: bool = False) -> "MemoryRun":
        """Return a new run at the end of its genesis turn (seed-derived keys, as ``Run.create`` by default)."""
        config, rules, identity = load_settings(agents, config, rules, identity)
        keys = SeedKeys(seed)
        signers = {name: keys.private_key(name) for name in [ENGINE, *agents]}
        genesis = build_genesis(agents=agents, seed=seed, config=config, rules=rules, signers=signers,
                                key_source=keys.source, identity=identity, run_id=run_id)
        signer_ids = {name: key_id(public) for name, public in
                      [(ENGINE, genesis.engine_key), *genesis.agent_keys.items()]}
        events: list | None = [] if keep_events else None
        recorder = MemoryRecorder(State(), signer_ids, events)
        recorder.emit(genesis)
        engine.process_seal(recorder, 0)
        return cls(recorder, events)

    @property
    def state(self) -> State:
        return self._rec.state

    @property
    def head_hash(self) -> bytes:
        return self._rec.prev_hash

    @property
    def next_turn(self) -> int:
        return self.state.sealed_turn + 1

    def step(self, inputs: Iterable[AgentInput | dict]) -> TurnMetrics:
        """Run the next turn with these inputs and return its metrics (BadInput as ``Run.step``)."""
        inputs = [coerce_input(i) for i in inputs]
        turn = self.next_turn
        check_inputs(self.state, turn, inputs)
        self._rec.start_turn(turn)
        engine.process_turn(self._rec, turn, inputs)
        return self.state.turns[-1]

    def close(self) -> None:
        """Nothing to release; present so a MemoryRun can stand wherever a Run is played."""


__all__ = ["MemoryRun", "MemoryRecorder"]
