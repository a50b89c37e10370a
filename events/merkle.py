"""Merkle trees over event hashes, as in RFC 9162 (Certificate Transparency v2).

Leaves are hashed as SHA-256(0x00 || leaf), nodes as SHA-256(0x01 || left || right),
and a tree of n leaves splits at the largest power of two below n. Used for
the per-turn seal (inclusion proofs of a turn's events) and for signed heads
(the whole log; consistency proofs show a newer log extends an older one).
"""

from __future__ import annotations

import hashlib

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Return the largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of_hashes(hashes: list[bytes]) -> bytes:
    """Return the tree root over already leaf-hashed nodes."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    # Bottom-up pairing gives the same tree as RFC 9162's recursive split.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_root(leaves: list[bytes]) -> bytes:
    """Return the RFC 9162 Merkle tree hash of ``leaves``."""
    return root_of_hashes([leaf_hash(leaf) for leaf in leaves])


def inclusion_proof(index: int, leaves: list[bytes]) -> list[bytes]:
    """Return the audit path for leaf ``index`` (RFC 9162 section 2.1.3.1)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} not in a tree of {len(leaves)}")
    return _path(index, [leaf_hash(leaf) for leaf in leaves])


def _path(m: int, nodes: list[bytes]) -> list[bytes]:
    if len(nodes) <= 1:
        return []
    k = _split(len(nodes))
    if m < k:
        return _path(m, nodes[:k]) + [root_of_hashes(nodes[k:])]
    return _path(m - k, nodes[k:]) + [root_of_hashes(nodes[:k])]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """Return whether ``proof`` shows ``leaf`` at ``index`` in the tree of ``size`` with ``root``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_proof(old_size: int, leaves: list[bytes]) -> list[bytes]:
    """Return the proof that the first ``old_size`` leaves are a prefix (RFC 9162 2.1.4.1)."""
    if not 0 < old_size <= len(leaves):
        raise ValueError(f"old size {old_size} not within 1..{len(leaves)}")
    return _subproof(old_size, [leaf_hash(leaf) for leaf in leaves], True)


def _subproof(m: int, nodes: list[bytes], complete: bool) -> list[bytes]:
    n = len(nodes)
    if m == n:
        return [] if complete else [root_of_hashes(nodes)]
    k = _split(n)
    if m <= k:
        return _subproof(m, nodes[:k], complete) + [root_of_hashes(nodes[k:])]
    return _subproof(m - k, nodes[k:], False) + [root_of_hashes(nodes[:k])]


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> bool:
    """Return whether ``proof`` shows the tree (old_size, old_root) is a prefix of (new_size, new_root)."""
    if old_size == new_size:
        return old_root == new_root and not proof
    if not 0 < old_size < new_size or not proof:
        return False
    if old_size & (old_size - 1) == 0:
        proof = [old_root] + proof
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
