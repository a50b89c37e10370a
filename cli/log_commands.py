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
from .describe import describe_event
from .output import show_table

TABLE_ROWS = 25
SIGNER_LEGEND = ("Input signers: agent (its own key), server for agent (custodial), seed key (anyone holding "
                 "the run's seed could have signed).")
OK, BAD = "✓", "✗"

# readable=False: an unreadable log is reported by the library in one line, not by click's usage box.
RunPath = Annotated[Path, typer.Argument(metavar="RUN.db", help="A run's log (a simledger SQLite file).",
                                         show_default=False, readable=False)]
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
        console.print(f"  … and {total - shown} more (use --json for all)", highlight=False, soft_wrap=True)


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
                  f"token supply {fmt(doc['token_supply'])}", highlight=False, soft_wrap=True)
    table = Table("agent", "balance", "staked", "wealth", "locked", title="accounts", title_justify="left")
    shown = doc["accounts"] if len(doc["accounts"]) <= TABLE_ROWS + 5 else doc["accounts"][:TABLE_ROWS]
    for row in shown:
        table.add_row(row["agent_id"], fmt(row["balance"]), fmt(row["staked"]), fmt(row["wealth"]), fmt(row["locked"]))
    show_table(table)
    print_overflow(len(table.rows), len(doc["accounts"]))
    if doc["cores"]:
        cores = Table("core", "owner", "share", title="core shares", title_justify="left")
        for row in doc["cores"]:
            cores.add_row(row["core_id"], row["owner"], f"{row['proportion_ppm'] / 10_000:g}%")
        show_table(cores)
    contracts = Table("status", "count", "contracts", title="contracts", title_justify="left")
    for status, ids in doc["contracts"].items():
        shown = ", ".join(ids[:8]) + (f", … (+{len(ids) - 8})" if len(ids) > 8 else "")
        contracts.add_row(status, str(len(ids)), shown)
    if doc["contracts"]:
        show_table(contracts)
    else:
        console.print("contracts: none")
    if "contract" in doc:
        print_contract_detail(doc["contract"])
    block, seal = doc["last_block"], doc["last_seal"]
    console.print("last block: " + (f"height {block['height']} in turn {block['turn']} (seq {block['seq']}), "
                                    f"winner {block['winner']}, reward {block['reward']}, {block['entrants']} entrants"
                                    if block else "none"), highlight=False, soft_wrap=True)
    console.print("last seal:  " + (f"turn {seal['turn']} (seq {seal['seq']}), {seal['event_count']} events, "
                                    f"merkle root {seal['merkle_root'][:16]}…, state digest {seal['state_digest'][:16]}…"
                                    if seal else "none"), highlight=False, soft_wrap=True)


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


def print_transcript(agent: str, entries: list) -> None:
    """Print an agent's turns: calls, thinking, answer, action, outcome, fee."""
    table = Table(title=f"{agent}: turn by turn", show_lines=True)
    for column in ("turn", "calls", "thinking / answer", "action", "outcome", "fee"):
        table.add_column(column, overflow="fold")
    for e in entries:
        calls = ", ".join(f"{a['status'] or a['error']} {a['latency_ms']} ms" for a in e.attempts) or "-"
        tokens = sum(a["prompt_tokens"] + a["completion_tokens"] for a in e.attempts)
        said = str(e.thinking if e.thinking else e.answer)[:300]
        if e.verdict and e.verdict != "ok":
            said += f"\n({e.verdict})"
        table.add_row(str(e.turn), f"{calls}; {tokens:,} tokens" if e.attempts else "-", escape(said),
                      escape(json.dumps(e.action, sort_keys=True)[:200]), escape(e.outcome), str(e.fee))
    show_table(table)


def describe_movements(entry) -> str:
    parts = []
    for move in entry.movements:
        deltas = " ".join(f"{name} {move[name]:+d}" for name in ("balance", "staked", "locked") if move[name])
        parts.append(f"{move['agent_id']}: {deltas}")
    parts += [f"{name} {value:+d}" for name, value in entry.supply.items()]
    return "; ".join(parts)


