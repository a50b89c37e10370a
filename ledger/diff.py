"""Compare two runs: their projections, and where their logs first part ways.

The projection diff says *what* differs (balances, contracts, cores, chain,
summary metrics); the divergence says *where* it started: the first seq whose
event hash differs, found by streaming both logs side by side. Because each
hash covers the previous one, everything before that seq is the same history.

Two runs of one seed under other rules or config differ at the genesis (seq 0),
which says nothing about where their economies part. For them the diff also
names the genesis fields that differ and the first event whose *content*
differs (``economic_divergence``): the events compared by kind, turn and
payload, leaving out the genesis and the seals, which commit to hashes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from ..projections.state import State
from ..projections.metrics import run_summary
from .replay import load_state
from .store import Store

CONTENT_COLUMNS = ("seq", "turn", "kind", "payload_json")
NOT_ECONOMIC = ("run_genesis", "turn_sealed")  # the genesis differs by construction; seals commit to hashes
GENESIS_DERIVED = ("type", "run_id", "engine_key", "agent_keys")  # follow from the fields compared
CHAIN_DERIVED = ("randomness", "draw")  # a block's lottery draw comes from the hash chain, not from the economy


class HashRow(NamedTuple):
    """The columns of an event row the divergence search reads."""

    seq: int
    turn: int
    kind: str
    hash: str

SKIPPED_METRICS = ("balances_final", "staked_final", "turn_rows", "winner_counts")  # accounts/chain show these


@dataclass
class Divergence:
    """The first position where two logs differ."""

    seq: int
    turn: int | None
    kind_a: str | None
    kind_b: str | None
    hash_a: str | None
    hash_b: str | None
    reason: str
    payload_a: Any = None  # the events' payloads, for an economic divergence (the hashes say nothing there)
    payload_b: Any = None


@dataclass
class RunDiff:
    until_turn: int | None
    turn_a: int
    turn_b: int
    accounts: list[dict] = field(default_factory=list)
    contracts: list[dict] = field(default_factory=list)
    cores: list[dict] = field(default_factory=list)
    chain: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    divergence: Divergence | None = None
    genesis: list[dict] = field(default_factory=list)
    """The genesis fields that differ (config, rules, seed, ...), when the logs part at the genesis."""
    economic_divergence: Divergence | None = None
    """When the logs part at the genesis: the first event whose kind, turn or payload differs."""
    decision_divergence: Divergence | None = None
    """When the logs part at the genesis: the first agent input (``action_submitted``) that differs."""

    @property
    def identical(self) -> bool:
        """Return whether the two projections agree in every section compared."""
        return not (self.accounts or self.contracts or self.cores or self.chain or self.metrics)

    def to_dict(self) -> dict:
        doc = asdict(self)
        doc["identical"] = self.identical
        return doc


# --- projection sections ---------------------------------------------------------


def get_account_row(state: State, agent: str) -> dict[str, int] | None:
    account = state.accounts.get(agent)
    if account is None:
        return None
    return {"balance": account.balance, "staked": account.staked, "wealth": account.wealth}


def compute_account_diffs(a: State, b: State) -> list[dict]:
    """Return one row per agent whose balance, stake or wealth differs (agents of A first, in run order)."""
    rows = []
    for agent in dict.fromkeys([*a.agents, *b.agents]):
        left, right = get_account_row(a, agent), get_account_row(b, agent)
        if left == right:
            continue
        delta = {k: right[k] - left[k] for k in left} if left and right else None
        rows.append({"agent_id": agent, "a": left, "b": right, "delta": delta})
    return rows


def compute_contract_diffs(a: State, b: State) -> list[dict]:
    """Return the contracts whose status differs, or that exist in one run only."""
    rows = []
    for cid in dict.fromkeys([*a.contracts, *b.contracts]):
        left = a.contracts[cid].status if cid in a.contracts else None
        right = b.contracts[cid].status if cid in b.contracts else None
        if left != right:
            rows.append({"contract_id": cid, "a": left, "b": right})
    return rows


def compute_core_diffs(a: State, b: State) -> list[dict]:
    """Return the cores whose owner or share differs."""
    rows = []
    for core in sorted(set(a.cores) | set(b.cores)):
        left, right = a.cores.get(core), b.cores.get(core)
        if left != right:
            rows.append({"core_id": core, "a": list(left) if left else None, "b": list(right) if right else None})
    return rows


def compute_chain_diffs(a: State, b: State) -> list[dict]:
    """Return the block-chain differences: height, last winner, and each agent's win count."""
    rows = []
    pairs = [("block_height", a.block_height, b.block_height),
             ("last_block_winner", (a.last_block or {}).get("winner"), (b.last_block or {}).get("winner"))]
    for agent in sorted(set(a.winner_counts) | set(b.winner_counts)):
        pairs.append((f"wins.{agent}", a.winner_counts.get(agent, 0), b.winner_counts.get(agent, 0)))
    for name, left, right in pairs:
        if left != right:
            rows.append(metric_row(name, left, right))
    return rows


def flatten_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Return the summary's scalar metrics, nested dicts flattened one level as ``name.key``."""
    flat = {}
    for name, value in summary.items():
        if name in SKIPPED_METRICS:
            continue
        if isinstance(value, dict):
            for key, sub in value.items():
                flat[f"{name}.{key}"] = sub
        else:
            flat[name] = value
    return flat


def metric_row(name: str, left: Any, right: Any) -> dict:
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
    return {"name": name, "a": left, "b": right, "delta": right - left if numeric else None}


