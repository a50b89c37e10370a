"""Re-execution: feed a log's recorded inputs back through the engine, compare every hash.

``verify`` proves a log was not edited after it was written; re-execution proves
the engine wrote it. The recorded genesis is the run's first input: it is
copied into a fresh log in a temporary directory, the engine seals turn 0 from
it, and the twin is then stepped turn by turn with the recorded
``action_submitted`` inputs and their recorded signatures. Every event the
engine emits must hash exactly as the recorded one; the first that does not is
named.

The genesis is copied, not rebuilt with ``Run.create``: rebuilding re-encodes
it with the running library's schema and version label, so every log written
before a field was added to ``Rules`` or ``Config`` would "diverge" at seq 0
even where the engine reproduces it exactly.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from ..events import types as ev
from ..events.actions import AgentInput
from ..events.envelope import ENGINE, seal_envelope
from ..events.keys import Keystore, KeystoreError, SeedKeys, key_id, public_hex
from ..projections.reducers import apply_event
from ..projections.state import State
from . import engine
from .audit import decode_row
from .errors import BadInput, LedgerError
from .run import Run
from .store import EventRow, Store



@dataclass
class Divergence:
    seq: int
    turn: int
    kind: str | None  # the recorded event's kind
    got_kind: str | None  # the re-executed event's kind
    expected: str | None  # recorded hash
    got: str | None  # re-executed hash
    reason: str


@dataclass
class ReexecResult:
    ok: bool
    events: int  # events reproduced (all, or those before the divergence)
    turns: int  # turns after the genesis reproduced whole
    divergence: Divergence | None
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


# --- keys ------------------------------------------------------------------------


def get_key_source(genesis: ev.RunGenesis, keystore: str | Path | None) -> str | None:
    """Return the keystore directory to sign with (None: seed keys); raise when the keys cannot match."""
    if genesis.key_source == "seed":
        if public_hex(SeedKeys(genesis.seed).private_key(ENGINE)) != genesis.engine_key:
            raise LedgerError("the log claims seed-derived keys but its engine key is not derived from its seed")
        return None
    if genesis.key_source != "keystore":
        raise LedgerError(f"the log's key source {genesis.key_source!r} is not one simledger can re-execute")
    if keystore is None:
        raise LedgerError("this log was signed with keystore keys: re-execution needs --keystore DIR")
    require_keystore_matches(genesis, Keystore(keystore, create=False))
    return str(keystore)


def require_keystore_matches(genesis: ev.RunGenesis, keys: Keystore) -> None:
    """Raise unless the keystore holds every key the genesis names (never creating one)."""
    expected = {ENGINE: genesis.engine_key, **genesis.agent_keys}
    for owner, public in expected.items():
        try:
            found = public_hex(keys.private_key(owner))
        except KeystoreError as err:
            raise LedgerError(str(err)) from None
        if found != public:
            raise LedgerError(f"keystore key of {owner!r} is not the one in the log's genesis")


# --- the twin ------------------------------------------------------------------------


class SealRecorder:
    """Just enough of a Recorder (see ``ledger.engine.Recorder``) for the engine to seal turn 0."""

    def __init__(self, state: State, genesis_hash: bytes, engine_key_id: str) -> None:
        self.state, self._genesis_hash, self._signer = state, genesis_hash, engine_key_id
        self.sealed: tuple[Any, bytes] | None = None

    def emit(self, event: Any, *, signature: bytes | None = None) -> int:
        _header, digest = seal_envelope(event, seq=1, turn=0, prev_hash=self._genesis_hash, signer=self._signer)
        self.sealed = (event, digest)
        return 1

    def turn_hashes(self) -> list[bytes]:
        return [self._genesis_hash]


def compute_genesis_seal(genesis: ev.RunGenesis, genesis_hash: bytes) -> tuple[Any, bytes]:
    """Return (seal event, hash) the engine writes after this genesis."""
    state = apply_event(State(), genesis, 0, 0)
    recorder = SealRecorder(state, genesis_hash, key_id(genesis.engine_key))
    engine.process_seal(recorder, 0)
    return recorder.sealed


def create_twin(store: Store, genesis: ev.RunGenesis, directory: Path,
                keystore: str | None) -> tuple[Run | None, Divergence | None]:
    """Return a fresh run started from the log's own genesis, or the divergence of turn 0's seal."""
    recorded = store.select("seq <= 1", [])
    if len(recorded) < 2 or recorded[1].kind != "turn_sealed":
        raise LedgerError("the log has no sealed turn 0 (genesis and its seal)")
    seal, digest = compute_genesis_seal(genesis, bytes.fromhex(recorded[0].hash))
    if digest.hex() != recorded[1].hash:
        return None, Divergence(seq=1, turn=0, kind=recorded[1].kind, got_kind=ev.kind_of(seal),
                                expected=recorded[1].hash, got=digest.hex(),
                                reason="the engine seals the genesis differently")
    path = directory / "reexecuted.db"
    with Store(path, create=True) as twin_store:
        with twin_store.transaction():
            twin_store.insert_events(recorded)
        twin_store.set_meta("run_id", genesis.run_id)
    return Run.open(path, keystore=keystore), None


# --- stepping and comparing --------------------------------------------------------------


def recorded_input(row: EventRow) -> AgentInput:
    """Return the AgentInput an ``action_submitted`` row recorded, with its recorded signature.

    A custodial input goes in unsigned: the twin's keystore signs it for the agent
    as the server did (Ed25519 is deterministic), marking it custodial again.
    """
    event = decode_row(row)
    signature = None if event.custodial is True else row.signature
    return AgentInput(agent_id=event.agent, action=event.action, thinking=event.thinking, speech=event.speech,
                      thinking_units=event.thinking_units, output_units=event.output_units, signature=signature)


def compare_rows(recorded: list[EventRow], produced: list[EventRow]) -> Divergence | None:
    """Return the first event of a turn whose recorded and re-executed hashes differ."""
    for rec, got in itertools.zip_longest(recorded, produced):
        if rec is not None and got is not None and rec.hash == got.hash:
            continue
        ref = rec if rec is not None else got
        reason = ("the engine emits an event the log lacks" if rec is None
                  else "the engine stops short of this recorded event" if got is None
                  else "the engine produces a different event here")
        return Divergence(seq=ref.seq, turn=ref.turn, kind=rec and rec.kind,
                          got_kind=got and got.kind, expected=rec and rec.hash, got=got and got.hash,
                          reason=reason)
    return None


def find_bad_input(twin: Run, turn: int, rows: list[tuple]) -> Divergence:
    """Return the divergence at the first recorded input the run refuses to accept."""
    for row in rows:
        try:
            twin.check_inputs(turn, [recorded_input(row)])
        except BadInput as err:
            return Divergence(seq=row.seq, turn=turn, kind=row.kind, got_kind=None,
                              expected=row.hash, got=None, reason=f"recorded input refused: {err}")
    first = rows[0]
    return Divergence(seq=first.seq, turn=turn, kind=first.kind, got_kind=None, expected=first.hash,
                      got=None, reason="the turn's recorded inputs were refused")


class TurnDriver(Protocol):
    """Where a re-executed turn's inputs come from (and the model calls that produced them)."""

    def __call__(self, twin: Run, turn: int, recorded: list[EventRow]) -> tuple[list[AgentInput], list[Any], Any]:
        """Return (inputs, model calls, write_extra) for ``turn`` of the twin; LedgerError when it cannot."""


