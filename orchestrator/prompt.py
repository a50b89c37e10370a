"""Prompts: a replaceable template (TOML with ``system`` and ``user``), filled from an observation.

The template text travels with the run (it is recorded in the genesis), so the
messages of every turn can be rebuilt offline and matched against the recording.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import msgspec

from ..events.actions import Action
from ..ledger.errors import BadInput

ACTION_REFERENCE = """\
{"action": "mine"}                         enter this turn's block lottery
{"action": "job"}                          paid work (no inference fee this turn; cooldown applies)
{"action": "study"}                        pay study_cost for a discount on inference fees for a while
{"action": "stake", "amount": N}           lock N tokens as stake
{"action": "unstake", "amount": N}         unlock N staked tokens (returns after unstake_delay_turns)
{"action": "burn", "amount": N}            destroy N tokens for lottery weight that matures later
{"action": "transfer", "to": AGENT, "amount": N, "fee": F}
{"action": "bid_core", "core_id": "core_K", "amount": N}    turn 1 only: all-pay auction for a core
{"action": "propose_contract", "contract": {"counterparty": AGENT, "arbitrator": AGENT,
    "contract_type": "service"|"information_sale"|"forward"|"loan",
    "terms": {"description": TEXT, "price": N, "delivery_turn": T},
    "collateral": {"proposer_locked": N, "counterparty_locked": N, "arbitrator_locked": N},
    "penalty": N, "arbitrator_fee": N}}
{"action": "sign_contract", "contract_id": ID, "role": "counterparty"|"arbitrator"}
{"action": "confirm_delivery", "contract_id": ID}
{"action": "dispute_delivery", "contract_id": ID}
{"action": "arbitrator_ruling", "contract_id": ID, "ruling_for": AGENT}"""

PLACEHOLDERS = ("agent_id", "turn", "max_turns", "turns_left", "you", "cores_owned", "contracts", "others",
                "economy", "last_turn", "actions")


def default_template() -> dict[str, str]:
    """Return the shipped template (orchestrator/data/prompt.toml)."""
    text = resources.files("simledger.orchestrator").joinpath("data/prompt.toml").read_text()
    return parse_template(text, "the default template")


def load_template(path: str | Path | None) -> dict[str, str]:
    """Return the template in ``path`` (the default one when None); BadInput when it is not one."""
    if path is None:
        return default_template()
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise BadInput(f"cannot read template {path}: {err.strerror}") from None
    return parse_template(text, str(path))


def parse_template(text: str, where: str) -> dict[str, str]:
    """Return {"system", "user"} from template TOML text, checked to fill with the known placeholders."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise BadInput(f"{where} is not valid TOML: {err}") from None
    template = {part: doc.get(part) for part in ("system", "user")}
    check_template(template, where)
    return template


def check_template(template: dict, where: str) -> None:
    """Raise BadInput unless ``template`` has text ``system`` and ``user`` parts using only known placeholders."""
    if set(template) != {"system", "user"}:
        raise BadInput(f"{where} needs exactly a system and a user text")
    for part, value in template.items():
        if not isinstance(value, str):
            raise BadInput(f"{where} needs a string {part!r}")
        try:
            Template(value).substitute({name: "" for name in PLACEHOLDERS})
        except (KeyError, ValueError) as err:
            raise BadInput(f"{where}: {part} uses an unknown or broken placeholder ({err}); "
                           f"known: {', '.join('$' + p for p in PLACEHOLDERS)}") from None


def compact_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def render_messages(template: dict[str, str], seen: dict[str, Any]) -> list[dict[str, str]]:
    """Return the chat messages for one agent's observation (see ``observation.agent_observation``)."""
    values = {
        "agent_id": seen["agent_id"], "turn": seen["turn"], "max_turns": seen["max_turns"],
        "turns_left": seen["max_turns"] - seen["turn"], "actions": ACTION_REFERENCE,
        **{name: compact_json(seen[name]) for name in ("you", "cores_owned", "contracts", "others", "economy",
                                                       "last_turn")},
    }
    return [{"role": "system", "content": Template(template["system"]).substitute(values)},
            {"role": "user", "content": Template(template["user"]).substitute(values)}]


def answer_schema() -> dict[str, Any]:
    """Return the JSON schema of an answer: thinking, one action, optional speech."""
    action = msgspec.json.schema(Action)
    defs = action.pop("$defs", {})
    return {
        "type": "object",
        "properties": {"thinking": {"type": "string"}, "action": action,
                       "speech": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "required": ["thinking", "action"],
        "$defs": defs,
    }


def response_format(mode: str) -> dict[str, Any] | None:
    """Return the request's ``response_format`` for a structured-output mode."""
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "agent_turn", "schema": answer_schema()}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None
