"""The projected state: everything the engine decides from, folded from events.

Plain mutable dataclasses for speed; only the reducers in ``projections.reducers``
change them. State size is O(agents + contracts + cores + turns), never O(events).
"""

from __future__ import annotations

import copy
import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..events.actions import ContractOffer
from ..events.config import Config, Rules
from ..events.envelope import ENCODER



class ContractStatus(enum.StrEnum):
    """Where a contract stands: the one set of statuses (each equal to, and stored as, its string)."""

    PROPOSED = "proposed"
    COUNTERSIGNED = "countersigned"
    ACTIVE = "active"
    DISPUTED = "disputed"
    SETTLED = "settled"
    DEFAULTED = "defaulted"
    EXPIRED = "expired"  # an offer nobody signed before its delivery turn


OPEN_STATUSES = (ContractStatus.PROPOSED, ContractStatus.COUNTERSIGNED, ContractStatus.ACTIVE, ContractStatus.DISPUTED)
FINAL_STATUSES = (ContractStatus.SETTLED, ContractStatus.DEFAULTED, ContractStatus.EXPIRED)
STATUSES = (*OPEN_STATUSES, *FINAL_STATUSES)
SETTLED_ON_CONFIRMATION = "confirmed"
"""The outcome of a contract settled by the confirmation that completed its attestation (R17).

It settles in the action step, so, like the original engine's turn response, the
turn's ``contracts_settled`` (filled by the settlement step) does not list it."""


@dataclass
class Account:
    balance: int = 0
    staked: int = 0
    locked: int = 0
    pending_unstakes: list[tuple[int, int]] = field(default_factory=list)  # (release_turn, amount)
    pending_stakes: list[tuple[int, int]] = field(default_factory=list)  # (activates_turn, amount): no weight yet
    burns: list[tuple[int, int]] = field(default_factory=list)  # (matures_turn, amount)
    study_until: int = 0
    last_job_turn: int = -1000
    interest_paid: int = 0

    @property
    def pending(self) -> int:
        return sum(amount for _, amount in self.pending_unstakes)

    @property
    def pending_stake(self) -> int:
        return sum(amount for _, amount in self.pending_stakes)

    @property
    def wealth(self) -> int:
        return self.balance + self.staked


@dataclass
class Contract:
    contract_id: str
    proposer: str
    offer: ContractOffer
    created_turn: int
    status: str = ContractStatus.PROPOSED
    signed_by: dict[str, str] = field(default_factory=dict)  # role -> agent
    confirmed_by: list[str] = field(default_factory=list)
    disputed_by: str | None = None
    ruling_for: str | None = None
    locked: dict[str, int] = field(default_factory=dict)
    outcome: str | None = None
    closed_turn: int | None = None
    history: list[int] = field(default_factory=list)  # seqs of every event about it

    @property
    def counterparty(self) -> str:
        return self.offer.counterparty

    @property
    def arbitrator(self) -> str:
        return self.offer.arbitrator

    def parties(self) -> tuple[str, str, str]:
        return (self.proposer, self.offer.counterparty, self.offer.arbitrator)


@dataclass
class TurnMetrics:
    """What the original engine's ``/turn`` response reported, per turn.

    The per-agent and per-contract details are kept for the latest turn only
    (the HTTP response needs them); when the next turn starts they are dropped
    and only the totals remain, so the state stays O(turns), not O(events).
    """

    turn: int
    fees: int = 0
    dividends_total: int = 0
    interest_total: int = 0
    settled_count: int = 0
    defaulted_count: int = 0
    error_count: int = 0
    block_winner: str | None = None
    dividends: dict[str, int] = field(default_factory=dict)
    interest: dict[str, int] = field(default_factory=dict)
    settled: list[str] = field(default_factory=list)
    defaulted: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def compact(self) -> None:
        """Drop the details of a finished turn, keeping its totals."""
        self.dividends, self.interest, self.settled, self.defaulted, self.errors = {}, {}, [], [], []


@dataclass
class State:
    run_id: str = ""
    seed: int = 0
    config: Config = field(default_factory=Config)
    rules: Rules = field(default_factory=Rules)
    agents: list[str] = field(default_factory=list)
    agent_keys: dict[str, str] = field(default_factory=dict)
    engine_key: str = ""
    identity: dict[str, Any] = field(default_factory=dict)
    turn: int = 0  # the turn being processed, or the last one sealed
    sealed_turn: int = 0
    accounts: dict[str, Account] = field(default_factory=dict)
    contracts: dict[str, Contract] = field(default_factory=dict)  # creation order
    cores: dict[str, tuple[str, int]] = field(default_factory=dict)  # core_id -> (owner, proportion ppm)
    core_bids: list[tuple[str, str, int, int]] = field(default_factory=list)  # (core_id, agent, amount, seq)
    miners: list[str] = field(default_factory=list)  # this turn's mining entrants, in order
    fee_pool: int = 0
    genesis_supply: int = 0
    minted: int = 0
    sunk: int = 0
    block_height: int = 0
    last_block: dict[str, Any] | None = None
    winner_counts: dict[str, int] = field(default_factory=dict)
    action_counts: dict[str, int] = field(default_factory=dict)
    rejection_counts: dict[str, int] = field(default_factory=dict)  # "action/reason" -> n
    turns: list[TurnMetrics] = field(default_factory=list)
    last_seal: dict[str, Any] | None = None
    events: int = 0

    # --- read-only accessors -------------------------------------------------

    def token_supply(self) -> int:
        """Return the token supply (R23): balances (negatives included) and stakes, plus pending
        stakes and unstakes and the fee pool; collateral held in contracts only where the rules count it."""
        if self.rules.supply_counts_collateral:
            return self.held_tokens()
        return self.held_tokens() - sum(a.locked for a in self.accounts.values())

    def held_tokens(self) -> int:
        """Return every token the ledger holds anywhere: balances, stakes, collateral, pools."""
        return self.fee_pool + sum(a.balance + a.staked + a.locked + a.pending + a.pending_stake
                                   for a in self.accounts.values())

    def expected_tokens(self) -> int:
        """Return what the mint and sink events say the ledger should hold."""
        return self.genesis_supply + self.minted - self.sunk

    def current_metrics(self) -> TurnMetrics:
        return self.turns[-1]

    def copy(self) -> "State":
        return copy.deepcopy(self)