def compute_metric_diffs(a: State, b: State) -> list[dict]:
    """Return the study summary metrics (projections.metrics.run_summary) that differ."""
    left, right = flatten_summary(run_summary(a)), flatten_summary(run_summary(b))
    rows = []
    for name in dict.fromkeys([*left, *right]):
        x, y = left.get(name, 0 if "." in name else None), right.get(name, 0 if "." in name else None)
        if x != y:
            rows.append(metric_row(name, x, y))
    return rows


# --- first divergence --------------------------------------------------------------


def find_divergence(store_a: Store, store_b: Store, until_turn: int | None = None) -> Divergence | None:
    """Return the first seq where the logs' event hashes differ (or one ends), or None when equal."""
    rows_a = map(HashRow._make, store_a.rows(until_turn=until_turn, columns=HashRow._fields))
    rows_b = map(HashRow._make, store_b.rows(until_turn=until_turn, columns=HashRow._fields))
    for seq, (ra, rb) in enumerate(zip_longest(rows_a, rows_b)):
        if ra is not None and rb is not None and ra.hash == rb.hash and ra.seq == rb.seq == seq:
            continue
        if ra is None or rb is None:
            longer, which = (rb, "B") if ra is None else (ra, "A")
            return Divergence(seq=longer.seq, turn=longer.turn, kind_a=ra and ra.kind,
                              kind_b=rb and rb.kind, hash_a=ra and ra.hash, hash_b=rb and rb.hash,
                              reason=f"log {which} continues where the other ends")
        turn = ra.turn if ra.turn == rb.turn else min(ra.turn, rb.turn)
        reason = "event hashes differ" if ra.seq == rb.seq == seq else "seq numbering differs"
        return Divergence(seq=min(ra.seq, rb.seq), turn=turn, kind_a=ra.kind, kind_b=rb.kind,
                          hash_a=ra.hash, hash_b=rb.hash, reason=reason)
    return None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Return nested dicts as ``{"a.b": value}``."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def read_genesis_payload(store: Store) -> dict[str, Any]:
    """Return the genesis as plain data (``Store.genesis``, the one genesis reader)."""
    return msgspec.to_builtins(store.genesis())


def compute_genesis_diffs(store_a: Store, store_b: Store) -> list[dict]:
    """Return the genesis fields (flattened: ``config.base_inference_rate``) whose values differ."""
    left, right = (flatten({k: v for k, v in read_genesis_payload(s).items() if k not in GENESIS_DERIVED})
                   for s in (store_a, store_b))
    return [metric_row(name, left.get(name), right.get(name))
            for name in sorted(set(left) | set(right)) if left.get(name) != right.get(name)]


def economic_rows(store: Store, until_turn: int | None, kinds: tuple[str, ...] | None):
    """Yield (seq, turn, kind, payload) of the economy's events (of ``kinds``), leaving out what the hash chain sets."""
    for seq, turn, kind, payload_json in store.rows(until_turn=until_turn, columns=CONTENT_COLUMNS):
        if kind not in NOT_ECONOMIC and (kinds is None or kind in kinds):
            payload = json.loads(payload_json)
            yield seq, turn, kind, {k: v for k, v in payload.items() if k not in CHAIN_DERIVED}


def find_economic_divergence(store_a: Store, store_b: Store, until_turn: int | None = None,
                             kinds: tuple[str, ...] | None = None) -> Divergence | None:
    """Return the first event (of ``kinds``; genesis and seals aside) whose turn, kind or payload differs.

    None when none does. A block's randomness and draw are left out: they come
    from the hash chain, which differs from the genesis on. Who wins the block,
    and with which entrants, is compared.
    """
    rows_a, rows_b = economic_rows(store_a, until_turn, kinds), economic_rows(store_b, until_turn, kinds)
    for ra, rb in zip_longest(rows_a, rows_b):
        if ra is not None and rb is not None and ra[1:] == rb[1:]:
            continue
        if ra is None or rb is None:
            longer, which = (rb, "B") if ra is None else (ra, "A")
            return Divergence(seq=longer[0], turn=longer[1], kind_a=ra and ra[2], kind_b=rb and rb[2], hash_a=None,
                              hash_b=None, reason=f"log {which} continues where the other ends",
                              payload_a=ra and ra[3], payload_b=rb and rb[3])
        return Divergence(seq=min(ra[0], rb[0]), turn=min(ra[1], rb[1]), kind_a=ra[2], kind_b=rb[2], hash_a=None,
                          hash_b=None, reason="event contents differ", payload_a=ra[3], payload_b=rb[3])
    return None


# --- the whole comparison ------------------------------------------------------------


def diff_states(a: State, b: State, until_turn: int | None = None) -> RunDiff:
    """Return the projection differences of two states (no divergence search)."""
    return RunDiff(
        until_turn=until_turn, turn_a=a.sealed_turn, turn_b=b.sealed_turn,
        accounts=compute_account_diffs(a, b), contracts=compute_contract_diffs(a, b),
        cores=compute_core_diffs(a, b), chain=compute_chain_diffs(a, b), metrics=compute_metric_diffs(a, b),
    )


def diff_runs(path_a: str | Path, path_b: str | Path, until_turn: int | None = None) -> RunDiff:
    """Return how run B differs from run A, up to the end of ``until_turn`` (None: whole logs)."""
    with Store(path_a) as store_a, Store(path_b) as store_b:
        state_a, state_b = load_state(store_a, until_turn), load_state(store_b, until_turn)
        result = diff_states(state_a, state_b, until_turn)
        result.divergence = find_divergence(store_a, store_b, until_turn)
        if result.divergence is not None and result.divergence.seq == 0:
            result.genesis = compute_genesis_diffs(store_a, store_b)
            result.economic_divergence = find_economic_divergence(store_a, store_b, until_turn)
            result.decision_divergence = find_economic_divergence(store_a, store_b, until_turn, ("action_submitted",))
    return result
