"""Verify a run.db end to end: every link, hash, readable copy, signature and seal.

One streaming pass in seq order keeps only the current turn's event hashes in
memory. For each event it checks, in this order:

* the row is well formed (types, hex, sizes) and its format version is readable;
* seq follows the previous seq (the log starts at 0 with a ``run_genesis``);
* its turn is the current turn, or the next one once the current turn is sealed;
* ``prev_hash`` is the previous event's hash (32 zero bytes for seq 0);
* ``hash`` is the SHA-256 of the event's hashed bytes, recomputed from the columns;
* the payload decodes as the kind it claims, and every readable copy (``kind``,
  ``actor``, ``contract_id``, ``payload_json``) says what the payload says;
* the signer is the key the genesis names for this event (the engine's key, or
  the acting agent's for ``action_submitted``) and the signature verifies;
* a ``turn_sealed`` commits to exactly the turn's events (first seq, count and
  RFC 9162 Merkle root of their hashes).

Only keys recorded in the genesis are trusted. Signature checks are the
expensive part; with ``workers > 1`` they run in a process pool while the chain
walk stays in this process, and the first failure reported is still the lowest
bad seq.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..events import merkle
from ..events import types as ev
from ..events.envelope import (
    FORMAT_VERSION, JSON_ENCODER, ZERO_HASH, Envelope, PayloadError, decode_payload, envelope_hash,
    get_written_version, payload_json,
)
from ..events.keys import input_message, key_id, verify_signature
from .blobs import check_blobs
from .errors import ChainError, LedgerError
from .store import MAX_COLUMN_BYTES, EventRow, Store, envelope_from_row

SIGNATURE_BYTES = 64
HASH_BYTES = 32
CHUNK_EVENTS = 512
BATCH_ROWS = 2000


# --- results -------------------------------------------------------------------


class VerifyFailure(msgspec.Struct, frozen=True, kw_only=True):
    """The first bad event: where it is and what is wrong with it."""

    seq: int | None
    turn: int | None
    kind: str | None
    reason: str

    def __getitem__(self, name: str) -> Any:
        """Allow ``failure["seq"]`` as well as ``failure.seq`` (it is a record, not a mapping)."""
        return getattr(self, name)


class VerifyResult(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of :func:`verify_log`.

    On success ``events``/``turns``/``head_*`` describe the whole log. On failure
    they describe the verified prefix before the first bad event. ``turns``
    counts the turns played after the genesis (turn 0): 40 for a 40-turn run.
    """

    ok: bool
    events: int
    turns: int
    head_seq: int
    head_hash: str
    error: VerifyFailure | None = None

    @property
    def message(self) -> str:
        """Return a one-line summary for people."""
        if self.ok:
            return (f"OK: {self.events} events in {self.turns} turns verified; "
                    f"head seq {self.head_seq} hash {self.head_hash}")
        e = self.error
        where = f"seq {e.seq}" if e.seq is not None else "log"
        detail = ", ".join(str(x) for x in (f"turn {e.turn}" if e.turn is not None else None, e.kind) if x)
        return f"FAILED at {where}" + (f" ({detail})" if detail else "") + f": {e.reason}"


# --- genesis keys ----------------------------------------------------------------


@dataclass
class GenesisKeys:
    """The only keys verification trusts: those the run's genesis records."""

    run_id: str
    engine_id: str
    public: list[bytes] = field(default_factory=list)          # index 0 is the engine key
    objects: list[Ed25519PublicKey] = field(default_factory=list)
    agents: dict[str, tuple[str, int]] = field(default_factory=dict)  # agent -> (key id, index)


