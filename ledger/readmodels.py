"""Read-model tables: views of the log for tools and people reading a run.db with SQL.

``contracts(contract_id, status, data, rank)`` and ``core_shares(core_id, owner,
proportion)`` serve tools written against the original engine; ``account_turns``
(one row per turn and agent) and ``turns`` (one row per turn) are the per-turn
tables of ``ledger.turn_tables`` for SQLite and Datasette users. All are brought in
line with the projection inside each turn's transaction, derived and rebuildable,
outside the hashed chain and never read back by the engine. A client that writes
to them changes nothing in the economy, and its write is overwritten at the next
turn; ``verify`` checks the per-turn tables against a fold of the log. Logs written
before the per-turn tables existed do not have them, and stay valid.
"""

from __future__ import annotations

from typing import Any, Iterable

import msgspec

from ..events.envelope import JSON_ENCODER
from ..projections.state import Contract, State
from .errors import ChainError
from .turn_tables import ACCOUNT_COLUMNS, TURN_COLUMNS, account_rows, per_turn_rows, tally_turn, turn_row

PER_TURN_TABLES = {"account_turns": ACCOUNT_COLUMNS, "turns": TURN_COLUMNS}
_KEYS = {"account_turns": "turn, agent_id", "turns": "turn"}
_TEXT_COLUMNS = {"agent_id", "block_winner", "errors_by_reason"}
_REAL_COLUMNS = {"gini_balance", "gini_wealth"}


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
    refresh_turn_tables(store, state, turn_events, rebuild=rewrite_all)


def column_sql(name: str) -> str:
    kind = "TEXT" if name in _TEXT_COLUMNS else "REAL" if name in _REAL_COLUMNS else "INTEGER"
    return f"{name} {kind}"


def create_turn_tables(store) -> None:
    """(Re)create the per-turn tables empty, whatever a client or an older version left in their place."""
    for table, columns in PER_TURN_TABLES.items():
        store.conn.execute(f"DROP TABLE IF EXISTS {table}")
        store.conn.execute(f"CREATE TABLE {table} ({', '.join(map(column_sql, columns))}, PRIMARY KEY ({_KEYS[table]}))")


def insert_turn_rows(store, accounts: list[tuple], turns: list[tuple]) -> None:
    for table, rows in (("account_turns", accounts), ("turns", turns)):
        columns = PER_TURN_TABLES[table]
        store.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                               rows)


def refresh_turn_tables(store, state: State, turn_events: Iterable[Any], *, rebuild: bool) -> None:
    """Append the sealed turn's rows; with ``rebuild``, rewrite both tables from a fold of the whole log.

    A writer rebuilds on its first turn and whenever another connection wrote to the
    file: the tables may then be missing (an older log), short or edited.
    """
    if not rebuild:
        tally = tally_turn(turn_events)
        insert_turn_rows(store, account_rows(state, tally), [turn_row(state, tally)])
        return
    from .replay import positioned_events

    create_turn_tables(store)
    for accounts, turn in per_turn_rows(positioned_events(store)):
        insert_turn_rows(store, accounts, [turn])


def stored_rows(store, table: str):
    """Return a cursor over a stored per-turn table's rows in key order."""
    return store.conn.execute(f"SELECT {', '.join(PER_TURN_TABLES[table])} FROM {table} ORDER BY {_KEYS[table]}")


def has_turn_tables(store) -> bool:
    names = {name for (name,) in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return bool(set(PER_TURN_TABLES) & names)


def check_turn_tables(store, *, batch: int = 2000) -> None:
    """Raise ChainError naming the first turn where a stored per-turn table differs from the fold of the log.

    Streams both sides, the log ``batch`` rows at a time (memory does not grow with the log). A log
    without the tables (written before they existed) passes: they are derived, not
    part of the chain.
    """
    from .replay import positioned_events

    if not has_turn_tables(store):
        return
    cursors = {table: stored_rows(store, table) for table in PER_TURN_TABLES}
    for accounts, turn in per_turn_rows(positioned_events(store, batch=batch)):
        expected = {"account_turns": sorted(accounts, key=lambda r: r[1]), "turns": [turn]}
        for table, rows in expected.items():
            if cursors[table].fetchmany(len(rows)) != rows:
                raise ChainError(f"read model {table} differs from the fold of the log"
                                 " (the events verify; the derived table does not)", turn=turn[0])
    for table, cursor in cursors.items():
        if (extra := cursor.fetchone()) is not None:
            raise ChainError(f"read model {table} has rows for turns the log does not have: the log may have been"
                             " cut after they were written (check it against a head you kept: --expect-head)",
                             turn=extra[0] if isinstance(extra[0], int) else None)
