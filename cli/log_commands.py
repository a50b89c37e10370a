"""The researcher's commands on a stored run: replay, audit, diff, log, verify.

Each command is a thin wrapper over a library call (``ledger.replay``,
``ledger.audit``, ``ledger.diff``, ``ledger.verify``, ``ledger.reexecute``):
rich tables for people, ``--json`` for programs, and a one-line message with a
non-zero exit code for every user mistake.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import msgspec
import typer
from rich.markup import escape
from rich.table import Table

from ..events.types import EVENT_TYPES
from ..ledger.views import account_view, block_view, contract_view, core_views, event_view, seal_view
from ..projections.state import STATUSES, State
from .common import console, fail, handle_errors, print_json

TABLE_ROWS = 25
SIGNER_LEGEND = ("Input signers: agent (its own key), server for agent (custodial), seed key (anyone holding "
                 "the run's seed could have signed).")
OK, BAD = "✓", "✗"

RunPath = Annotated[Path, typer.Argument(metavar="RUN.db", help="A run's log (a simledger SQLite file).",
                                         show_default=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print a JSON document instead of tables.")]
UntilOption = Annotated[Optional[str], typer.Option(
    "--until", metavar="[turn] N", help="Stop at the end of turn N (written `--until turn 20` or `--until 20`).")]
EXTRA_ARGS = {"allow_extra_args": True}  # the N of `--until turn N` arrives as an extra argument


def reads_log(func: Callable) -> Callable:
    """Map library errors (and SQLite failures on a damaged file) to one-line messages, exit 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except sqlite3.Error as err:
            fail(f"cannot read the log: {err}")

    return handle_errors(wrapper)


def parse_until(until: str | None, rest: list[str] | None) -> int | None:
    """Return the turn of ``--until turn N`` / ``--until N`` (None when absent); fail on anything else."""
    rest = list(rest or [])
    if until is None:
        if rest:
            fail(f"unexpected argument {rest[0]!r}")
        return None
    text = until.strip().lower()
    if text == "turn":
        if len(rest) != 1:
            fail("--until turn needs one turn number, e.g. --until turn 20")
        text = rest.pop()
    elif rest:
        fail(f"unexpected argument {rest[0]!r}")
    for prefix in ("turn=", "turn:", "turn"):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    if not text.isdigit():
        fail(f"--until expects a turn number (>= 0), got {until!r}")
    return int(text)


def open_store(path: Path):
    from ..ledger.store import Store

    return Store(path)


def mark(ok: bool | None) -> str:
    return "-" if ok is None else OK if ok else BAD


def fmt(n: int) -> str:
    return f"{n:,}"


def print_overflow(shown: int, total: int) -> None:
    if total > shown:
        console.print(f"  … and {total - shown} more (use --json for all)", highlight=False)


# --- replay --------------------------------------------------------------------------


def get_contracts_by_status(state: State, agent: str | None, contract_id: str | None) -> dict[str, list[str]]:
    """Return contract ids grouped by status (open statuses first), filtered by agent or id."""
    groups: dict[str, list[str]] = {}
    for cid, contract in state.contracts.items():
        if contract_id is not None and cid != contract_id:
            continue
        if agent is not None and agent not in contract.parties():
            continue
        groups.setdefault(contract.status, []).append(cid)
    order = list(STATUSES)
    return dict(sorted(groups.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0])))


def replay_document(state: State, until: int | None, agent: str | None, contract_id: str | None) -> dict[str, Any]:
    """Return what ``replay`` shows, as one JSON-able document."""
    agents = [agent] if agent is not None else state.agents
    doc = {
        "run_id": state.run_id, "until_turn": until, "turn": state.sealed_turn, "events": state.events,
        "token_supply": state.token_supply(),
        "accounts": [account_view(state, a) for a in agents],
        "cores": [core for core in core_views(state) if agent is None or core["owner"] == agent],
        "contracts": get_contracts_by_status(state, agent, contract_id),
        "last_block": block_view(state), "last_seal": seal_view(state),
    }
    if contract_id is not None:
        doc["contract"] = contract_view(state.contracts[contract_id])
    return doc