def read_genesis_keys(genesis: ev.RunGenesis) -> GenesisKeys:
    """Return the trusted keys of a genesis; raise ValueError when missing or malformed."""
    if not genesis.engine_key:
        raise ValueError("genesis records no engine key")
    if not genesis.agent_keys:
        raise ValueError("genesis records no agent keys")
    if missing := [a for a in genesis.agents if a not in genesis.agent_keys]:
        raise ValueError(f"genesis records no key for agent(s) {', '.join(missing[:5])}")
    if extra := [a for a in genesis.agent_keys if a not in genesis.agents]:
        raise ValueError(f"genesis records keys for non-agent(s) {', '.join(extra[:5])}")
    keys = GenesisKeys(run_id=genesis.run_id, engine_id=get_key_id(genesis.engine_key, "engine"))
    add_public_key(keys, genesis.engine_key, "engine")
    for agent, public in genesis.agent_keys.items():
        keys.agents[agent] = (get_key_id(public, agent), len(keys.public))
        add_public_key(keys, public, agent)
    return keys


def get_key_id(public_hex: Any, owner: str) -> str:
    """Return the key id of a genesis public key, refusing anything but 32 bytes of hex."""
    if not isinstance(public_hex, str) or len(public_hex) != 2 * HASH_BYTES:
        raise ValueError(f"genesis key of {owner} is not 64 hex characters")
    try:
        return key_id(public_hex)
    except ValueError:
        raise ValueError(f"genesis key of {owner} is not hex") from None


def add_public_key(keys: GenesisKeys, public_hex: str, owner: str) -> None:
    raw = bytes.fromhex(public_hex)
    try:
        keys.objects.append(Ed25519PublicKey.from_public_bytes(raw))
    except ValueError:
        raise ValueError(f"genesis key of {owner} is not an Ed25519 public key") from None
    keys.public.append(raw)


# --- the chain walk --------------------------------------------------------------


