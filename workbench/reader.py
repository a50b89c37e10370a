"""One run's log, read-only, for notebooks: its projection, its events and its per-turn tables.

>>> import simledger
>>> run = simledger.open_run("results/runs/baseline_101.db")          # doctest: +SKIP
>>> run.accounts().query("turn == 40")[["agent_id", "balance", "owns_core"]]  # doctest: +SKIP
>>> run.events(kind="block_produced", turns=range(10, 21))            # doctest: +SKIP
>>> run.state(turn=20).accounts["agent_0"].balance                      # doctest: +SKIP
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable

import msgspec

from simledger.events.envelope import decode_payload
from simledger.events.types import EVENT_TYPES, RunGenesis
from simledger.ledger.errors import NotALog
from simledger.ledger.replay import load_state, positioned_events
from simledger.ledger.store import Store
from simledger.ledger.turn_tables import ACCOUNT_COLUMNS, CONTRACT_COLUMNS, TURN_COLUMNS, RunTables, fold_tables
from simledger.projections.state import State
from .frames import to_frame

EVENT_FRAME_COLUMNS = ("seq", "turn", "kind", "actor", "contract_id", "data")
TABLES = {"accounts": ACCOUNT_COLUMNS, "turns": TURN_COLUMNS, "contracts": CONTRACT_COLUMNS}
DTYPES = {"accounts": {"owns_core": "bool"},
          "contracts": dict.fromkeys(("countersigned_turn", "activated_turn", "disputed_turn", "closed_turn"), "Int64")}


def open_run(path: str | Path) -> "RunLog":
    """Return the run log at ``path`` opened read-only (NotALog when it is not one).

    Nothing is verified here: run ``run.verify()`` (or ``simledger verify``) on a
    log you did not write yourself.
    """
    return RunLog(path)


class RunLog:
    """A run.db opened read-only. Its tables come from one fold of the log, made on first use.

    ``name``, ``scenario``, ``seed`` and ``params`` are what the run's genesis
    records about it (for a study run the regime; for a sweep run its scenario
    and parameter values).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with Store(self.path) as store:
            first = next(positioned_events(store, end_seq=0), None)
        if first is None or not isinstance(first[2], RunGenesis):
            raise NotALog(f"{self.path}: the log has no genesis")
        genesis = first[2]
        self.name: str = str(genesis.identity.get("run_name") or self.path.stem)
        self.scenario: str = str(genesis.identity.get("regime", ""))
        self.seed: int = genesis.seed
        self.params: dict[str, Any] = dict(genesis.identity.get("params") or {})
        self._tables: RunTables | None = None

    def __repr__(self) -> str:
        return f"<RunLog {self.name} ({self.path})>"

    def state(self, turn: int | None = None) -> State:
        """Return the projection at the end of ``turn`` (None: the last turn), as ``simledger replay`` shows it."""
        with Store(self.path) as store:
            return load_state(store, turn)

    def tables(self) -> RunTables:
        """Return the run's per-turn tables as rows (folded once, then kept)."""
        if self._tables is None:
            with Store(self.path) as store:
                self._tables = fold_tables(positioned_events(store))
        return self._tables

    def rows(self, table: str) -> list[tuple]:
        """Return the rows of ``accounts``, ``turns`` or ``contracts`` (columns in ``TABLES[table]``)."""
        return getattr(self.tables(), table)

    def frame(self, table: str):
        return to_frame(TABLES[table], self.rows(table), dtypes=DTYPES.get(table))

    def accounts(self):
        """Return one row per (turn, agent) at the end of each turn, genesis (turn 0) included.

        Columns: turn, agent, balance, staked, locked, wealth (balance + staked),
        owns_core, and what the turn moved: fees_paid, dividends (received),
        interest (charged).

        >>> run.accounts().pivot(index="turn", columns="agent_id", values="wealth")  # doctest: +SKIP
        """
        return self.frame("accounts")

    def turns(self):
        """Return one row per turn (turn 0 is the genesis).

        Columns: events, fees, dividends, interest (totals of the turn),
        block_winner (None without a block), settled and defaulted (contracts closed
        this turn), errors and errors_by_reason (JSON text, ``{"action/reason": n}``),
        gini_balance and gini_wealth (the study's Gini), token_supply, and
        contracts_<status>: how many contracts are in each status at the turn's end.

        >>> run.turns().plot(x="turn", y=["gini_balance", "gini_wealth"])  # doctest: +SKIP
        """
        return self.frame("turns")

    def contracts(self):
        """Return one row per contract in creation order (``rank``): terms, parties, status, outcome,
        and the turns of its lifecycle (proposed, countersigned, activated, disputed, closed; None when not reached).

        >>> run.contracts().groupby("status").size()  # doctest: +SKIP
        """
        return self.frame("contracts")

    def events(self, kind: str | Iterable[str] | None = None, turns: int | Iterable[int] | None = None,
               actor: str | None = None):
        """Return the events (seq order) as a DataFrame: seq, turn, kind, actor, contract_id, data.

        ``data`` is the decoded payload as a dict. Filter by event ``kind`` (one or
        several), ``turns`` (one turn, or any iterable such as ``range(10, 21)``) and
        ``actor`` (an agent id, or ``engine``).

        >>> run.events(kind="dividend_paid", actor="agent_3").data.str["amount"].sum()  # doctest: +SKIP
        """
        where, args = ["1"], []
        kinds = [kind] if isinstance(kind, str) else list(kind or [])
        for name in kinds:
            if name not in EVENT_TYPES:
                close = difflib.get_close_matches(name, EVENT_TYPES, n=1)
                raise ValueError(f"unknown event kind {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
        if kinds:
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            args += kinds
        if turns is not None:
            wanted = [turns] if isinstance(turns, int) else sorted({int(t) for t in turns})
            where.append(f"turn IN ({', '.join('?' * len(wanted))})" if wanted else "0")
            args += wanted
        if actor is not None:
            where.append("actor = ?")
            args.append(actor)
        with Store(self.path) as store:
            rows = store.select(" AND ".join(where), args)
        decoded = [(seq, turn, kind_, actor_, cid, msgspec.to_builtins(decode_payload(kind_, pv, payload)))
                   for seq, turn, kind_, actor_, cid, pv, payload, *_ in rows]
        return to_frame(EVENT_FRAME_COLUMNS, decoded)

    def verify(self):
        """Return ``simledger verify``'s result for this log (hashes, links, signatures, seals, read models)."""
        from simledger.ledger.verify import verify_log

        return verify_log(self.path)
