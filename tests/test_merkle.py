"""Merkle trees follow RFC 9162: published roots, and every proof against a naive recursive tree."""

from __future__ import annotations

import hashlib

import pytest

from simledger.events import merkle

# Certificate Transparency's reference leaves and tree heads (RFC 6962 / 9162 test data).
CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                        "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (0-based index, tree size, audit path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


# --- an independent, naive transcription of RFC 9162 section 2.1 ----------------------------


def naive_k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]), straight from the RFC's recursive definition."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = naive_k(n)
    return hashlib.sha256(b"\x01" + naive_mth(leaves[:k]) + naive_mth(leaves[k:])).digest()


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = naive_k(n)
    if m < k:
        return naive_path(m, leaves[:k]) + [naive_mth(leaves[k:])]
    return naive_path(m - k, leaves[k:]) + [naive_mth(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if b else [naive_mth(leaves)]
    k = naive_k(n)
    if m <= k:
        return naive_subproof(m, leaves[:k], b) + [naive_mth(leaves[k:])]
    return naive_subproof(m - k, leaves[k:], False) + [naive_mth(leaves[:k])]


def leaves_of(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


def flip(node: bytes) -> bytes:
    return bytes([node[0] ^ 1]) + node[1:]


# --- published vectors ------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_root_matches_published_ct_tree_head(size):
    assert merkle.merkle_root(CT_LEAVES[:size]).hex() == CT_ROOTS[size]


def test_empty_root_is_sha256_of_nothing():
    assert merkle.merkle_root([]) == merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("index, size, path", CT_INCLUSION)
def test_inclusion_proof_matches_published_ct_path(index, size, path):
    proof = merkle.inclusion_proof(index, CT_LEAVES[:size])
    assert [p.hex() for p in proof] == path
    assert merkle.verify_inclusion(CT_LEAVES[index], index, size, proof, bytes.fromhex(CT_ROOTS[size]))


# --- against the naive tree, many sizes --------------------------------------------------------


@pytest.mark.parametrize("size", range(0, 70))
def test_root_matches_naive_recursive_tree(size):
    leaves = leaves_of(size)
    assert merkle.merkle_root(leaves) == naive_mth(leaves)


@pytest.mark.parametrize("size", range(1, 42))
def test_every_inclusion_proof_matches_naive_and_verifies(size):
    leaves = leaves_of(size)
    root = naive_mth(leaves)
    for index in range(size):
        proof = merkle.inclusion_proof(index, leaves)
        assert proof == naive_path(index, leaves)
        assert merkle.verify_inclusion(leaves[index], index, size, proof, root)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 31, 33])
def test_inclusion_proof_rejects_wrong_leaf_index_root_or_path(size):
    leaves = leaves_of(size)
    root = naive_mth(leaves)
    for index in range(size):
        proof = merkle.inclusion_proof(index, leaves)
        assert not merkle.verify_inclusion(flip(leaves[index]), index, size, proof, root)  # another leaf
        assert not merkle.verify_inclusion(leaves[index], index, size, proof, flip(root))  # another root
        assert not merkle.verify_inclusion(leaves[index], size, size, proof, root)  # index out of range
        if size > 1:
            assert not merkle.verify_inclusion(leaves[index], (index + 1) % size, size, proof, root)
            assert not merkle.verify_inclusion(leaves[index], index, size, proof[:-1], root)  # short path
            assert not merkle.verify_inclusion(leaves[index], index, size, [flip(proof[0])] + proof[1:], root)
        assert not merkle.verify_inclusion(leaves[index], index, size, proof + [root], root)  # long path


def test_inclusion_proof_of_missing_leaf_raises():
    with pytest.raises(IndexError):
        merkle.inclusion_proof(3, leaves_of(3))


@pytest.mark.parametrize("new_size", range(1, 34))
def test_every_consistency_proof_matches_naive_and_verifies(new_size):
    leaves = leaves_of(new_size)
    new_root = naive_mth(leaves)
    for old_size in range(1, new_size + 1):
        proof = merkle.consistency_proof(old_size, leaves)
        assert proof == naive_subproof(old_size, leaves, True)
        old_root = naive_mth(leaves[:old_size])
        assert merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)


@pytest.mark.parametrize("new_size", [2, 3, 7, 8, 9, 16, 21, 33])
def test_consistency_proof_rejects_a_rewritten_history(new_size):
    leaves = leaves_of(new_size)
    new_root = naive_mth(leaves)
    for old_size in range(1, new_size):
        proof = merkle.consistency_proof(old_size, leaves)
        old_root = naive_mth(leaves[:old_size])
        forked = naive_mth([flip(leaves[0])] + leaves[1:old_size])  # the old tree with its first leaf changed
        assert not merkle.verify_consistency(old_size, new_size, forked, new_root, proof)
        assert not merkle.verify_consistency(old_size, new_size, old_root, flip(new_root), proof)
        assert not merkle.verify_consistency(old_size, new_size, old_root, new_root, [flip(proof[0])] + proof[1:])
        assert not merkle.verify_consistency(old_size, new_size, old_root, new_root, [])


def test_consistency_of_equal_sizes_needs_equal_roots_and_no_proof():
    leaves = leaves_of(5)
    root = naive_mth(leaves)
    assert merkle.verify_consistency(5, 5, root, root, [])
    assert not merkle.verify_consistency(5, 5, root, flip(root), [])
    assert not merkle.verify_consistency(5, 5, root, root, [root])


def test_consistency_proof_needs_a_nonempty_old_tree():
    with pytest.raises(ValueError):
        merkle.consistency_proof(0, leaves_of(4))