class ChainWalk:
    """The sequential checks: one event at a time, in seq order, memory of one turn."""

    def __init__(self) -> None:
        self.next_seq = 0
        self.prev_hash = ZERO_HASH
        self.turn = -1
        self.sealed = True
        self.turn_first_seq = 0
        self.turn_hashes: list[bytes] = []
        self.keys: GenesisKeys | None = None

    def check_row(self, row: EventRow) -> tuple[int, bytes, bytes]:
        """Check one row; return its signature check (key index, signature, message)."""
        self.check_seq(row.seq)
        env = self.parse_row(row)
        self.check_turn(env)
        self.check_link(env)
        self.check_hash(env, row)
        event = self.decode(env)
        self.check_copies(env, event, row.payload_json)
        self.check_genesis(env, event)
        signature_check = self.get_signature_check(env, event)
        self.process_turn_membership(env, event)
        self.next_seq, self.prev_hash = env.seq + 1, env.hash
        return signature_check

    def fail(self, env: Envelope, reason: str) -> ChainError:
        return ChainError(reason, seq=env.seq, turn=env.turn, kind=env.kind)

    def parse_row(self, row: EventRow) -> Envelope:
        """Verify every cell has the type and size the format requires."""
        seq = row.seq
        turn = row.turn if isinstance(row.turn, int) else None
        kind = row.kind if isinstance(row.kind, str) and len(row.kind) <= 64 else None
        try:
            env = envelope_from_row(row)
            # Verify the readable JSON copy is text of sane size (it is checked against the payload later).
            if not isinstance(row.payload_json, str):
                raise ValueError(f"column payload_json holds {type(row.payload_json).__name__}, expected str")
            if len(row.payload_json) > 4 * MAX_COLUMN_BYTES:
                raise ValueError("payload_json is oversized")
        except ValueError as err:
            raise ChainError(f"malformed row: {err}", seq=seq, turn=turn, kind=kind) from None
        if env.format_version != FORMAT_VERSION:
            raise self.fail(env, f"format version {env.format_version}; this log format is version {FORMAT_VERSION}")
        return env

    def check_seq(self, seq: Any) -> None:
        """Verify seqs are contiguous from 0 (a gap names the missing seq)."""
        if seq == self.next_seq and isinstance(seq, int):
            return
        turn = self.turn if self.turn >= 0 else None
        if isinstance(seq, int) and seq > self.next_seq:
            raise ChainError(f"event seq {self.next_seq} is missing (the next stored event is seq {seq})",
                             seq=self.next_seq, turn=turn)
        raise ChainError(f"seq {seq!r} out of order: expected {self.next_seq}", seq=self.next_seq, turn=turn)

    def check_turn(self, env: Envelope) -> None:
        """Verify turns advance one at a time from 0, each closed by a seal before the next begins."""
        if env.turn < 0:
            raise self.fail(env, "turn is negative")
        if env.turn == self.turn:
            if self.sealed:
                raise self.fail(env, f"event after the seal of turn {self.turn}")
            return
        if env.turn < self.turn:
            raise self.fail(env, f"turn decreases from {self.turn} to {env.turn}")
        if not self.sealed:
            raise self.fail(env, f"turn {self.turn} ended without a turn_sealed event")
        if env.turn != self.turn + 1:
            expected = "turn 0" if self.turn < 0 else f"turn {self.turn + 1}"
            raise self.fail(env, f"turn jumps to {env.turn}; expected {expected}")
        self.turn, self.sealed, self.turn_first_seq = env.turn, False, env.seq
        self.turn_hashes = []

    def check_link(self, env: Envelope) -> None:
        """Verify prev_hash is the previous event's hash."""
        if env.prev_hash != self.prev_hash:
            what = "32 zero bytes at seq 0" if env.seq == 0 else f"the hash of seq {env.seq - 1}"
            raise self.fail(env, f"prev_hash is not {what}")

    def check_hash(self, env: Envelope, row: EventRow) -> None:
        """Verify the stored hash is the SHA-256 of the event's hashed bytes."""
        if envelope_hash(env) != env.hash:
            raise self.fail(env, "hash does not match the event's bytes" + describe_hash_mismatch(env, row.payload_json))

    def decode(self, env: Envelope) -> Any:
        """Verify the payload decodes as the kind the envelope claims."""
        try:
            return decode_payload(env.kind, env.payload_version, env.payload)
        except PayloadError as err:
            raise self.fail(env, str(err)) from None

    def check_copies(self, env: Envelope, event: Any, json_copy: str) -> None:
        """Verify each readable column says what the hashed payload says."""
        if mismatch := find_copy_mismatch(env, event, json_copy):
            raise self.fail(env, mismatch)

    def check_genesis(self, env: Envelope, event: Any) -> None:
        """Verify seq 0, and only seq 0, is a genesis, with usable keys (kept: the only keys trusted)."""
        is_genesis = isinstance(event, ev.RunGenesis)
        if env.seq != 0:
            if is_genesis:
                raise self.fail(env, "a second run_genesis")
            return
        if not is_genesis:
            raise self.fail(env, "the first event is not a run_genesis")
        try:
            self.keys = read_genesis_keys(event)
        except ValueError as err:
            raise self.fail(env, str(err)) from None

    def get_signature_check(self, env: Envelope, event: Any) -> tuple[int, bytes, bytes]:
        """Verify the signer is the key the genesis names for this event; return what to verify."""
        keys = self.keys
        if len(env.signature) != SIGNATURE_BYTES:
            raise self.fail(env, f"signature is {len(env.signature)} bytes, not {SIGNATURE_BYTES}")
        if isinstance(event, ev.ActionSubmitted):
            agent = keys.agents.get(event.agent)
            if agent is None:
                raise self.fail(env, f"input from {event.agent!r}, who has no key in the genesis")
            if env.signer != agent[0]:
                raise self.fail(env, f"signed by key {env.signer!r}, not {event.agent}'s key {agent[0]}")
            return agent[1], env.signature, input_message(keys.run_id, env.turn, env.payload)
        if env.signer != keys.engine_id:
            raise self.fail(env, f"signed by key {env.signer!r}, not the engine key {keys.engine_id}")
        return 0, env.signature, env.hash

    def process_turn_membership(self, env: Envelope, event: Any) -> None:
        """Add the event to its turn, or check the turn's seal against the events it closes."""
        if not isinstance(event, ev.TurnSealed):
            self.turn_hashes.append(env.hash)
            return
        # Verify the seal names its own turn and commits to exactly this turn's events.
        if event.turn != env.turn:
            raise self.fail(env, f"seal says turn {event.turn}, its row is in turn {env.turn}")
        if event.first_seq != self.turn_first_seq:
            raise self.fail(env, f"seal says first_seq {event.first_seq}; the turn starts at seq {self.turn_first_seq}")
        if event.event_count != len(self.turn_hashes):
            raise self.fail(env, f"seal says {event.event_count} events; the turn has {len(self.turn_hashes)}")
        if event.merkle_root != merkle.merkle_root(self.turn_hashes).hex():
            raise self.fail(env, "seal's merkle_root is not the root of the turn's event hashes")
        self.sealed = True
        self.turn_hashes = []

    def check_end(self) -> None:
        """Verify the log is not empty and its last turn is sealed."""
        if self.next_seq == 0:
            raise ChainError("the log has no events", seq=0)
        if not self.sealed:
            raise ChainError(f"turn {self.turn} is incomplete: no turn_sealed after seq {self.next_seq - 1}",
                             seq=self.next_seq, turn=self.turn)


