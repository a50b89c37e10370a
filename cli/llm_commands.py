"""``simledger run --policy llm``, ``simledger orchestrate`` and ``simledger usage``: LLM-driven runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..ledger.errors import BadInput
from ..study.policies import load_policy
from ..orchestrator.calls import CallRecord, CallRequest
from ..orchestrator.llm_policy import LLMSettings
from ..orchestrator.driver import LocalEngine, create_society_run, play_society, redrive_store, tokens_in
from ..orchestrator.prompt import load_template
from ..orchestrator.society import Players
from ..orchestrator.transport import LiveTransport, PendingCalls
from ..orchestrator.usage import Usage, load_prices, run_usage
from . import llm_options as opt
from .common import console, err_console, fail, handle_errors, print_json
from .output import show_table

STRUCTURED_MODES = ("json_schema", "json_object", "none")


def settings_from(options: opt.LLMOptions, regime_policy: dict[str, Any] | None = None) -> LLMSettings:
    """Return the recorded LLM settings: a regime's ``llm`` policy as written, else what the options ask for."""
    if regime_policy is not None and regime_policy.get("kind") == "llm":
        return load_policy(regime_policy)
    if not options.model:
        raise BadInput("--llm-model is required with --policy llm")
    if options.structured not in STRUCTURED_MODES:
        raise BadInput(f"--llm-structured must be one of {', '.join(STRUCTURED_MODES)}")
    return LLMSettings(model=options.model, template=load_template(options.template),
                       temperature=options.temperature, top_p=options.top_p, seed=options.seed,
                       max_tokens=options.max_tokens, structured=options.structured, max_retries=options.retries,
                       backoff_s=options.backoff, turn_token_budget=options.turn_budget)


def check_url(url: str | None) -> None:
    if url is not None and not url.startswith(("http://", "https://")):
        raise BadInput(f"--llm-url must be an http(s) URL, got {url!r}")


def live_transport(options: opt.LLMOptions) -> LiveTransport | None:
    """Return the transport to the model server, or None when no --llm-url was given."""
    if not options.url:
        return None
    check_url(options.url)
    return LiveTransport(options.url, timeout_s=options.timeout)


def chosen_llm_agents(options: opt.LLMOptions) -> list[str] | None:
    return [a.strip() for a in options.agents.split(",") if a.strip()] if options.agents else None


class CallProgress:
    """A progress bar over turns that also shows model calls, tokens and (with prices) money."""

    def __init__(self, turns: int, first_turn: int, prices: dict | None) -> None:
        self.prices, self.usage = prices, Usage()
        self.progress = Progress(TextColumn("[bold]turns"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[calls]}"), TimeElapsedColumn(), console=err_console,
                                 disable=not err_console.is_terminal)
        self.task = self.progress.add_task("turns", total=turns, completed=first_turn - 1, calls="")

    def on_call(self, request: CallRequest, record: CallRecord) -> None:
        self.usage.add(request.model, record.usage, bool(record.error), self.prices)
        self.progress.update(self.task, calls=describe_usage(self.usage))

    def on_turn(self, turn: int) -> None:
        self.progress.update(self.task, completed=turn)


def describe_usage(usage: Usage) -> str:
    text = (f"{usage.calls} calls ({usage.failed} failed), {usage.prompt_tokens:,} prompt + "
            f"{usage.completion_tokens:,} completion tokens")
    return text + (f", cost {usage.cost:.4f}" if usage.cost is not None else "")


def prepare_players(identity: dict[str, Any], seed: int, agents: list[str], options: opt.LLMOptions,
                    prices: dict | None) -> tuple[Players, LiveTransport | None]:
    """Return the players a genesis records and the live transport the options point at."""
    players = Players.from_identity(identity, seed=seed, agents=agents, concurrency=options.concurrency)
    for policy, _ in players.models.values():
        if prices is not None and policy.settings.model not in prices:
            raise BadInput(f"the price table has no entry for model {policy.settings.model!r}")
    return players, live_transport(options)


def play_with_progress(engine, society: Players, turns: int, live, pending, options: opt.LLMOptions,
                       prices: dict | None, tokens_so_far: int) -> None:
    progress = CallProgress(turns, engine.next_turn, prices)
    with progress.progress:
        play_society(engine, society, turns, live, pending, tokens_so_far=tokens_so_far,
                     run_token_budget=options.run_budget, on_call=progress.on_call, on_turn=progress.on_turn)


def run_society(db: Path, *, regime: str, seed: int, agents: int, turns: int, resume: bool,
                catalogue: dict[str, Any], options: opt.LLMOptions, as_json: bool = False) -> None:
    """Create (or with ``resume`` continue) a society run in-process and print where it ended."""
    from ..ledger.head import write_run_head
    from ..ledger.replay import positioned_events
    from ..ledger.run import Run

    prices = load_prices(options.prices)
    check_url(options.url)
    if resume:
        run = Run.open(db)
    else:
        if regime not in catalogue:
            fail(f"unknown regime {regime!r}; known: {', '.join(catalogue)}")
        if db.exists() and db.stat().st_size > 0:
            fail(f"{db} exists; use --resume to continue it or remove it")
        run = create_society_run(db, regime_name=regime, regime=catalogue[regime], seed=seed, agents=agents,
                                 turns=turns, llm_agents=chosen_llm_agents(options),
                                 settings=settings_from(options, catalogue[regime]["policy"]))
    try:
        turns = run.state.identity["turns"]
        society, live = prepare_players(run.state.identity, run.state.seed, run.state.agents, options, prices)
        redrive_store(run.store, society, turns)
        play_with_progress(LocalEngine(run), society, turns, live, PendingCalls(run.store.conn), options, prices,
                           tokens_in(positioned_events(run.store)))
        head_file = write_run_head(run)
        head, last, events = run.head_hash.hex(), run.state.sealed_turn, run.state.events
        report = run_usage(run.store, prices)
    finally:
        run.close()
    if as_json:
        print_json({"path": str(db), "turns": last, "events": events, "head_hash": head, "head_file": str(head_file),
                    "model_calls": report.run.to_dict()})
        return
    console.print(f"{db}: {last} turns, {events:,} events, head {head}; signed head in {head_file}"
                  " (keep a copy to pin it)", soft_wrap=True, highlight=False)
    console.print(f"model calls: {describe_usage(report.run)}", soft_wrap=True, highlight=False)


