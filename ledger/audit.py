"""Audits of a stored run: one contract's history, one agent's account statement.

Both are pure reads of the log. Token movements are never recomputed here: each
event is applied to a projection with the same reducers the engine uses, and
the audit records what changed, so an audit cannot disagree with a replay.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import msgspec

from ..events import types as ev
from ..events.envelope import PayloadError, decode_payload, envelope_hash
from ..events.keys import input_message, key_id, load_public, verify_signature
from ..projections.reducers import apply_event
from ..projections.state import State
from .errors import ChainError, LedgerError
from .replay import load_state, positioned_events
from .store import EventRow, Store, envelope_from_row

class UnknownSubject(LedgerError):
    """Raised when an audit names a contract or agent the log does not know."""


# --- reading the log -----------------------------------------------------------


def require_agent(genesis: ev.RunGenesis, agent: str) -> None:
    """Raise UnknownSubject unless ``agent`` takes part in the run."""
    if agent not in genesis.agents:
        raise UnknownSubject(f"unknown agent {agent!r} (this run has {len(genesis.agents)} agents, "
                             f"e.g. {', '.join(genesis.agents[:3])})")


def decode_row(row: EventRow) -> Any:
    """Return the typed event of a raw row (ChainError when its payload does not decode)."""
    try:
        return decode_payload(row.kind, row.payload_version, row.payload)
    except (PayloadError, TypeError) as err:
        raise ChainError(str(err), seq=row.seq, turn=row.turn, kind=row.kind) from None


def row_envelope(row: EventRow):
    """Return the Envelope of a raw row (ChainError on a malformed cell)."""
    try:
        return envelope_from_row(row)
    except ValueError as err:
        raise ChainError(str(err), seq=row.seq, turn=row.turn, kind=row.kind) from None


def event_doc(event: Any) -> dict:
    """Return an event's payload as plain JSON-able data."""
    return msgspec.to_builtins(event)


# --- balances observed through the reducers --------------------------------------


def get_position(state: State, agent: str) -> tuple[int, int, int]:
    """Return (balance, staked, locked) of ``agent``; zeros before its account exists."""
    account = state.accounts.get(agent)
    return (account.balance, account.staked, account.locked) if account else (0, 0, 0)


def get_supply_marks(state: State) -> tuple[int, int, int]:
    return state.minted, state.sunk, state.fee_pool


def compute_movements(before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]) -> list[dict]:
    """Return the non-zero (balance, staked, locked) changes between two position maps."""
    moves = []
    for agent in before:
        deltas = [b - a for a, b in zip(before[agent], after[agent])]
        if any(deltas):
            moves.append({"agent_id": agent, "balance": deltas[0], "staked": deltas[1], "locked": deltas[2]})
    return moves


def named_agents(event: Any, state: State) -> set[str]:
    """Return the agents an event names in any of its string fields."""
    names = set()
    for value in msgspec.structs.astuple(event):
        if isinstance(value, str) and value in state.accounts:
            names.add(value)
    return names


# --- contract history ------------------------------------------------------------


@dataclass
class AuditEntry:
    """One event of a contract's history, with its checks and the tokens it moved."""

    seq: int
    turn: int
    kind: str
    actor: str
    payload: dict
    hash: str
    hash_ok: bool
    signature_ok: bool
    input_seq: int | None = None
    input_signature_ok: bool | None = None
    input_signed_by: str | None = None  # "agent", "server for agent" (custodial) or "seed key"
    movements: list[dict] = field(default_factory=list)
    supply: dict[str, int] = field(default_factory=dict)
    included: bool | None = None
    proof: Any = None


@dataclass
class ContractHistory:
    contract_id: str
    status: str
    parties: dict[str, str]
    entries: list[AuditEntry]

    @property
    def all_checks_pass(self) -> bool:
        return all(e.hash_ok and e.signature_ok and e.input_signature_ok is not False and e.included is not False
                   for e in self.entries)

    def to_dict(self) -> dict:
        return {"contract_id": self.contract_id, "status": self.status, "parties": self.parties,
                "all_checks_pass": self.all_checks_pass, "events": [asdict(e) for e in self.entries]}