def print_replay(doc: dict[str, Any], path: Path) -> None:
    """Print the replay document as tables."""
    where = f"end of turn {doc['turn']}" + ("" if doc["until_turn"] is not None else " (end of log)")
    console.print(f"[bold]{escape(str(path))}[/]  run {doc['run_id']}  {where}, {fmt(doc['events'])} events, "
                  f"token supply {fmt(doc['token_supply'])}", highlight=False)
    table = Table("agent", "balance", "staked", "wealth", "locked", title="accounts", title_justify="left")
    shown = doc["accounts"] if len(doc["accounts"]) <= TABLE_ROWS + 5 else doc["accounts"][:TABLE_ROWS]
    for row in shown:
        table.add_row(row["agent_id"], fmt(row["balance"]), fmt(row["staked"]), fmt(row["wealth"]), fmt(row["locked"]))
    console.print(table)
    print_overflow(len(table.rows), len(doc["accounts"]))
    if doc["cores"]:
        cores = Table("core", "owner", "share", title="core shares", title_justify="left")
        for row in doc["cores"]:
            cores.add_row(row["core_id"], row["owner"], f"{row['proportion_ppm'] / 10_000:g}%")
        console.print(cores)
    contracts = Table("status", "count", "contracts", title="contracts", title_justify="left")
    for status, ids in doc["contracts"].items():
        shown = ", ".join(ids[:8]) + (f", … (+{len(ids) - 8})" if len(ids) > 8 else "")
        contracts.add_row(status, str(len(ids)), shown)
    console.print(contracts if doc["contracts"] else "contracts: none")
    if "contract" in doc:
        print_contract_detail(doc["contract"])
    block, seal = doc["last_block"], doc["last_seal"]
    console.print("last block: " + (f"height {block['height']} in turn {block['turn']} (seq {block['seq']}), "
                                    f"winner {block['winner']}, reward {block['reward']}, {block['entrants']} entrants"
                                    if block else "none"), highlight=False)
    console.print("last seal:  " + (f"turn {seal['turn']} (seq {seal['seq']}), {seal['event_count']} events, "
                                    f"merkle root {seal['merkle_root'][:16]}…, state digest {seal['state_digest'][:16]}…"
                                    if seal else "none"), highlight=False)


def print_contract_detail(detail: dict[str, Any]) -> None:
    """Print a contract view (``ledger.views.contract_view``) in one paragraph."""
    terms, collateral = detail["terms"], detail["collateral"]
    console.print(
        f"{detail['contract_id']}: {detail['status']} ({detail['contract_type']}), proposer {detail['proposer']}, "
        f"counterparty {detail['counterparty']}, arbitrator {detail['arbitrator']}; price {terms['price']}, "
        f"delivery turn {terms['delivery_turn']}, penalty {detail['penalty']}, arbitrator fee {detail['arbitrator_fee']}, "
        f"collateral {collateral['proposer_locked']}/{collateral['counterparty_locked']}/"
        f"{collateral['arbitrator_locked']}; locked now {detail['locked'] or 'nothing'}; "
        f"events at seqs {', '.join(map(str, detail['event_seqs']))}", highlight=False, markup=False)


