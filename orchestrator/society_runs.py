"""Experiment and sweep runs whose society has language-model agents: a regime's ``llm`` table.

A regime (of a regimes file, or a sweep spec's scenario) may carry an ``llm``
table. It says where the model is (``url``, ``timeout_s``, ``concurrency``),
which agents it plays (``agents``, default all; the others play the regime's
``policy``) and the recorded LLM settings (``model``, ``temperature``, ...)
unless the regime's ``policy`` is itself an ``llm`` spec. The endpoint is not
recorded; the settings are, in the genesis ``policies``, exactly as
``simledger run --policy llm`` records them, and the run is played by the same
driver, so its log re-executes offline like any LLM run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from ..events.config import InvalidConfig, check_keys, load_config, load_rules, load_struct
from ..ledger.errors import BadInput
from ..study.model_runs import plays_llm
from ..study.policies import load_policy
from .llm_policy import LLMSettings


class Endpoint(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where and how to call the model: may change between runs, so never recorded."""

    url: Annotated[str, Meta(pattern=r"^https?://")]
    agents: list[str] | None = None  # the agents the model plays (default: all)
    timeout_s: Annotated[float, Meta(ge=0.01)] = 60.0
    concurrency: Annotated[int, Meta(ge=1, le=64)] = 4  # calls in flight at once, per run


ENDPOINT_KEYS = tuple(Endpoint.__struct_fields__)
SETTINGS_KEYS = tuple(LLMSettings.__struct_fields__)


def read_llm_table(regime: dict[str, Any]) -> tuple[Endpoint, LLMSettings, dict[str, Any]]:
    """Return the regime's endpoint, LLM settings and the other agents' policy spec (InvalidConfig names the key)."""
    table, policy = regime.get("llm"), regime["policy"]
    if table is None:
        raise InvalidConfig("plays a language model but names no endpoint: give it an llm table with the url, "
                            "e.g. llm = { url = \"http://127.0.0.1:8080/v1\" }")
    if not isinstance(table, dict):
        raise InvalidConfig(f"llm must be a table, got {table!r}")
    check_keys(table, ENDPOINT_KEYS + SETTINGS_KEYS, "llm.")
    if "url" not in table:
        raise InvalidConfig("llm.url: the model's endpoint is required, e.g. \"http://127.0.0.1:8080/v1\"")
    endpoint = load_struct(Endpoint, {k: v for k, v in table.items() if k in ENDPOINT_KEYS}, what="llm table")
    settings = {k: v for k, v in table.items() if k not in ENDPOINT_KEYS}
    if policy.get("kind") == "llm":
        if settings or endpoint.agents is not None:
            raise InvalidConfig("the policy is an llm spec, played by every agent: give the model settings and "
                                "agents in the llm table (the policy then plays the other agents), not both")
        return endpoint, load_policy(policy), policy
    if "model" not in settings:
        raise InvalidConfig("llm.model: the model's name is required (or make the policy an llm spec)")
    return endpoint, load_policy({"kind": "llm", **settings}), policy


def society_plan(regime: dict[str, Any], agents: list[str], seed: int) -> tuple[Endpoint, dict[str, Any]] | None:
    """Return the endpoint and every agent's recorded policy spec of a regime that plays a model, else None.

    The sampling seed defaults, as for ``simledger run``, to one derived one way from the run's seed.
    """
    from .driver import sampling_seed  # the driver imports the study's regimes, which validate with this module
    from .society import society_identity

    if not plays_llm(regime):
        return None
    endpoint, settings, others = read_llm_table(regime)
    if settings.seed is None:
        settings = msgspec.structs.replace(settings, seed=sampling_seed(seed))
    try:
        policies = society_identity(agents, endpoint.agents or agents, settings, others)["policies"]
    except BadInput as err:
        raise InvalidConfig(f"llm.agents: {err}") from None
    return endpoint, policies


def resume_society_run(path: str | Path, endpoint: Endpoint, *, agents: list[str], seed: int, config: dict[str, Any],
                       rules: dict | None, identity: dict[str, Any], turns: int, keystore: str | Path | None = None):
    """Continue an unfinished log of this very run (identity, seed, agents, config, rules); None when it is not one.

    Its recorded turns are re-derived from the log (no model is asked again)
    and the answers kept for the turn that had not committed are reused, so a
    sweep rerun after a failure or a kill does not pay twice.
    """
    import sqlite3

    from ..ledger.errors import LedgerError
    from ..ledger.run import Run

    if not Path(path).is_file():
        return None
    try:
        run = Run.open(path, keystore=keystore)
    except (LedgerError, ValueError, sqlite3.DatabaseError):
        return None  # unreadable: replaced by a fresh run
    shape = (run.state.identity, run.state.seed, list(run.state.agents), run.state.config, run.state.rules)
    if shape != (identity, seed, agents, load_config(config), load_rules(rules)):
        run.close()
        return None
    return play_on(run, endpoint, turns)


def play_society_run(path: str | Path, endpoint: Endpoint, *, agents: list[str], seed: int, config: dict[str, Any],
                     rules: dict | None, identity: dict[str, Any], turns: int,
                     keystore: str | Path | None = None):
    """Create ``path`` and play it through turn ``turns`` with the model at ``endpoint``; write its signed head.

    Answers are kept as they arrive and each turn's texts committed with it, as
    in ``simledger run --policy llm``; the (open) run is returned.
    """
    from ..ledger.run import Run

    run = Run.create(path, agents=agents, seed=seed, config=config, rules=rules, identity=identity, keystore=keystore)
    return play_on(run, endpoint, turns)


def play_on(run, endpoint: Endpoint, turns: int):
    """Play an open society run from its next turn through ``turns``, write its signed head; close it on failure."""
    from ..ledger.head import write_run_head
    from ..ledger.replay import positioned_events
    from .driver import LocalEngine, play_society, redrive_store, tokens_in
    from .society import Players
    from .transport import LiveTransport, PendingCalls

    try:
        players = Players.from_identity(run.state.identity, seed=run.state.seed, agents=run.state.agents,
                                        concurrency=endpoint.concurrency)
        redrive_store(run.store, players, turns)
        live = LiveTransport(endpoint.url, timeout_s=endpoint.timeout_s)
        play_society(LocalEngine(run), players, turns, live, PendingCalls(run.store.conn),
                     tokens_so_far=tokens_in(positioned_events(run.store)))
        write_run_head(run)
    except BaseException:
        run.close()
        raise
    return run