def is_engine_signature_valid(state: State, env) -> bool:
    """Return whether an engine event names the genesis engine key and carries its signature of the hash."""
    try:
        public = load_public(state.engine_key)
    except ValueError:
        return False
    return env.signer == key_id(state.engine_key) and verify_signature(public, env.signature, env.hash)


def is_input_signature_valid(store: Store, state: State, input_seq: int, agent: str | None) -> bool:
    """Return whether the input at ``input_seq`` is ``agent``'s, signed with its genesis key for that turn."""
    rows = store.select("seq = ?", [input_seq])
    if not rows or rows[0].kind != "action_submitted":
        return False
    env = row_envelope(rows[0])
    submitted = decode_row(rows[0])
    public_hex = state.agent_keys.get(submitted.agent)
    if public_hex is None or (agent is not None and submitted.agent != agent):
        return False
    if env.signer != key_id(public_hex) or envelope_hash(env) != env.hash:
        return False
    message = input_message(state.run_id, env.turn, env.payload)
    return verify_signature(load_public(public_hex), env.signature, message)


def get_input_agent(event: Any) -> str | None:
    """Return the agent whose input caused an event (the signer, confirmer, ruler...)."""
    for name in ("signer", "proposer", "arbitrator", "agent"):
        value = getattr(event, name, None)
        if isinstance(value, str):
            return value
    return None


def check_entry_inclusion(store: Store, entry: AuditEntry) -> None:
    """Attach the event's inclusion proof against its turn's seal, and whether it checks."""
    from .proofs import check_inclusion, inclusion_proof_for

    path, index, size, root = inclusion_proof_for(store, entry.seq)
    entry.proof = {"index": index, "size": size, "root": root.hex(), "path": [node.hex() for node in path]}
    entry.included = bool(check_inclusion(store, entry.seq))


def contract_history(store: Store, contract_id: str, *, proofs: bool = True) -> ContractHistory:
    """Return every event about ``contract_id`` in order, checked, with the tokens each moved."""
    rows = store.select("contract_id = ?", [contract_id])
    if not rows:
        raise UnknownSubject(f"no contract {contract_id!r} in {store.path}")
    seqs = {row.seq for row in rows}
    key_source = store.genesis().key_source
    state = load_state(store, rows[0].turn - 1) if rows[0].turn > 0 else State()
    entries, parties = [], {}
    by_seq = {row.seq: row for row in rows}
    for seq, turn, event in positioned_events(store, start_seq=state.events, end_seq=rows[-1].seq):
        if seq not in seqs:
            apply_event(state, event, seq, turn)
            continue
        if isinstance(event, ev.ContractProposed):
            parties = {"proposer": event.proposer, "counterparty": event.offer.counterparty,
                       "arbitrator": event.offer.arbitrator}
        watched = set(parties.values()) | named_agents(event, state)
        before = {a: get_position(state, a) for a in sorted(watched)}
        supply_before = get_supply_marks(state)
        apply_event(state, event, seq, turn)
        entries.append(make_entry(store, state, by_seq[seq], event, before, supply_before, key_source))
    if proofs:
        for entry in entries:
            check_entry_inclusion(store, entry)
    status = state.contracts[contract_id].status if contract_id in state.contracts else "unknown"
    return ContractHistory(contract_id=contract_id, status=status, parties=parties, entries=entries)


def make_entry(store: Store, state: State, row: EventRow, event: Any, before: dict, supply_before: tuple,
               key_source: str) -> AuditEntry:
    """Return the audit entry of one contract event, just applied to ``state``."""
    env = row_envelope(row)
    after = {a: get_position(state, a) for a in before}
    minted, sunk, pool = (b - a for a, b in zip(supply_before, get_supply_marks(state)))
    input_seq = getattr(event, "input_seq", None)
    entry = AuditEntry(
        seq=env.seq, turn=env.turn, kind=env.kind, actor=env.actor, payload=event_doc(event), hash=env.hash.hex(),
        hash_ok=envelope_hash(env) == env.hash, signature_ok=is_engine_signature_valid(state, env),
        movements=compute_movements(before, after),
        supply={k: v for k, v in (("minted", minted), ("sunk", sunk), ("fee_pool", pool)) if v},
    )
    if input_seq is not None:
        entry.input_seq = input_seq
        entry.input_signature_ok = is_input_signature_valid(store, state, input_seq, get_input_agent(event))
        entry.input_signed_by = get_input_signer(store, input_seq, key_source)
    return entry