@reads_log
def replay(
    ctx: typer.Context,
    path: RunPath,
    until: UntilOption = None,
    agent: Annotated[Optional[str], typer.Option("--agent", help="Show only this agent (and its cores, contracts).")] = None,
    contract: Annotated[Optional[str], typer.Option("--contract", help="Show only this contract, in detail.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fold a run's log to the end of a turn and show its state.

    Balances, stakes and wealth per agent, core shares, contracts by status,
    the last block and seal, and the token supply. Verified checkpoints make
    this fast; nothing after the turn is read.

    Example: simledger replay runs/baseline_101.db --until turn 20 --agent agent_3
    """
    from ..ledger.replay import load_state

    turn = parse_until(until, ctx.args)
    with open_store(path) as store:
        state = load_state(store, turn)
    if agent is not None and agent not in state.accounts:
        fail(f"unknown agent {agent!r}")
    if contract is not None and contract not in state.contracts:
        when = f" by the end of turn {turn}" if turn is not None else ""
        fail(f"unknown contract {contract!r}{when}")
    doc = replay_document(state, turn, agent, contract)
    if as_json:
        print_json(doc)
    else:
        print_replay(doc, path)


# --- audit ---------------------------------------------------------------------------


def describe_event(kind: str, p: dict[str, Any]) -> str:
    """Return a one-line reading of a contract event's payload."""
    match kind:
        case "contract_proposed":
            o = p["offer"]
            t, c = o["terms"], o["collateral"]
            return (f"{p['proposer']} proposes {o['contract_type']} to {o['counterparty']}, arbitrator "
                    f"{o['arbitrator']}: price {t['price']}, delivery turn {t['delivery_turn']}, penalty {o['penalty']}, "
                    f"arbitrator fee {o['arbitrator_fee']}, collateral {c['proposer_locked']}/"
                    f"{c['counterparty_locked']}/{c['arbitrator_locked']}")
        case "contract_signed":
            return f"{p['signer']} signs as {p['role']} -> {p['status']}"
        case "collateral_locked" | "collateral_released" | "collateral_slashed":
            verb = kind.split("_")[1]
            return f"{p['agent']} collateral {verb}: {p['amount']}"
        case "contract_activated":
            return "active"
        case "delivery_confirmed":
            return f"{p['agent']} confirms delivery"
        case "delivery_disputed":
            return f"{p['agent']} disputes delivery"
        case "arbitrator_ruled":
            return f"{p['arbitrator']} rules for {p['ruling_for']}"
        case "contract_payment":
            return f"{p['purpose']}: {p['payer']} pays {p['payee']} {p['amount']}"
        case "contract_settled":
            return f"settled ({p['outcome']})"
        case "contract_defaulted":
            return f"defaulted ({p['reason']})"
    return json.dumps({k: v for k, v in p.items() if k != "type"}, sort_keys=True)


def describe_movements(entry) -> str:
    parts = []
    for move in entry.movements:
        deltas = " ".join(f"{name} {move[name]:+d}" for name in ("balance", "staked", "locked") if move[name])
        parts.append(f"{move['agent']}: {deltas}")
    parts += [f"{name} {value:+d}" for name, value in entry.supply.items()]
    return "; ".join(parts)


def print_contract_history(history) -> None:
    parties = ", ".join(f"{role} {agent}" for role, agent in history.parties.items())
    console.print(f"[bold]{escape(history.contract_id)}[/] ({history.status}): {escape(parties)}", highlight=False)
    table = Table("seq", "turn", "event", "what", "tokens moved", "checks")
    for e in history.entries:
        signed = f", signed by {e.input_signed_by}" if e.input_signed_by else ""
        what = describe_event(e.kind, e.payload) + (f" (input #{e.input_seq}{signed})" if e.input_seq is not None else "")
        checks = "".join(mark(x) for x in (e.hash_ok, e.signature_ok, e.input_signature_ok, e.included))
        table.add_row(str(e.seq), str(e.turn), e.kind, escape(what), escape(describe_movements(e)), checks)
    console.print(table)
    verdict = ("every hash, signature and inclusion proof checks" if history.all_checks_pass
               else "SOME CHECKS FAIL (marked ✗)")
    console.print(f"{len(history.entries)} events; {verdict}. checks = event hash, engine signature, the agent's "
                  "signature of the input behind it (- when none), inclusion proof against the turn's seal. "
                  f"{SIGNER_LEGEND}", highlight=False)


def print_statement(statement) -> None:
    console.print(f"[bold]account statement of {escape(statement.agent)}[/]: opening balance "
                  f"{fmt(statement.opening_balance)}, {len(statement.lines)} balance changes", highlight=False)
    table = Table("seq", "turn", "cause", "counterparty / contract", "detail", "change", "balance")
    for line in statement.lines:
        who = " ".join(x for x in (line.counterparty, line.contract_id) if x)
        table.add_row(str(line.seq), str(line.turn), line.kind, escape(who), escape(line.detail or ""),
                      f"{line.delta:+,}", fmt(line.balance))
    console.print(table)
    relation = "=" if statement.reconciled else "!="
    console.print(f"reconciliation: closing balance {fmt(statement.closing_balance)} {relation} projected balance "
                  f"{fmt(statement.projected_balance)} {mark(statement.reconciled)}", highlight=False)


@reads_log
def audit(
    path: RunPath,
    contract_id: Annotated[Optional[str], typer.Argument(metavar="CONTRACT_ID", help="The contract to audit.",
                                                         show_default=False)] = None,
    agent: Annotated[Optional[str], typer.Option("--agent", help="Print this agent's account statement instead.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Audit one contract's full history, or one agent's account statement.

    A contract audit lists every event about the contract in order (proposal,
    signatures, collateral, confirmations, disputes, rulings, payments,
    settlement or default), the tokens each moved, and checks each event's
    hash, signature, input signature and inclusion proof against its turn's
    seal. An account statement lists every balance change of an agent with its
    cause and running balance, reconciled to the projected final balance (exit
    1 when it does not reconcile or a check fails).

    Examples: simledger audit run.db contract_7    simledger audit run.db --agent agent_3
    """
    from ..ledger.audit import account_statement, contract_history

    if (contract_id is None) == (agent is None):
        fail("give either a CONTRACT_ID or --agent AGENT")
    with open_store(path) as store:
        if contract_id is not None:
            history = contract_history(store, contract_id)
            ok = history.all_checks_pass
            if as_json:
                print_json(history.to_dict())
            else:
                print_contract_history(history)
        else:
            statement = account_statement(store, agent)
            ok = statement.reconciled
            if as_json:
                print_json(statement.to_dict())
            else:
                print_statement(statement)
    if not ok:
        raise typer.Exit(1)


# --- diff ----------------------------------------------------------------------------


def print_section(title: str, rows: list[dict], columns: list[str], cells: Callable[[dict], list[str]]) -> None:
    if not rows:
        return
    table = Table(*columns, title=f"{title} ({len(rows)} differ)", title_justify="left")
    for row in rows[:TABLE_ROWS]:
        table.add_row(*[escape(str(c)) for c in cells(row)])
    console.print(table)
    print_overflow(min(len(rows), TABLE_ROWS), len(rows))


def account_cells(row: dict) -> list[str]:
    a, b, d = row["a"] or {}, row["b"] or {}, row["delta"] or {}
    return [row["agent"], *(f"{a.get(k, '-')} → {b.get(k, '-')} ({d[k]:+d})" if d else f"{a.get(k, '-')} → {b.get(k, '-')}"
                            for k in ("balance", "staked", "wealth"))]


def value_cells(row: dict) -> list[str]:
    delta = "" if row["delta"] is None else f"{row['delta']:+g}" if isinstance(row["delta"], float) else f"{row['delta']:+d}"
    return [row["name"], str(row["a"]), str(row["b"]), delta]


def describe_share(share: list | None) -> str:
    return "(none)" if share is None else f"{share[0]} {share[1] / 10_000:g}%"


def describe_divergence(d) -> str:
    if d is None:
        return "the logs are identical (every event hash matches)"
    sides = f"A has {d.kind_a or 'nothing'} {(d.hash_a or '')[:12]}, B has {d.kind_b or 'nothing'} {(d.hash_b or '')[:12]}"
    return f"first divergence: turn {d.turn} seq {d.seq} ({d.reason}): {sides}"


def print_diff(result, path_a: Path, path_b: Path) -> None:
    scope = f"end of turn {result.until_turn}" if result.until_turn is not None else "end of each log"
    console.print(f"A = {escape(str(path_a))} (turn {result.turn_a}), B = {escape(str(path_b))} (turn {result.turn_b}), "
                  f"compared at the {scope}", highlight=False)
    print_section("accounts", result.accounts, ["agent", "balance A → B", "staked A → B", "wealth A → B"], account_cells)
    print_section("contracts", result.contracts, ["contract", "status A", "status B"],
                  lambda r: [r["contract_id"], r["a"] or "(none)", r["b"] or "(none)"])
    print_section("core shares", result.cores, ["core", "owner A", "owner B"],
                  lambda r: [r["core_id"], describe_share(r["a"]), describe_share(r["b"])])
    print_section("chain", result.chain, ["item", "A", "B", "delta"], value_cells)
    print_section("summary metrics", result.metrics, ["metric", "A", "B", "delta"], value_cells)
    console.print(describe_divergence(result.divergence), highlight=False)
    console.print("projections are identical" if result.identical else "projections differ", highlight=False)


@reads_log
def diff(
    ctx: typer.Context,
    path_a: Annotated[Path, typer.Argument(metavar="A.db", help="The first run.", show_default=False)],
    path_b: Annotated[Path, typer.Argument(metavar="B.db", help="The second run.", show_default=False)],
    until: UntilOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare two runs: balances, contracts, cores, chain and summary metrics, and where the logs part.

    The first divergence is the first seq whose event hash differs (two seeds
    differ at the genesis: turn 0, seq 0). Exit 0 when the projections are
    identical, 1 when they differ, 2 on error, like diff(1).

    Example: simledger diff runs/baseline_101.db runs/baseline_102.db --until turn 20
    """
    from ..ledger.diff import diff_runs

    result = diff_runs(path_a, path_b, parse_until(until, ctx.args))
    if as_json:
        print_json(result.to_dict())
    else:
        print_diff(result, path_a, path_b)
    if not result.identical:
        raise typer.Exit(1)


# --- log -----------------------------------------------------------------------------


def build_event_filter(turn: int | None, kind: str | None, actor: str | None,
                       contract: str | None) -> tuple[str, list]:
    """Return a WHERE clause of fixed column names and its parameters (user values only as parameters)."""
    clauses, args = [], []
    for column, value in (("turn", turn), ("kind", kind), ("actor", actor), ("contract_id", contract)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    return (" AND ".join(clauses) or "1 = 1"), args


def check_log_filters(store, turn: int | None, kind: str | None, actor: str | None, contract: str | None) -> None:
    """Fail with one line when a filter names something the log cannot contain."""
    if kind is not None and kind not in EVENT_TYPES:
        fail(f"unknown event kind {kind!r} (kinds: {', '.join(sorted(EVENT_TYPES))})")
    if turn is not None and turn > store.head()[2]:
        fail(f"turn {turn} is beyond the log (last turn {store.head()[2]})")
    if actor is not None and actor != "engine" and actor not in store.genesis().agents:
        fail(f"unknown agent {actor!r}")
    if contract is not None and not store.select("contract_id = ?", [contract], limit=1):
        fail(f"unknown contract {contract!r}")


@reads_log
def log(
    path: RunPath,
    turn: Annotated[Optional[int], typer.Option("--turn", min=0, help="Only events of this turn.")] = None,
    kind: Annotated[Optional[str], typer.Option("--kind", help="Only events of this kind, e.g. block_produced.")] = None,
    actor: Annotated[Optional[str], typer.Option("--actor", help="Only events about this agent (or 'engine').")] = None,
    contract: Annotated[Optional[str], typer.Option("--contract", help="Only events about this contract.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Page size.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Rows to skip (for the next page).")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """List a run's events in seq order, filtered and paged.

    Example: simledger log run.db --turn 3 --kind contract_signed --limit 20
    """
    with open_store(path) as store:
        check_log_filters(store, turn, kind, actor, contract)
        where, args = build_event_filter(turn, kind, actor, contract)
        rows = store.select(where, args, limit=limit, offset=offset)
        key_source = store.genesis().key_source
    docs = [event_view(row, key_source=key_source) for row in rows]
    if as_json:
        print_json({"offset": offset, "limit": limit, "count": len(docs), "events": docs})
        return
    table = Table("seq", "turn", "kind", "actor", "contract", "signed by", "payload")
    for doc in docs:
        payload = {k: v for k, v in doc["payload"].items() if k != "type"} if isinstance(doc["payload"], dict) else doc["payload"]
        text = json.dumps(payload, sort_keys=True)
        table.add_row(str(doc["seq"]), str(doc["turn"]), doc["kind"], escape(doc["actor"]),
                      escape(doc["contract_id"] or ""), doc["signed_by"],
                      escape(text if len(text) <= 90 else text[:89] + "…"))
    console.print(table)
    more = f"; next page: --offset {offset + limit}" if len(docs) == limit else ""
    console.print(f"{len(docs)} events (offset {offset}){more}. {SIGNER_LEGEND}", highlight=False)


# --- verify --------------------------------------------------------------------------


@reads_log
def verify(
    path: RunPath,
    as_json: JsonFlag = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes checking signatures.")] = 1,
    reexecute_log: Annotated[bool, typer.Option(
        "--reexecute", help="Also feed the recorded inputs through the engine and compare every event hash.")] = False,
    keystore: Annotated[Optional[Path], typer.Option(
        "--keystore", metavar="DIR", help="Keys of a keystore-signed log (needed by --reexecute).")] = None,
    expect_head: Annotated[Optional[str], typer.Option(
        "--expect-head", metavar="FILE|HASH",
        help="Also check against a signed head (`simledger head`, or the RUN.head a study run writes) or a head "
             "hash: catches truncation, rollback and rewriting.",
    )] = None,
    engine_key: Annotated[Optional[str], typer.Option(
        "--engine-key", metavar="PUBKEY", help="Also require the log to be signed by this engine key (64 hex).")] = None,
) -> None:
    """Verify a run's log: every link, hash, signature and seal; print a one-line verdict and what it proves.

    With --reexecute, also re-run the recorded inputs through a fresh engine
    from the log's genesis and name the first event it does not reproduce.
    Exit 0 when the log verifies, 1 when it does not, 2 when the file is not a
    log or the command is misused.

    A log that verifies is intact; it is authentic only relative to something
    you kept. With --expect-head, check it against a head saved earlier: it
    fails when the log was truncated, rolled back or rewritten (naming the
    first missing seq), and passes a longer log only with a verifying
    consistency proof. With --engine-key, require the engine key you trust.
    Seed-derived keys prove nothing about who wrote a log: anyone with the
    seed can re-sign it.

    Example: simledger verify runs/baseline_101.db --expect-head runs/baseline_101.head
    """
    from ..ledger.authenticity import check_engine_key, describe_proof, parse_engine_key
    from ..ledger.head import load_expected, verify_head
    from ..ledger.verify import verify_log

    # A malformed checkpoint or key is a usage error (exit 2), even on a broken log.
    if expect_head is not None:
        load_expected(expect_head)
    if engine_key is not None:
        parse_engine_key(engine_key)
    result = verify_log(path, workers=workers)
    doc = msgspec.to_builtins(result)
    checks: list[tuple[str, Any]] = []  # (name, check with .ok and .message), in the order they print
    if result.ok:
        if expect_head is not None:
            checks.append(("expect_head", verify_head(path, expect_head)))
        if engine_key is not None:
            with open_store(path) as store:
                checks.append(("engine_key", check_engine_key(store.genesis(), engine_key)))
        if reexecute_log:
            from ..ledger.reexecute import reexecute

            checks.append(("reexecute", reexecute(path, keystore=keystore)))
    for name, check in checks:
        doc[name] = check.to_dict() if hasattr(check, "to_dict") else {"ok": check.ok, "message": check.message}
    ok = result.ok and all(check.ok for _, check in checks)
    lines = [result.message] + [("OK: " if check.ok else "FAILED: ") + check.message for _, check in checks]
    if reexecute_log and not result.ok:
        lines.append("re-execution skipped: the log does not verify")
    if ok:
        with open_store(path) as store:
            key_source = store.genesis().key_source
        passed = {name for name, _ in checks}
        doc["proved"] = describe_proof(key_source, pinned="expect_head" in passed, trusted_key="engine_key" in passed)
        lines.append(doc["proved"])
    # The message is the verdict: never "OK" beside ok false.
    failed = [line for line in lines if line.startswith("FAILED")]
    doc["message"] = failed[0] if failed else result.message
    if as_json:
        print_json({**doc, "ok": ok})
    else:
        for line in lines:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add replay, audit, diff, log and verify to the ``simledger`` app."""
    for command in (replay, audit, diff, log, verify):
        settings = EXTRA_ARGS if command in (replay, diff) else None
        app.command(command.__name__, context_settings=settings)(command)
