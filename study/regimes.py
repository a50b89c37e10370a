"""The study's regimes, shipped as data: engine config plus policy parameters.

``study/data/regimes.json`` holds the paper's three regimes. Users may pass
their own file of the same shape; it is validated with messages naming the
offending regime and field.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from ..events.config import InvalidConfig, load_config
from .policies import load_policy
from .study_policy import StudyParams

POLICY_KEYS = tuple(k for k in StudyParams.__struct_fields__)
DEFAULT_REGIMES = ("baseline", "coordination_push", "high_compute_cost")


def load_regimes(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Return {name: {"config": {...}, "policy": {...}}}, validated."""
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
    for name, regime in regimes.items():
        validate_regime(name, regime)
    return regimes


def validate_regime(name: str, regime: Any) -> None:
    if not isinstance(regime, dict) or not isinstance(regime.get("policy"), dict):
        raise InvalidConfig(f"regime {name!r}: needs \"config\" and \"policy\" objects")
    try:
        load_config({**regime.get("config", {}), "num_agents": 8})
    except InvalidConfig as err:
        raise InvalidConfig(f"regime {name!r}: {err}") from None
    try:
        load_policy(regime["policy"])
    except InvalidConfig as err:
        raise InvalidConfig(f"regime {name!r}: {err}") from None


def engine_config(regime: dict[str, Any], num_agents: int) -> dict[str, Any]:
    """Return the /init config the driver sends for this regime."""
    return {"num_agents": num_agents, **regime["config"]}