def recorded_turn(twin: Run, turn: int, recorded: list[EventRow]) -> tuple[list[AgentInput], list[Any], Any]:
    """Return the turn's recorded inputs and recorded model calls, as they stand in the log."""
    inputs = [recorded_input(row) for row in recorded if row.kind == "action_submitted"]
    calls = [decode_row(row) for row in recorded if row.kind == "model_called"]
    return inputs, calls, None


def replay_turn(twin: Run, turn: int, recorded: list[EventRow], driver: TurnDriver = recorded_turn) -> Divergence | None:
    """Step the twin with a recorded turn's inputs; return the first divergence in that turn."""
    first = recorded[0]
    if turn != twin.next_turn:
        return Divergence(seq=first.seq, turn=turn, kind=first.kind, got_kind=None,
                          expected=first.hash, got=None, reason=f"the log jumps to turn {turn}")
    start = twin.store.head()[0] + 1
    try:
        inputs, calls, write_extra = driver(twin, turn, recorded)
    except LedgerError as err:
        return Divergence(seq=first.seq, turn=turn, kind=first.kind, got_kind=None,
                          expected=first.hash, got=None, reason=str(err))
    try:
        twin.step(inputs, calls=calls, write_extra=write_extra)
    except BadInput:
        return find_bad_input(twin, turn, [row for row in recorded if row.kind == "action_submitted"])
    return compare_rows(recorded, list(twin.store.rows(start_seq=start)))


def compare_log(store: Store, twin: Run, driver: TurnDriver = recorded_turn) -> tuple[int, int, Divergence | None]:
    """Walk the log's turns after turn 0 against the twin; return (events, turns, first divergence)."""
    events, turns = 2, 0
    for turn, group in itertools.groupby(store.rows(start_seq=2), key=lambda row: row.turn):
        recorded = list(group)
        if divergence := replay_turn(twin, turn, recorded, driver):
            return divergence.seq, turns, divergence  # every event before it was reproduced
        events += len(recorded)
        turns += 1
    return events, turns, None


def reexecute(path: str | Path, keystore: str | Path | None = None,
              make_driver: Callable[[Store, ev.RunGenesis], TurnDriver] | None = None) -> ReexecResult:
    """Return whether re-running the log's inputs reproduces every event hash, else the first divergence.

    ``make_driver(store, genesis)`` may supply the inputs instead of the log (an
    orchestrator re-deriving them from recorded model answers); by default each
    turn gets its recorded inputs and model calls.
    """
    with Store(path) as store:
        genesis = store.genesis()
        keys_dir = get_key_source(genesis, keystore)
        driver = make_driver(store, genesis) if make_driver is not None else recorded_turn
        with tempfile.TemporaryDirectory(prefix="simledger-reexec-") as tmp:
            twin, divergence = create_twin(store, genesis, Path(tmp), keys_dir)
            events, turns = 1, 0  # only the genesis (an input) precedes a bad turn-0 seal
            if twin is not None:
                try:
                    events, turns, divergence = compare_log(store, twin, driver)
                finally:
                    twin.close()
    if divergence is None:
        return ReexecResult(ok=True, events=events, turns=turns, divergence=None,
                            message=f"re-executed {turns} turns: all {events} event hashes reproduced")
    d = divergence
    message = (f"re-execution diverges at seq {d.seq} (turn {d.turn}, {d.kind or d.got_kind}): {d.reason}; "
               f"expected {short(d.expected)}, got {short(d.got)}")
    return ReexecResult(ok=False, events=events, turns=turns, divergence=divergence, message=message)


def short(hex_hash: str | None) -> str:
    return hex_hash[:16] if hex_hash else "nothing"