def print_contract_history(history) -> None:
    parties = ", ".join(f"{role} {agent}" for role, agent in history.parties.items())
    console.print(f"[bold]{escape(history.contract_id)}[/] ({history.status}): {escape(parties)}", highlight=False,
                  soft_wrap=True)
    table = Table("seq", "turn", "event", "what", "tokens moved", "checks")
    for e in history.entries:
        signed = f", signed by {e.input_signed_by}" if e.input_signed_by else ""
        what = describe_event(e.kind, e.payload) + (f" (input #{e.input_seq}{signed})" if e.input_seq is not None else "")
        checks = "".join(mark(x) for x in (e.hash_ok, e.signature_ok, e.input_signature_ok, e.included))
        table.add_row(str(e.seq), str(e.turn), e.kind, escape(what), escape(describe_movements(e)), checks)
    show_table(table)
    verdict = ("every hash, signature and inclusion proof checks" if history.all_checks_pass
               else "SOME CHECKS FAIL (marked ✗)")
    console.print(f"{len(history.entries)} events; {verdict}. checks = event hash, engine signature, the agent's "
                  "signature of the input behind it (- when none), inclusion proof against the turn's seal. "
                  f"{SIGNER_LEGEND}", highlight=False, soft_wrap=True)


def print_statement(statement) -> None:
    console.print(f"[bold]account statement of {escape(statement.agent)}[/]: opening balance "
                  f"{fmt(statement.opening_balance)}, {len(statement.lines)} balance changes", highlight=False,
                  soft_wrap=True)
    table = Table("seq", "turn", "cause", "counterparty / contract", "detail", "change", "balance")
    for line in statement.lines:
        who = " ".join(x for x in (line.counterparty, line.contract_id) if x)
        table.add_row(str(line.seq), str(line.turn), line.kind, escape(who), escape(line.detail or ""),
                      f"{line.delta:+,}", fmt(line.balance))
    show_table(table)
    relation = "=" if statement.reconciled else "!="
    console.print(f"reconciliation: closing balance {fmt(statement.closing_balance)} {relation} projected balance "
                  f"{fmt(statement.projected_balance)} {mark(statement.reconciled)}", highlight=False, soft_wrap=True)


