"""Read-model tables kept for tools written against the original engine.

``contracts(contract_id, status, data)`` and ``core_shares(core_id, owner,
proportion)`` are views of the log: brought in line with the projection inside each
turn's transaction, derived and rebuildable, never read back by the engine. A
client that writes to them changes nothing in the economy, and its write is
overwritten at the next turn.
"""

from __future__ import annotations

from typing import Any, Iterable

import msgspec

from ..events.envelope import JSON_ENCODER
from ..projections.state import Contract, State


def contract_data(contract: Contract) -> dict:
    """Return the contract as proposed, in the original engine's ``data`` JSON shape."""
    offer = msgspec.to_builtins(contract.offer, order="sorted")  # what a JSON round trip gives, without one
    return {"contract_id": contract.contract_id, "proposer": contract.proposer, **offer}


def refresh_read_models(store, state: State, turn_events: Iterable[Any], *, rewrite_all: bool = False) -> None:
    """Bring the read models in line with the projection (call inside the turn's transaction).

    Only the contracts the turn's events touched are rewritten, unless ``rewrite_all``:
    the writer asks for that when another connection has written to the file since its
    last turn, so a client's write to a read model never outlives the next turn.
    """
    if rewrite_all:
        store.conn.execute("DELETE FROM contracts")
        touched = state.contracts.keys()
    else:
        touched = {cid for e in turn_events if (cid := getattr(e, "contract_id", None))}
    if touched:
        rows = []
        for rank, (cid, contract) in enumerate(state.contracts.items()):
            if cid in touched:
                rows.append([cid, contract.status, JSON_ENCODER.encode(contract_data(contract)).decode(), rank])
        store.conn.executemany(
            # Update in place (not INSERT OR REPLACE, which moves the row): a plain
            # ``SELECT ... FROM contracts``, as the study driver runs, lists contracts in creation order.
            "INSERT INTO contracts(contract_id, status, data, rank) VALUES (?, ?, ?, ?) ON CONFLICT(contract_id)"
            " DO UPDATE SET status = excluded.status, data = excluded.data, rank = excluded.rank", rows
        )
    shares = [(core, owner, ppm / 1_000_000) for core, (owner, ppm) in sorted(state.cores.items())]
    # Rewrite only what differs (cores change once, at the auction; a client may have written over them):
    # an unchanged table costs a read, not a page in every turn's commit.
    if store.conn.execute("SELECT core_id, owner, proportion FROM core_shares ORDER BY core_id").fetchall() != shares:
        store.conn.execute("DELETE FROM core_shares")
        store.conn.executemany("INSERT INTO core_shares(core_id, owner, proportion) VALUES (?, ?, ?)", shares)