def describe_hash_mismatch(env: Envelope, json_copy: Any) -> str:
    """Return a hint naming the readable column that disagrees with the payload, if one does."""
    try:
        event = decode_payload(env.kind, env.payload_version, env.payload)
    except PayloadError as err:
        return f" ({err})"
    except Exception:  # noqa: BLE001 - a hint must never hide the failure it explains
        return ""
    mismatch = find_copy_mismatch(env, event, json_copy)
    return f" ({mismatch})" if mismatch else ""


def find_copy_mismatch(env: Envelope, event: Any, json_copy: Any) -> str | None:
    """Return what differs between the readable columns and the payload, or None."""
    tag = ev.kind_of(event)
    if env.kind != tag:
        return f"kind column says {env.kind!r}, the payload is a {tag!r}"
    actor = ev.actor_of(event)
    if env.actor != actor:
        return f"actor column says {env.actor!r}, the payload's actor is {actor!r}"
    contract = ev.contract_of(event)
    if env.contract_id != contract:
        return f"contract_id column says {env.contract_id!r}, the payload's is {contract!r}"
    if (written := get_written_version(event, env.payload_version)) != env.payload_version:
        return f"payload version {env.payload_version}, but the payload's fields are those of version {written}"
    if json_copy != payload_json(event) and json_copy != stored_payload_json(env.payload):
        return "payload_json column differs from the hashed payload"
    return None


def stored_payload_json(payload: bytes) -> str | None:
    """Return the JSON copy of the payload exactly as stored, without fields a later schema added.

    A later library version may add fields with defaults; re-encoding the typed
    event then shows them, while the copy written with the log does not.
    """
    try:
        return JSON_ENCODER.encode(msgspec.msgpack.decode(payload)).decode()
    except (msgspec.DecodeError, msgspec.EncodeError, TypeError, ValueError):
        return None


# --- signatures --------------------------------------------------------------------

_WORKER_KEYS: list[Ed25519PublicKey] = []


def _init_worker(public: list[bytes]) -> None:
    """Load the genesis public keys once per worker process."""
    _WORKER_KEYS[:] = [Ed25519PublicKey.from_public_bytes(raw) for raw in public]