# --- orchestrate -------------------------------------------------------------------------


@handle_errors
@opt.with_llm_options
def orchestrate(
    engine: Annotated[str, typer.Option(help="URL of a running `simledger serve`.")],
    regime: Annotated[str, typer.Option(help="Regime of a new run (config and the study agents' policy).")] = "baseline",
    seed: Annotated[int, typer.Option(help="Seed of the run (the server does not reveal it: pass it again to continue).")] = 101,
    agents: Annotated[int, typer.Option(min=3)] = 8,
    turns: Annotated[int, typer.Option(min=1, help="Total turns of a new run.")] = 40,
    regimes_file: Annotated[Optional[Path], typer.Option()] = None,
    pending: Annotated[Path, typer.Option(help="Where answers of a turn not yet committed are kept.")] = Path("orchestrate-pending.db"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's turns and head as JSON.")] = False,
    llm: opt.LLMOptions = opt.LLMOptions(),
) -> None:
    """Play a `simledger serve` engine's agents with a language model: same log as `simledger run --policy llm`.

    An engine with no run yet gets the genesis (regime, seed, agents, turns and
    the LLM settings); an engine that holds a run is continued from its next
    turn, its recorded turns checked against the recorded answers first.

    Example: simledger orchestrate --engine http://127.0.0.1:3100 --llm-url http://127.0.0.1:8080/v1 --llm-model qwen --agents 5 --turns 10
    """
    import sqlite3

    from ..orchestrator.driver import redrive, society_genesis
    from ..orchestrator.remote import RemoteEngine
    from ..study.regimes import load_regimes

    options = llm
    prices = load_prices(options.prices)
    check_url(options.url)
    kept = PendingCalls(sqlite3.connect(pending, isolation_level=None))
    remote = RemoteEngine(engine, kept, seed=seed)
    try:
        if not remote.has_run():
            catalogue = load_regimes(regimes_file)
            if regime not in catalogue:
                fail(f"unknown regime {regime!r}; known: {', '.join(catalogue)}")
            remote.init(**society_genesis(regime_name=regime, regime=catalogue[regime], seed=seed, agents=agents,
                                          turns=turns, llm_agents=chosen_llm_agents(options),
                                          settings=settings_from(options, catalogue[regime]["policy"])))
        genesis = remote.genesis()
        turns = genesis.identity.get("turns")
        society, live = prepare_players(genesis.identity, genesis.seed, genesis.agents, options, prices)
        recorded = list(remote.positioned_events())
        redrive(recorded, remote.text, society, turns)
        play_with_progress(remote, society, turns, live, kept, options, prices, tokens_in(recorded))
        _, state = remote.request("GET", "/state")
    finally:
        remote.close()
        kept.conn.close()
    if as_json:
        print_json({"engine": engine, "turns": state["turn"], "head_hash": state["head_hash"]})
    else:
        console.print(f"{engine}: {state['turn']} turns, head {state['head_hash']}", soft_wrap=True)


# --- usage ------------------------------------------------------------------------------


@handle_errors
def usage(
    db: Annotated[Path, typer.Argument(help="A run's log.")],
    by: Annotated[str, typer.Option(help="agent, turn or run.")] = "agent",
    prices: opt.Prices = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Tokens (and with --llm-prices, money) the run's model calls used, per agent, turn or run.

    Example: simledger usage run.db --by turn --llm-prices prices.toml
    """
    from ..ledger.store import Store

    if by not in ("agent", "turn", "run"):
        fail("--by must be agent, turn or run")
    if not db.is_file():
        fail(f"no such log: {db}")
    with Store(db) as store:
        report = run_usage(store, load_prices(prices))
    if as_json:
        print_json(report.to_dict())
        return
    rows = {"run": {"run": report.run}, "agent": report.by_agent, "turn": report.by_turn}[by]
    table = Table(title=f"Model calls by {by}")
    for column in (by, "calls", "failed", "prompt", "cached", "completion", "reasoning", "cost"):
        table.add_column(column, justify="left" if column == by else "right")
    for name, u in rows.items():
        table.add_row(str(name), str(u.calls), str(u.failed), f"{u.prompt_tokens:,}", f"{u.cached_tokens:,}",
                      f"{u.completion_tokens:,}", f"{u.reasoning_tokens:,}", "-" if u.cost is None else f"{u.cost:.6f}")
    show_table(table)


def register(app: typer.Typer) -> None:
    app.command()(orchestrate)
    app.command()(usage)
