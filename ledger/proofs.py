"""Merkle proofs over a stored log: streaming roots, consistency proofs, per-turn inclusion proofs.

The RFC 9162 arithmetic itself is ``events.merkle`` (pure, over lists of leaves);
this module feeds it from the store. Roots and consistency proofs stream the
event hashes (memory O(log n)), for signed heads (``ledger.head``); inclusion
proofs place one event in the tree its turn's seal commits to (``ledger.audit``,
the verifier's tests).
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from ..events import merkle
from ..events import types as ev
from ..events.envelope import PayloadError, decode_payload, envelope_hash
from .errors import ChainError, LedgerError
from .store import EventRow, Store, envelope_from_row

HEX_HASH = re.compile(r"^[0-9a-f]{64}$")
HASH_BATCH = 50_000  # hashes read per query while streaming a root


# --- streaming roots and consistency proofs (signed heads) ---------------------------------


def iter_event_hashes(store: Store, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Yield the stored hashes of events ``start`` .. ``end - 1`` in seq order; raise on a gap or bad cell."""
    expected = start
    last = None if end is None else end - 1
    for seq, hash_hex in store.rows(start_seq=start, end_seq=last, batch=HASH_BATCH, columns=("seq", "hash")):
        if seq != expected:
            raise LedgerError(f"event seq {expected} is missing; run `simledger verify` on this log")
        if not isinstance(hash_hex, str) or not HEX_HASH.match(hash_hex):
            raise LedgerError(f"seq {seq}: the hash column is not 64 hex characters; run `simledger verify`")
        expected += 1
        yield bytes.fromhex(hash_hex)
    if end is not None and expected != end:
        raise LedgerError(f"event seq {expected} is missing; run `simledger verify` on this log")


def compute_root(hashes: Iterable[bytes]) -> tuple[bytes, int]:
    """Return (RFC 9162 Merkle root, leaf count) of a stream of leaves, in memory O(log n)."""
    stack: list[tuple[int, bytes]] = []  # perfect subtrees (size, hash), sizes strictly decreasing
    count = 0
    for leaf in hashes:
        size, node = 1, merkle.leaf_hash(leaf)
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, node = size + left_size, merkle.node_hash(left, node)
        stack.append((size, node))
        count += 1
    if not stack:
        return merkle.EMPTY_ROOT, 0
    node = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        node = merkle.node_hash(left, node)
    return node, count


def range_root(store: Store, start: int, end: int) -> bytes:
    """Return the Merkle root of the events ``start`` .. ``end - 1``."""
    return compute_root(iter_event_hashes(store, start, end))[0]


def compute_consistency_proof(store: Store, old_size: int, new_size: int) -> list[bytes]:
    """Return the RFC 9162 consistency proof from ``old_size`` to ``new_size`` events, streaming the hashes.

    The same proof as ``events.merkle.consistency_proof`` over all leaves, built
    from subtree roots read range by range so memory stays O(log n).
    """
    if not 0 < old_size <= new_size:
        raise ValueError(f"old size {old_size} not within 1..{new_size}")

    def subproof(m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [range_root(store, start, end)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return subproof(m, start, start + k, complete) + [range_root(store, start + k, end)]
        return subproof(m - k, start + k, end, False) + [range_root(store, start, start + k)]

    return subproof(old_size, 0, new_size, True)


# --- inclusion proofs (a turn's seal) ------------------------------------------------------


def inclusion_proof_for(store: Store, seq: int) -> tuple[list[bytes], int, int, bytes]:
    """Return (proof, index, size, root) proving event ``seq`` is in its turn's seal."""
    row = get_row(store, seq)
    if row.kind == "turn_sealed":
        raise LedgerError(f"seq {seq} is a turn seal; a seal is not a leaf of the tree it commits to")
    seal = get_turn_seal(store, row.turn)
    size = seal.event_count
    rows = store.select("seq >= ? AND seq < ?", [seal.first_seq, seal.first_seq + size])
    hashes = [bytes.fromhex(r.hash) for r in rows]
    if len(hashes) != size:
        raise ChainError(f"turn {row.turn} has {len(hashes)} events, its seal says {size}", seq=seq, turn=row.turn)
    index = seq - seal.first_seq
    if not 0 <= index < size:
        raise ChainError(f"seq {seq} is outside its turn's sealed range", seq=seq, turn=row.turn, kind=row.kind)
    return merkle.inclusion_proof(index, hashes), index, size, bytes.fromhex(seal.merkle_root)


def check_inclusion(store: Store, seq: int) -> bool:
    """Return whether event ``seq``, rehashed from its columns, is included in its turn's seal."""
    proof, index, size, root = inclusion_proof_for(store, seq)
    try:
        env = envelope_from_row(get_row(store, seq))
    except ValueError:
        return False
    return merkle.verify_inclusion(envelope_hash(env), index, size, proof, root)


def get_row(store: Store, seq: int) -> EventRow:
    rows = store.select("seq = ?", [seq])
    if not rows:
        raise LedgerError(f"no event at seq {seq}")
    return rows[0]


def get_turn_seal(store: Store, turn: int) -> ev.TurnSealed:
    """Return the decoded seal of ``turn`` (ChainError when the turn is unsealed or the seal unreadable)."""
    seal_seq = store.last_turn_seq(turn)
    if seal_seq is None:
        raise ChainError(f"turn {turn} has no seal", turn=turn)
    row = get_row(store, seal_seq)
    try:
        seal = decode_payload(row.kind, row.payload_version, row.payload)
    except (PayloadError, TypeError) as err:
        raise ChainError(f"unreadable seal: {err}", seq=seal_seq, turn=turn, kind=row.kind) from None
    if not isinstance(seal, ev.TurnSealed):
        raise ChainError("seal row does not hold a turn_sealed", seq=seal_seq, turn=turn, kind=row.kind)
    return seal