def first_bad_signature(key_indices: bytes, signatures: bytes, messages: bytes) -> int | None:
    """Return the index of the first signature in a chunk that does not verify (worker side)."""
    indices = array("H")
    indices.frombytes(key_indices)
    keys = _WORKER_KEYS
    for i, index in enumerate(indices):
        sig = signatures[i * SIGNATURE_BYTES:(i + 1) * SIGNATURE_BYTES]
        if not verify_signature(keys[index], sig, messages[i * HASH_BYTES:(i + 1) * HASH_BYTES]):
            return i
    return None


class InlineSignatures:
    """Signature checks in this process, one at a time (``workers=1``)."""

    def __init__(self, keys: GenesisKeys) -> None:
        self.objects = keys.objects

    def add(self, seq: int, check: tuple[int, bytes, bytes]) -> int | None:
        """Verify one signature now; return ``seq`` when it fails."""
        index, signature, message = check
        return None if verify_signature(self.objects[index], signature, message) else seq

    def finish(self) -> int | None:
        return None

    def close(self) -> None:
        pass


class SignaturePool:
    """Signature checks in a process pool, in chunks of consecutive seqs, results read in order."""

    def __init__(self, workers: int, keys: GenesisKeys) -> None:
        self.executor = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(keys.public,))
        self.max_pending = 4 * workers
        self.pending: deque[tuple[int, Future]] = deque()
        self._reset(0)

    def _reset(self, first_seq: int) -> None:
        self.first_seq, self.indices, self.signatures, self.messages = first_seq, array("H"), bytearray(), bytearray()

    def add(self, seq: int, check: tuple[int, bytes, bytes]) -> int | None:
        """Queue one check; return the seq of a failed signature when one is known."""
        if not self.indices:
            self.first_seq = seq
        index, signature, message = check
        self.indices.append(index)
        self.signatures += signature
        self.messages += message
        if len(self.indices) >= CHUNK_EVENTS:
            self._submit()
            if len(self.pending) > self.max_pending:
                return self._collect_oldest()
        return None

    def _submit(self) -> None:
        future = self.executor.submit(first_bad_signature, self.indices.tobytes(), bytes(self.signatures),
                                      bytes(self.messages))
        self.pending.append((self.first_seq, future))
        self._reset(self.first_seq + len(self.indices))

    def _collect_oldest(self) -> int | None:
        first_seq, future = self.pending.popleft()
        bad = future.result()
        return None if bad is None else first_seq + bad

    def finish(self) -> int | None:
        """Check everything queued; return the lowest seq whose signature fails, or None."""
        if self.indices:
            self._submit()
        while self.pending:
            if (bad := self._collect_oldest()) is not None:
                return bad
        return None

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


# --- entry points ------------------------------------------------------------------


def verify_log(path: str | Path, *, workers: int = 1) -> VerifyResult:
    """Return whether the log at ``path`` verifies, and if not its first bad event.

    Raises NotALog / UnsupportedFormat for a file that is not a simledger log.
    """
    with Store(path) as store:
        return verify_store(store, workers=workers)


def require_verified(path: str | Path, refusal: str) -> VerifyResult:
    """Verify ``path``; raise ChainError("<refusal>: <first bad event>") when it does not verify."""
    result = verify_log(path)
    if not result.ok:
        raise ChainError(f"{refusal}: {result.message}")
    return result


