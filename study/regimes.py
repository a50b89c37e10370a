"""The study's regimes, shipped as data: engine config, policy parameters, engine rules.

``study/data/regimes.json`` holds the paper's three regimes. Users may pass
their own file of the same shape. ``validate_regime`` is the one validator of a
regime, for regimes files and sweep specs alike: every key is known (else a
"did you mean"), ``config`` is a ``Config``, ``policy`` a policy spec
(``study.policies``), ``rules`` (optional) a ``Rules``, ``llm`` (optional) the
model that plays some agents (``orchestrator.society_runs``).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from ..events.config import Config, InvalidConfig, Rules, check_keys, load_config, load_rules, suggest
from .model_runs import LLM_TABLE, model_runs
from .policies import load_policy
from .study_policy import StudyParams

POLICY_KEYS = tuple(StudyParams.__struct_fields__)
CONFIG_KNOBS = tuple(Config.__struct_fields__)
RULES_FIELDS = tuple(Rules.__struct_fields__)
SECTIONS = ("config", "policy", "rules")
DEFAULT_REGIMES = ("baseline", "coordination_push", "high_compute_cost")
FILE_KEYS = ("regimes", "_comment")


def load_regimes(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Return {name: {"config": {...}, "policy": {...}, ["rules": {...}]}}, validated."""
    try:
        if path is None:
            text = resources.files("simledger.study").joinpath("data/regimes.json").read_text()
        else:
            text = Path(path).read_text()
        data = json.loads(text)
    except FileNotFoundError:
        raise InvalidConfig(f"regimes file {path} not found") from None
    except json.JSONDecodeError as err:
        raise InvalidConfig(f"regimes file {path or 'regimes.json'} is not valid JSON: {err}") from None
    regimes = data.get("regimes") if isinstance(data, dict) else None
    if not isinstance(regimes, dict) or not regimes:
        raise InvalidConfig("a regimes file needs a non-empty object under \"regimes\"")
    check_keys(data, FILE_KEYS, f"regimes file {path or 'regimes.json'}: ")
    for name, regime in regimes.items():
        validate_regime(name, regime)
    return regimes


def validate_regime(name: str, regime: Any) -> None:
    """Raise InvalidConfig naming the regime and the field unless ``regime`` is valid."""
    if not isinstance(regime, dict) or not isinstance(regime.get("policy"), dict):
        raise InvalidConfig(f"regime {name!r}: needs \"config\" and \"policy\" objects")
    try:
        check_keys(regime, (*SECTIONS, LLM_TABLE), "")
        for section in SECTIONS:
            table = regime.get(section, {})
            if not isinstance(table, dict):
                raise InvalidConfig(f"{section} must be an object, got {table!r}")
            if section == "policy" and table.get("kind", "study") != "study":
                continue  # another policy kind: load_policy checks its own fields
            for key in table:
                if not (section == "policy" and key == "kind"):
                    canonical_knob(f"{section}.{key}", "")
        load_config({**regime.get("config", {}), "num_agents": 8})
        load_policy(regime["policy"])
        load_rules(regime.get("rules"))
        if LLM_TABLE in regime:
            model_runs().validate(regime)
    except InvalidConfig as err:
        raise InvalidConfig(f"regime {name!r}: {err}") from None


def canonical_knob(key: str, where: str) -> str:
    """Return a knob's canonical name: config knobs bare, ``policy.<name>``, ``rules.<name>``.

    The one vocabulary of a regime's parameters: regimes files and sweep specs
    (grid keys, scenario sections) name them the same way and get the same
    "did you mean" for a misspelt one.
    """
    section, _, name = key.rpartition(".")
    if section in ("", "config") and name in CONFIG_KNOBS:
        return name
    if section == "policy" and name in POLICY_KEYS:
        return key
    if section == "rules" and name in RULES_FIELDS:
        return key
    known = [*CONFIG_KNOBS, *(f"policy.{k}" for k in POLICY_KEYS), *(f"rules.{k}" for k in RULES_FIELDS)]
    raise InvalidConfig(f"{where}{key}: unknown knob{suggest(key, known)}; engine knobs are the Config fields "
                        f"({', '.join(CONFIG_KNOBS)}), policy parameters policy.<name>, engine rules rules.<name>")


def engine_config(regime: dict[str, Any], num_agents: int) -> dict[str, Any]:
    """Return the /init config the driver sends for this regime."""
    return {"num_agents": num_agents, **regime["config"]}


def regime_rules(regime: dict[str, Any]) -> dict[str, Any] | None:
    """Return the regime's engine-rule overrides (None: the defaults)."""
    return regime.get("rules") or None