@reads_log
def audit(
    path: RunPath,
    contract_id: Annotated[Optional[str], typer.Argument(metavar="CONTRACT_ID", help="The contract to audit.",
                                                         show_default=False)] = None,
    agent: Annotated[Optional[str], typer.Option("--agent", help="Print this agent's account statement instead.")] = None,
    reasoning: Annotated[bool, typer.Option("--reasoning", help="With --agent: its turns instead (model calls, "
                                            "thinking, answer, action, outcome, fee).")] = False,
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

    With --reasoning, list the agent's turns instead: each model call attempt
    (status, latency, tokens), the thinking and answer as received, the action
    submitted and what the engine made of it, and the fee.

    Examples: simledger audit run.db contract_7    simledger audit run.db --agent agent_3 --reasoning
    """
    from ..ledger.audit import account_statement, contract_history

    if (contract_id is None) == (agent is None):
        fail("give either a CONTRACT_ID or --agent AGENT")
    if reasoning and agent is None:
        fail("--reasoning goes with --agent AGENT")
    with open_store(path) as store:
        if reasoning:
            from ..orchestrator.transcript import agent_transcript

            entries = agent_transcript(store, agent)
            ok = True
            if as_json:
                print_json([e.to_dict() for e in entries])
            else:
                print_transcript(agent, entries)
        elif contract_id is not None:
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
    show_table(table)
    print_overflow(min(len(rows), TABLE_ROWS), len(rows))


def account_cells(row: dict) -> list[str]:
    a, b, d = row["a"] or {}, row["b"] or {}, row["delta"] or {}
    return [row["agent_id"], *(f"{a.get(k, '-')} → {b.get(k, '-')} ({d[k]:+d})" if d else f"{a.get(k, '-')} → {b.get(k, '-')}"
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


def describe_side(kind: str | None, payload: Any) -> str:
    return "nothing" if kind is None else f"{kind}: {describe_payload(kind, payload)}"


def describe_economic_divergence(result) -> str:
    """Return where two runs that part at the genesis first differ in what happens, and how their genesis differs."""
    changed = ", ".join(f"{row['name']} {row['a']} → {row['b']}" for row in result.genesis[:6])
    more = f" and {len(result.genesis) - 6} more" if len(result.genesis) > 6 else ""
    lines = [f"the genesis differs in {changed}{more}" if changed else "the genesis differs"]
    for what, d in (("decisions (agents' inputs)", result.decision_divergence),
                    ("effects (any event)", result.economic_divergence)):
        if d is None:
            lines.append(f"{what}: the same in both logs")
        else:
            lines.append(f"{what} first differ in turn {d.turn} (seq {d.seq}): A has "
                         f"{describe_side(d.kind_a, d.payload_a)}; B has {describe_side(d.kind_b, d.payload_b)}")
    return "\n".join(lines)


def print_diff(result, path_a: Path, path_b: Path) -> None:
    scope = f"end of turn {result.until_turn}" if result.until_turn is not None else "end of each log"
    console.print(f"A = {escape(str(path_a))} (turn {result.turn_a}), B = {escape(str(path_b))} (turn {result.turn_b}), "
                  f"compared at the {scope}", highlight=False, soft_wrap=True)
    print_section("accounts", result.accounts, ["agent", "balance A → B", "staked A → B", "wealth A → B"], account_cells)
    print_section("contracts", result.contracts, ["contract", "status A", "status B"],
                  lambda r: [r["contract_id"], r["a"] or "(none)", r["b"] or "(none)"])
    print_section("core shares", result.cores, ["core", "owner A", "owner B"],
                  lambda r: [r["core_id"], describe_share(r["a"]), describe_share(r["b"])])
    print_section("chain", result.chain, ["item", "A", "B", "delta"], value_cells)
    print_section("summary metrics", result.metrics, ["metric", "A", "B", "delta"], value_cells)
    console.print(describe_divergence(result.divergence), highlight=False, markup=False, soft_wrap=True)
    if result.divergence is not None and result.divergence.seq == 0:
        console.print(describe_economic_divergence(result), highlight=False, markup=False, soft_wrap=True)
    console.print("projections are identical" if result.identical else "projections differ", highlight=False,
                  soft_wrap=True)


@reads_log
def diff(
    ctx: typer.Context,
    path_a: Annotated[Path, typer.Argument(metavar="A.db", help="The first run.", show_default=False, readable=False)],
    path_b: Annotated[Path, typer.Argument(metavar="B.db", help="The second run.", show_default=False, readable=False)],
    until: UntilOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare two runs: balances, contracts, cores, chain and summary metrics, and where the logs part.

    The first divergence is the first seq whose event hash differs. Runs with
    another seed, config or rules differ there at the genesis (turn 0, seq 0);
    for them diff also names the genesis fields that differ, the first turn
    whose agents' inputs differ and the first whose events differ in content
    (a block lottery draws from the hash chain, so its winner may differ as
    soon as the genesis does). Exit 0
    when the projections are identical, 1 when they differ, 2 on error, like diff(1).

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


def parse_turns(text: str) -> tuple[int, int | None]:
    """Return the (first, last) turn of ``10-20``, ``10-`` (to the end) or ``10``; fail on anything else."""
    low, dash, high = text.strip().partition("-")
    if not low.strip().isdigit() or (high.strip() and not high.strip().isdigit()):
        fail(f"--turns expects a turn or a range like 10-20 or 10- (got {text!r})")
    first = int(low)
    last = (int(high) if high.strip() else None) if dash else first
    if last is not None and last < first:
        fail(f"--turns {text}: the range ends before it starts")
    return first, last


def build_event_filter(turns: tuple[int, int | None] | None, kind: str | None, actor: str | None,
                       contract: str | None) -> tuple[str, list]:
    """Return a WHERE clause of fixed column names and its parameters (user values only as parameters)."""
    clauses, args = [], []
    if turns is not None:
        clauses.append("turn >= ?")
        args.append(turns[0])
        if turns[1] is not None:
            clauses.append("turn <= ?")
            args.append(turns[1])
    for column, value in (("kind", kind), ("actor", actor), ("contract_id", contract)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    return (" AND ".join(clauses) or "1 = 1"), args


def check_log_filters(store, turns: tuple[int, int | None] | None, kind: str | None, actor: str | None,
                      contract: str | None) -> None:
    """Fail with one line when a filter names something the log cannot contain."""
    if kind is not None and kind not in EVENT_TYPES:
        fail(f"unknown event kind {kind!r} (kinds: {', '.join(sorted(EVENT_TYPES))})")
    if turns is not None and turns[0] > store.head()[2]:
        fail(f"turn {turns[0]} is beyond the log (last turn {store.head()[2]})")
    if actor is not None and actor != "engine" and actor not in store.genesis().agents:
        fail(f"unknown agent {actor!r}")
    if contract is not None and not store.select("contract_id = ?", [contract], limit=1):
        fail(f"unknown contract {contract!r}")


def describe_payload(kind: str, payload: Any) -> str:
    """Return what an event says, or its raw text when the payload is not the kind's shape (a damaged row)."""
    if not isinstance(payload, dict):
        return str(payload)
    try:
        return describe_event(kind, payload)
    except (KeyError, TypeError, IndexError):
        return json.dumps({k: v for k, v in payload.items() if k != "type"}, sort_keys=True)


@reads_log
def log(
    path: RunPath,
    turns: Annotated[Optional[str], typer.Option(
        "--turns", metavar="A-B", help="Only events of these turns: 10-20, 10- (to the end) or 10.")] = None,
    turn: Annotated[Optional[int], typer.Option("--turn", min=0, help="Only events of this turn (= --turns N).")] = None,
    kind: Annotated[Optional[str], typer.Option("--kind", help="Only events of this kind, e.g. block_produced.")] = None,
    actor: Annotated[Optional[str], typer.Option("--actor", help="Only events about this agent (or 'engine').")] = None,
    contract: Annotated[Optional[str], typer.Option("--contract", help="Only events about this contract.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Page size.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Rows to skip (for the next page).")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """List a run's events in seq order, filtered and paged, each with a line saying what happened.

    Example: simledger log run.db --turns 10-20 --kind contract_signed --limit 20
    """
    if turn is not None and turns is not None:
        fail("give --turn or --turns, not both")
    span = parse_turns(turns) if turns is not None else (turn, turn) if turn is not None else None
    with open_store(path) as store:
        check_log_filters(store, span, kind, actor, contract)
        where, args = build_event_filter(span, kind, actor, contract)
        rows = store.select(where, args, limit=limit, offset=offset)
        key_source = store.genesis().key_source
    docs = [event_view(row, key_source=key_source) for row in rows]
    if as_json:
        print_json({"offset": offset, "limit": limit, "count": len(docs), "events": docs})
        return
    table = Table("seq", "turn", "kind", "signed by", "what")
    for doc in docs:
        what = describe_payload(doc["kind"], doc["payload"])
        if doc["contract_id"] and not what.startswith(doc["contract_id"]):
            what = f"{doc['contract_id']}: {what}"
        table.add_row(str(doc["seq"]), str(doc["turn"]), doc["kind"], doc["signed_by"], escape(what))
    show_table(table)
    more = f"; next page: --offset {offset + limit}" if len(docs) == limit else ""
    console.print(f"{len(docs)} events (offset {offset}){more}. {SIGNER_LEGEND}", highlight=False, soft_wrap=True)


# --- verify --------------------------------------------------------------------------


def check_log(path: Path, workers: int, reexecute_log: bool, keystore: Path | None, expect_head: str | None,
              engine_key: str | None) -> tuple[dict[str, Any], bool, list[str]]:
    """Verify one log (against a head, an engine key; re-executed): return its document, verdict and lines."""
    from ..ledger.authenticity import check_engine_key, describe_proof
    from ..ledger.head import verify_head
    from ..ledger.verify import verify_log

    result = verify_log(path, workers=workers)
    doc = msgspec.to_builtins(result)
    checks: list[tuple[str, Any]] = []  # (name, check with .ok, .message, .to_dict()), in the order they print
    if result.ok:
        with open_store(path) as store:
            genesis = store.genesis()
        if expect_head is not None:
            checks.append(("expect_head", verify_head(path, expect_head)))
        if engine_key is not None:
            checks.append(("engine_key", check_engine_key(genesis, engine_key)))
        if reexecute_log:
            from ..ledger.reexecute import reexecute

            checks.append(("reexecute", reexecute(path, keystore=keystore, make_driver=society_driver(path))))
    for name, check in checks:
        doc[name] = check.to_dict()
    ok = result.ok and all(check.ok for _, check in checks)
    lines = [result.message] + [("OK: " if check.ok else "FAILED: ") + check.message for _, check in checks]
    if reexecute_log and not result.ok:
        lines.append("re-execution skipped: the log does not verify")
    if ok:
        passed = {name for name, _ in checks}
        doc["proved"] = describe_proof(genesis.key_source, pinned="expect_head" in passed,
                                       trusted_key="engine_key" in passed)
        lines.append(doc["proved"])
    # The message is the verdict: never "OK" beside ok false.
    failed = [line for line in lines if line.startswith("FAILED")]
    doc["message"] = failed[0] if failed else result.message
    return {**doc, "ok": ok}, ok, lines


def check_log_safely(path: Path, *args) -> tuple[dict[str, Any], bool | None, list[str]]:
    """Return ``check_log``'s answer, or (error document, None, [message]) for a file that is not a readable log."""
    from ..events.config import InvalidConfig
    from ..events.keys import KeystoreError
    from ..ledger.errors import LedgerError

    try:
        return check_log(path, *args)
    except (LedgerError, InvalidConfig, KeystoreError, OSError, sqlite3.Error) as err:
        if isinstance(err, sqlite3.Error):
            message = f"cannot read the log: {err}"
        elif isinstance(err, OSError):
            message = f"{err.filename or path}: {err.strerror or err}"
        else:
            message = str(err)
        return {"ok": False, "error": message}, None, [f"error: {message}"]


def check_logs(paths: list[Path], workers: int, *args) -> list[tuple[dict[str, Any], bool | None, list[str]]]:
    """Verify ``paths``: one log uses every worker for its signatures, several run one log per worker."""
    if len(paths) == 1:
        return [check_log_safely(paths[0], workers, *args)]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(workers, len(paths))) as pool:
        return list(pool.map(check_log_safely, paths, *([arg] * len(paths) for arg in (1, *args))))


@handle_errors
def verify(
    paths: Annotated[list[Path], typer.Argument(metavar="RUN.db...", help="One or more run logs.",
                                                show_default=False, readable=False)],
    as_json: JsonFlag = False,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Processes (0 = all cores): one log's "
                                         "signatures, or several logs at once.")] = 0,
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
    """Verify run logs: every link, hash, signature and seal; print a one-line verdict per log and what it proves.

    Several logs are verified in parallel, one per worker. With --reexecute,
    also re-run the recorded inputs through a fresh engine from the log's
    genesis and name the first event it does not reproduce. Exit 0 when every
    log verifies, 1 when one does not, 2 when a file is not a log or the
    command is misused.

    A log that verifies is intact; it is authentic only relative to something
    you kept. With --expect-head (one log), check it against a head saved
    earlier: it fails when the log was truncated, rolled back or rewritten
    (naming the first missing seq), and passes a longer log only with a
    verifying consistency proof. With --engine-key, require the engine key you
    trust. Seed-derived keys prove nothing about who wrote a log: anyone with
    the seed can re-sign it.

    Examples: simledger verify runs/baseline_101.db --expect-head runs/baseline_101.head    simledger verify runs/*.db
    """
    from ..ledger.authenticity import parse_engine_key
    from ..ledger.head import load_expected
    from ..study.summary import NOT_LOGS

    if len(paths) > 1:  # `verify runs/*`: the signed heads and sidecars beside the logs are not logs
        paths = [path for path in paths if not path.name.endswith(NOT_LOGS)] or fail("none of these files is a log")
    # A malformed checkpoint or key is a usage error (exit 2), even on a broken log.
    if expect_head is not None:
        if len(paths) > 1:
            fail("--expect-head checks one log against its head; give one RUN.db")
        load_expected(expect_head)
    if engine_key is not None:
        parse_engine_key(engine_key)
    results = check_logs(paths, workers or default_workers(), reexecute_log, keystore, expect_head, engine_key)
    if len(paths) == 1 and results[0][1] is None:
        fail(results[0][2][0].removeprefix("error: "))
    if as_json:
        docs = [{"path": str(path), **doc} for path, (doc, _, _) in zip(paths, results)]
        print_json(docs[0] if len(paths) == 1 else {"ok": all(ok for _, ok, _ in results), "logs": docs})
    else:
        for path, (_, ok, lines) in zip(paths, results):
            prefix = f"{path}: " if len(paths) > 1 else ""
            for line in lines:
                console.print(prefix + line, highlight=False, markup=False, soft_wrap=True)
    if any(ok is None for _, ok, _ in results):
        raise typer.Exit(2)
    if not all(ok for _, ok, _ in results):
        raise typer.Exit(1)


def society_driver(path: Path):
    """Return the orchestrator's re-execution driver for a society run's log (LLM calls served from it), else None."""
    from ..ledger.store import Store
    from ..orchestrator.driver import reexecution_driver
    from ..orchestrator.society import is_society_run

    with Store(path) as store:
        return reexecution_driver if is_society_run(store.genesis().identity) else None


def default_workers() -> int:
    from ..study.experiment import default_workers as all_cores

    return all_cores()


def register(app: typer.Typer) -> None:
    """Add replay, audit, diff, log and verify to the ``simledger`` app."""
    for command in (replay, audit, diff, log, verify):
        settings = EXTRA_ARGS if command in (replay, diff) else None
        app.command(command.__name__, context_settings=settings)(command)