def verify_store(store: Store, *, workers: int = 1) -> VerifyResult:
    """Return the verification result of an open store (see :func:`verify_log`)."""
    walk = ChainWalk()
    signatures: InlineSignatures | SignaturePool | None = None
    failure: ChainError | None = None
    bad_signature: int | None = None
    try:
        try:
            for row in stream_rows(store):
                check = check_row_safely(walk, row)
                signatures = signatures or make_signature_checker(workers, walk.keys)
                bad_signature = signatures.add(walk.next_seq - 1, check)
                if bad_signature is not None:
                    break
            else:
                walk.check_end()
                check_no_stray_rows(store, walk.next_seq)
                check_blobs(store.conn)
        except ChainError as err:
            failure = err
        except UnreadableRow as err:
            failure = unreadable_failure(walk, err)
        except sqlite3.DatabaseError as err:  # a damaged file: report how far the chain verified
            failure = ChainError(f"the log cannot be read from here on ({err})", seq=walk.next_seq)
        # Signatures still queued belong to seqs before the chain failure: one of them may fail first.
        if signatures is not None and bad_signature is None:
            bad_signature = signatures.finish()
    finally:
        if signatures is not None:
            signatures.close()
    if bad_signature is not None:
        failure = signature_failure(store, bad_signature)
    if failure is not None:
        return failed_result(store, failure)
    return check_read_models(store, VerifyResult(ok=True, events=walk.next_seq, turns=max(walk.turn, 0),
                                                 head_seq=walk.next_seq - 1, head_hash=walk.prev_hash.hex()))


def check_read_models(store: Store, result: VerifyResult) -> VerifyResult:
    """Return ``result`` of a verified chain, failed when a stored per-turn table is not the fold of the log."""
    from .readmodels import check_turn_tables

    turn = None
    try:
        check_turn_tables(store, batch=BATCH_ROWS)
    except ChainError as err:
        reason, turn = err.reason, err.turn
    except Exception as err:  # noqa: BLE001 - a hostile table or an unfoldable log is a finding, not a crash
        reason = f"the per-turn read models cannot be checked: {type(err).__name__}: {err}"
    else:
        return result
    return msgspec.structs.replace(result, ok=False, error=VerifyFailure(seq=None, turn=turn, kind=None, reason=reason))


def check_no_stray_rows(store: Store, walked: int) -> None:
    """Verify the events table holds no row besides the chain just walked (seq 0 .. walked - 1).

    The walk reads rows in seq order. In a table rebuilt without seq as its INTEGER
    PRIMARY KEY, a row whose seq is NULL, fractional or repeated would never be read,
    yet every other reader would show it.
    """
    total = store.count()
    if total == walked:
        return
    outside = store.conn.execute(
        "SELECT seq, turn, substr(kind, 1, 64) FROM events WHERE typeof(seq) != 'integer' OR seq < 0 OR seq >= ?"
        " ORDER BY seq LIMIT 1", [walked]).fetchone()
    if outside is not None:
        seq, turn, kind = outside
        raise ChainError(f"a row with seq {seq!r} is not part of the chain of {walked} events",
                         turn=turn if isinstance(turn, int) else None, kind=kind if isinstance(kind, str) else None)
    seq, count = store.conn.execute(
        "SELECT seq, COUNT(*) FROM events GROUP BY seq HAVING COUNT(*) > 1 ORDER BY seq LIMIT 1").fetchone()
    raise ChainError(f"{count} rows claim this seq; the chain has one", seq=seq)


def check_row_safely(walk: ChainWalk, row: EventRow) -> tuple[int, bytes, bytes]:
    """Run the chain checks on one row; any unexpected exception becomes a ChainError naming the seq."""
    try:
        return walk.check_row(row)
    except ChainError:
        raise
    except Exception as err:  # noqa: BLE001 - a verifier reports, it does not crash
        raise ChainError(f"could not check this event: {type(err).__name__}: {err}", seq=walk.next_seq) from None


def make_signature_checker(workers: int, keys: GenesisKeys) -> "InlineSignatures | SignaturePool":
    return SignaturePool(workers, keys) if workers > 1 else InlineSignatures(keys)


def unreadable_failure(walk: ChainWalk, err: "UnreadableRow") -> ChainError:
    """Return the failure for a row SQLite cannot read (or for the gap before it)."""
    if err.seq > walk.next_seq:
        return ChainError(f"event seq {walk.next_seq} is missing (the next stored event is seq {err.seq})",
                          seq=walk.next_seq, turn=walk.turn if walk.turn >= 0 else None)
    return ChainError(f"unreadable row: {err.reason}", seq=err.seq)