def get_input_signer(store: Store, input_seq: int, key_source: str) -> str | None:
    """Return who signed the input at ``input_seq`` (see ``ledger.authenticity.input_signed_by``)."""
    from .authenticity import input_signed_by

    rows = store.select("seq = ?", [input_seq])
    if not rows or rows[0].kind != "action_submitted":
        return None
    return input_signed_by(key_source, decode_row(rows[0]).custodial is True)


# --- account statement -------------------------------------------------------------


@dataclass
class StatementLine:
    seq: int
    turn: int
    kind: str
    delta: int
    balance: int
    counterparty: str | None = None
    contract_id: str | None = None
    detail: str | None = None


@dataclass
class AccountStatement:
    agent: str
    opening_balance: int
    lines: list[StatementLine]
    closing_balance: int  # opening + every delta, summed here
    projected_balance: int  # state.accounts[agent].balance from load_state (checkpoints allowed)

    @property
    def reconciled(self) -> bool:
        return self.closing_balance == self.projected_balance

    def to_dict(self) -> dict:
        return {"agent_id": self.agent, "opening_balance": self.opening_balance,
                "closing_balance": self.closing_balance, "projected_balance": self.projected_balance,
                "reconciled": self.reconciled, "changes": len(self.lines),
                "lines": [asdict(line) for line in self.lines]}


def get_counterparty(event: Any, agent: str) -> tuple[str | None, str | None]:
    """Return (counterparty, detail) of a balance change of ``agent`` caused by ``event``."""
    match event:
        case ev.TokensTransferred(sender=s, recipient=r, fee=fee):
            return (r, f"sent, fee {fee}") if s == agent else (s, "received")
        case ev.ContractPayment(payer=p, payee=q, purpose=purpose):
            return (q, f"{purpose} paid") if p == agent else (p, f"{purpose} received")
        case ev.DividendPaid(core_id=core):
            return None, f"dividend of {core}"
        case ev.CoreAuctionResolved(awards=awards):
            won = [f"{a.core_id} for {a.price}" for a in awards if a.owner == agent]
            return None, "won " + ", ".join(won)
        case ev.BlockProduced(height=height):
            return None, f"block {height} reward"
        case ev.RunGenesis():
            return None, "genesis allocation"
    return None, None


def iter_balance_changes(store: Store, agent: str) -> Iterator[tuple[int, int, Any, int]]:
    """Yield (seq, turn, event, balance delta) for every event that changed ``agent``'s balance."""
    state = State()
    for seq, turn, event in positioned_events(store):
        before = get_position(state, agent)[0]
        apply_event(state, event, seq, turn)
        delta = get_position(state, agent)[0] - before
        if delta:
            yield seq, turn, event, delta


def account_statement(store: Store, agent: str) -> AccountStatement:
    """Return every balance change of ``agent`` with its cause, reconciled to the projection."""
    require_agent(store.genesis(), agent)
    lines, running, opening = [], 0, None
    for seq, turn, event, delta in iter_balance_changes(store, agent):
        running += delta
        if opening is None and isinstance(event, ev.RunGenesis):
            opening = running
        counterparty, detail = get_counterparty(event, agent)
        lines.append(StatementLine(seq=seq, turn=turn, kind=ev.kind_of(event), delta=delta, balance=running,
                                   counterparty=counterparty, contract_id=getattr(event, "contract_id", None),
                                   detail=detail))
    projected = load_state(store).accounts[agent].balance
    return AccountStatement(agent=agent, opening_balance=opening or 0, lines=lines, closing_balance=running,
                            projected_balance=projected)
