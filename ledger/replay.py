"""Fold a log into state, from genesis or from a verified checkpoint.

A checkpoint is derived data: it is used only when its state digest equals the
digest in the seal of its turn, read from the log itself; otherwise it is
ignored and the fold starts earlier. Replay to turn N reads nothing after N.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..events.envelope import PayloadError, decode_payload
from ..projections.reducers import fold
from ..projections.state import State, snapshot_state, state_digest
from .errors import ChainError, LedgerError
from .store import Store


FOLD_COLUMNS = ("seq", "turn", "kind", "payload_version", "payload")


def positioned_events(store: Store, **range_kwargs) -> Iterator[tuple[int, int, Any]]:
    """Yield (seq, turn, event) from the store, decoding (and upcasting) payloads.

    A gap in the seqs or a turn that is not a number (a damaged row the range
    query skipped or cannot place) is a ChainError, never a silently shorter fold.
    """
    expected = range_kwargs.get("start_seq", 0)
    for seq, turn, kind, pv, payload in store.rows(columns=FOLD_COLUMNS, **range_kwargs):
        if seq != expected or not isinstance(turn, int):
            raise ChainError("this event is missing or has no turn (run `simledger verify`)", seq=expected)
        expected += 1
        try:
            if not isinstance(payload, bytes):
                raise PayloadError("payload is not a blob")
            yield seq, turn, decode_payload(kind, pv, payload)
        except (PayloadError, TypeError) as err:
            raise ChainError(str(err), seq=seq, turn=turn, kind=kind) from None


def last_turn(store: Store) -> int:
    return store.head()[2]


def best_checkpoint(store: Store, until_turn: int | None) -> State | None:
    """Return the newest checkpoint at or before ``until_turn`` whose digest its seal confirms."""
    # Blobs are read one at a time, newest first: a late checkpoint is megabytes.
    sql = "SELECT turn, seq FROM checkpoints"
    args: list = []
    if until_turn is not None:
        sql += " WHERE turn <= ?"
        args.append(until_turn)
    try:
        rows = store.conn.execute(sql + " ORDER BY turn DESC", args).fetchall()
    except Exception:
        return None
    for turn, seq in rows:
        seal_rows = store.select("seq = ? AND kind = 'turn_sealed' AND turn = ?", [seq, turn])
        if not seal_rows:
            continue
        try:
            blob = store.conn.execute("SELECT state FROM checkpoints WHERE turn = ?", [turn]).fetchone()[0]
            state = snapshot_state(blob)
        except Exception:
            continue
        seal = next(positioned_events(store, start_seq=seq, end_seq=seq))[2]
        if state.sealed_turn == turn and state_digest(state) == seal.state_digest:
            return state
    return None


def load_state(store: Store, until_turn: int | None = None, *, use_checkpoints: bool = True) -> State:
    """Return the projection of the log up to the end of ``until_turn`` (None: the whole log)."""
    if until_turn is not None:
        last = last_turn(store)
        if until_turn > last:
            raise LedgerError(f"turn {until_turn} is beyond the log (last turn {last})")
        if until_turn < 0:
            raise LedgerError("turn must be >= 0")
    state = best_checkpoint(store, until_turn) if use_checkpoints else None
    start = state.events if state is not None else 0
    return fold(positioned_events(store, start_seq=start, until_turn=until_turn), state)