def signature_failure(store: Store, seq: int) -> ChainError:
    row = store.select("seq = ?", [seq])[0]
    return ChainError("signature does not verify against the signer's genesis key", seq=seq, turn=row.turn, kind=row.kind)


def failed_result(store: Store, failure: ChainError) -> VerifyResult:
    """Return the failed result: the error, and the verified prefix that precedes it."""
    seq = failure.seq if isinstance(failure.seq, int) else 0
    events, turns, head_seq, head_hash = seq, 0, seq - 1, ZERO_HASH.hex()
    try:
        prev = store.select("seq = ?", [seq - 1]) if seq > 0 else []
    except sqlite3.DatabaseError:  # a damaged file: the failure still stands, its prefix is unknown
        prev = []
    if prev and isinstance(prev[0].turn, int) and isinstance(prev[0].hash, str):
        last = prev[0]
        head_hash, turns = last.hash, last.turn if last.kind == "turn_sealed" else max(last.turn - 1, 0)
    error = VerifyFailure(seq=failure.seq, turn=failure.turn, kind=failure.kind, reason=failure.reason)
    return VerifyResult(ok=False, events=events, turns=turns, head_seq=head_seq, head_hash=head_hash, error=error)


class UnreadableRow(Exception):
    """Raised when SQLite cannot hand back a row (e.g. text that is not UTF-8)."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq, self.reason = seq, reason


def stream_rows(store: Store, batch: int | None = None) -> Iterator[EventRow]:
    """Yield event rows in seq order in bounded batches; locate a row SQLite cannot read."""
    batch = batch or BATCH_ROWS
    seq = -(2**63)
    while True:
        try:
            chunk = store.select("seq >= ?", [seq], limit=batch)
        except sqlite3.Error:
            chunk = []
            for row in read_rows_one_by_one(store, seq, batch):
                chunk.append(row)
                yield row
        else:
            yield from chunk
        if len(chunk) < batch:
            return
        seq = chunk[-1].seq + 1


def read_rows_one_by_one(store: Store, start: int, batch: int) -> Iterator[EventRow]:
    """Yield a batch row by row, raising UnreadableRow at the first row SQLite cannot decode.

    Each row is looked up by its seq (the table's rowid), so a damaged page elsewhere,
    in an index say, does not hide how far the chain can be read.
    """
    first = max(start, 0)
    for seq in range(first, first + batch):
        try:
            rows = store.select("seq = ?", [seq])
        except sqlite3.Error as err:
            raise UnreadableRow(seq, str(err)) from None
        if not rows:
            return
        yield from rows


# --- state digests -----------------------------------------------------------------


def verify_state_digests(path: str | Path) -> VerifyResult:
    """Return whether folding the log reproduces every seal's state digest.

    A separate, slower check than :func:`verify_log` (it runs the reducers);
    run it on a log that already verifies.
    """
    from ..projections.reducers import apply_event
    from ..projections.state import State, state_digest
    from .replay import positioned_events

    with Store(path) as store:
        state, seq, last_hash = State(), -1, ZERO_HASH.hex()
        try:
            for seq, turn, event in positioned_events(store):
                if isinstance(event, ev.TurnSealed) and state_digest(state) != event.state_digest:
                    raise ChainError("the fold of the events before this seal does not give its state_digest",
                                     seq=seq, turn=turn, kind="turn_sealed")
                apply_event(state, event, seq, turn)
        except ChainError as err:
            return failed_result(store, err)
        except Exception as err:  # noqa: BLE001 - a reducer crash is a finding, reported by seq
            return failed_result(store, ChainError(f"the fold fails here: {type(err).__name__}: {err}", seq=seq + 1))
        if seq >= 0:
            last_hash = store.head()[1].hex()
        return VerifyResult(ok=True, events=seq + 1, turns=state.sealed_turn if seq >= 0 else 0,
                            head_seq=seq, head_hash=last_hash)