DIGEST_VERSION = 2
"""The version of the document a seal's state digest hashes.

1: the document of ``state_digest`` below (turn, accounts, contracts, cores, supply, blocks).
2: version 1 plus ``extensions``: the values of the ``DIGEST_EXTENSIONS`` fields that are not at
their defaults. A state whose extensions are all at their defaults is hashed as the version-1
document, byte for byte, so a log written before a field existed keeps every digest.
"""


@dataclass(frozen=True)
class Digested:
    """A state field added after digest version 1, covered by the digest once it leaves its default."""

    scope: str  # "state", "account" (each Account) or "contract" (each Contract)
    name: str  # the attribute
    default: Any  # the value every log written before the field existed implies


DIGEST_EXTENSIONS: list[Digested] = [
    Digested("account", "pending_stakes", []),  # R7's stake warm-up and R9's re-warmed stake
]
"""Append a row for each new field of State, Account or Contract the engine decides from (never reorder)."""


def state_digest(state: State) -> str:
    """Return the SHA-256 (hex) of the economic state, the digest each seal commits to.

    Covers accounts, contracts' statuses and parties' marks, core shares, the
    chain height and the mint/sink totals, encoded canonically (sorted keys);
    and, from digest version 2, every extension field not at its default.
    """
    doc: dict[str, Any] = {
        "turn": state.turn,
        "accounts": {
            agent: [a.balance, a.staked, a.locked, a.pending_unstakes, a.burns, a.study_until]
            for agent, a in state.accounts.items()
        },
        "contracts": {
            cid: [c.status, sorted(c.signed_by.items()), c.confirmed_by, c.disputed_by, c.ruling_for,
                  sorted(c.locked.items())]
            for cid, c in state.contracts.items()
        },
        "cores": {core: list(owner) for core, owner in state.cores.items()},
        "supply": [state.genesis_supply, state.minted, state.sunk, state.fee_pool],
        "blocks": state.block_height,
    }
    extensions = get_digest_extensions(state)
    if extensions:
        doc["version"], doc["extensions"] = DIGEST_VERSION, extensions
    return hashlib.sha256(ENCODER.encode(doc)).hexdigest()


def get_digest_extensions(state: State) -> dict[str, Any]:
    """Return the non-default extension values: {"state": {name: v}, "accounts": {id: {name: v}}, ...}."""
    found: dict[str, Any] = {}
    owners = {"state": {"": state}, "account": state.accounts, "contract": state.contracts}
    for field_ in DIGEST_EXTENSIONS:
        for owner_id, owner in owners[field_.scope].items():
            value = getattr(owner, field_.name, field_.default)
            if value != field_.default:
                part = found.setdefault(field_.scope, {})
                (part.setdefault(owner_id, {}) if field_.scope != "state" else part)[field_.name] = value
    return found


SNAPSHOT_VERSION = 5
"""Bumped whenever State's shape changes; a checkpoint of another version is ignored.

3: dicts keep insertion order (version 2 sorted them, so a run resumed from a
checkpoint visited contracts and accounts in another order and diverged).
4: the per-turn ``submitted``/``inputs`` bookkeeping is gone (nothing read it).
5: ``Account.pending_stakes`` (R7's stake warm-up)."""

_SNAPSHOT_DECODER = msgspec.msgpack.Decoder(tuple[int, State])
# Insertion order, not sorted: the engine iterates contracts (creation order) and
# accounts (genesis order), so a state restored from a checkpoint must keep them.
_SNAPSHOT_ENCODER = msgspec.msgpack.Encoder()


def snapshot_bytes(state: State) -> bytes:
    """Return an exact msgpack serialisation of the state, tagged with SNAPSHOT_VERSION.

    msgpack, not pickle: a checkpoint read from a hostile file must not be able
    to run code. A checkpoint is only trusted once its version is this library's
    and its digest matches the seal of its turn in the verified log; derived
    counters the digest does not cover are why the version matters.
    """
    return _SNAPSHOT_ENCODER.encode((SNAPSHOT_VERSION, state))


def snapshot_state(blob: bytes) -> State:
    """Return the State in a checkpoint blob; raise ValueError for another version or bad bytes."""
    try:
        version, state = _SNAPSHOT_DECODER.decode(blob)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise ValueError(f"not a checkpoint of snapshot version {SNAPSHOT_VERSION}: {err}") from None
    if version != SNAPSHOT_VERSION:
        raise ValueError(f"checkpoint snapshot version {version}, this library writes {SNAPSHOT_VERSION}")
    return state


__all__ = ["Account", "Contract", "TurnMetrics", "State", "state_digest", "Digested", "DIGEST_EXTENSIONS",
           "snapshot_bytes", "snapshot_state", "ContractStatus", "OPEN_STATUSES", "FINAL_STATUSES", "STATUSES",
           "SETTLED_ON_CONFIRMATION"]
