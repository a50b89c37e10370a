"""The run's configuration: the 17 knobs the study's driver sends, and the engine's rules.

Both are recorded in the genesis event, so a log always says what produced it.
Fractional knobs stay floats in the log (msgpack stores the IEEE-754 bits, so
the bytes are identical on every machine) and are turned into exact fractions
with :func:`exact` before any arithmetic touches a balance.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

import msgspec
from msgspec import Meta

# Upper bounds keep every amount the engine can derive far inside int64, the log's integer range.
Count = Annotated[int, Meta(ge=1, le=1_000_000)]
PositiveInt = Count
NonNegativeInt = Annotated[int, Meta(ge=0, le=10**12)]
NonNegativeFloat = Annotated[float, Meta(ge=0, le=10**9)]
PositiveFloat = Annotated[float, Meta(gt=0, le=10**9)]
Rate = Annotated[float, Meta(ge=0, le=1)]


class InvalidConfig(ValueError):
    """Raised when a configuration value is out of range or of the wrong type."""


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The engine knobs of ``run_experiments.py``, with the baseline values as defaults."""

    num_agents: PositiveInt = 8
    num_cores: PositiveInt = 4
    genesis_tokens_per_agent: NonNegativeInt = 1000
    commons_threshold_per_turn: NonNegativeInt = 100
    base_inference_rate: NonNegativeFloat = 1.0
    thinking_layer_discount: Rate = 0.1
    mine_base_weight: NonNegativeFloat = 10.0
    stake_weight_per_token: NonNegativeFloat = 0.01
    burn_weight_per_token: NonNegativeFloat = 0.05
    burn_decay_rate: Rate = 0.02
    burn_maturity_turns: NonNegativeInt = 3
    unstake_delay_turns: NonNegativeInt = 5
    interest_rate_per_turn: Rate = 0.01
    signing_bonus: NonNegativeInt = 50
    block_threshold: PositiveFloat = 20.0
    attested_confirmation_window: NonNegativeInt = 3
    slash_both_on_timeout: bool = True


class Rules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Engine constants and rule variants the driver does not send, calibrated against the paper.

    docs/mechanics.md gives the evidence for each default (rules R3, R4, R7, R9, R11, R12, R15,
    R17, R20, R23). The defaults are the rules of new runs; a genesis written before
    a field existed is upcast with that field's ``LEGACY_RULES`` or ``RULES_BEFORE_V<n>`` value (see
    ``events.types.RunGenesis``), so an old log keeps re-executing as it was played.
    """

    job_pay_units: NonNegativeInt = 28
    """With ``job_pay = "units"``, a job pays this many compute units at the current inference rate (R11)."""
    job_pay: Literal["compute", "units"] = "compute"
    """What a job pays: the price of the compute its input used (the inference fee it is spared), or
    ``job_pay_units`` at the current inference rate (R11)."""
    job_cooldown_turns: NonNegativeInt = 0
    """Turns an agent must wait after a job before the next one (R11)."""
    block_reward: NonNegativeInt = 0
    """Tokens minted to a block's winner (R9)."""
    transfer_fee_min: NonNegativeInt = 0
    study_cost: NonNegativeInt = 20
    study_discount: Rate = 0.5
    study_duration_turns: NonNegativeInt = 5
    sign_repeat: Literal["accept", "reject"] = "accept"
    """A second signature by a signer who already signed: a harmless no-op, or a ``duplicate`` error (R15)."""
    early_arbitrator_signature: Literal["count", "void"] = "count"
    """An arbitrator's signature on the bare proposal counts toward activation, or voids the contract (R15)."""
    offer_deadline: Literal["none", "delivery_turn"] = "none"
    """Unsigned offers stay open, or are refused ``too_late`` and lapse at their delivery turn (R20)."""
    attestation: Literal["principals", "all_parties"] = "principals"
    """Who must confirm delivery for an attested contract to settle: both principals, or all three parties (R17)."""
    supply_counts_collateral: bool = False
    """Whether the token supply counts collateral held in contracts (R23)."""
    block_gate: Literal["mining", "weight"] = "mining"
    """What must reach block_threshold: the entrants' mining weight alone (base weight per miner), or their
    whole lottery weight with stake and burns (R9)."""
    interest_billing: Literal["billed", "every_debtor"] = "billed"
    """Who pays interest: debtors whose input this turn is billed, since interest comes with the inference bill
    (an accepted job is not billed, so it carries none), or every debtor (R4)."""
    interest_to: Literal["sink", "owners"] = "sink"
    """Where charged interest goes: it leaves the supply, or it is paid to the core owners in equal shares (R4)."""
    stake_warmup: bool = True
    """Whether an accepted stake waits ``unstake_delay_turns`` as a pending stake (no lottery weight, not in
    ``staked``, counted in the supply) before it is staked, or is staked at once (R7)."""
    win_rewarms_stake: bool = True
    """Whether a block's winner's whole stake goes back to pending for ``unstake_delay_turns`` (R9)."""
    win_spends_burns: bool = True
    """Whether a block's winner's burns that weighed in the draw (matured by its turn) are spent (R9)."""
    billable_units: Literal["whole", "fractional"] = "whole"
    """How the inference fee counts compute (R3): in whole units (the discounted thinking rounded down, then
    times the rate), or in fractional units times the rate, the fee rounded down once."""


LEGACY_RULES = {"sign_repeat": "reject", "early_arbitrator_signature": "void", "offer_deadline": "delivery_turn",
                "attestation": "all_parties", "supply_counts_collateral": True, "block_gate": "weight"}
"""The rule variants of logs whose genesis predates these fields (run_genesis payload v1 or v2)."""

RULES_BEFORE_V4 = {"job_pay": "units", "interest_billing": "every_debtor", "interest_to": "owners"}
"""The money rules of logs whose genesis predates these fields (run_genesis payload v3 and older)."""

RULES_BEFORE_V5 = {"stake_warmup": False, "win_rewarms_stake": False, "win_spends_burns": False}
"""The stake rules of logs whose genesis predates these fields (run_genesis payload v4 and older)."""

RULES_BEFORE_V6 = {"billable_units": "fractional"}
"""The fee rule of logs whose genesis predates this field (run_genesis payload v5 and older)."""


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """Return the table of a TOML file; InvalidConfig says in one line why it cannot be read (``what`` names it)."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidConfig(f"{what} {path} not found") from None
    except IsADirectoryError:
        raise InvalidConfig(f"{what} {path} is a folder") from None
    except tomllib.TOMLDecodeError as err:
        raise InvalidConfig(f"{path}: not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise InvalidConfig(f"{path}: not a UTF-8 text file") from None


def load_struct(cls: type, data: Any, *, what: str):
    """Return ``cls`` built from plain data, or raise InvalidConfig naming the field."""
    if isinstance(data, cls):
        return data
    try:
        return msgspec.convert(data if data is not None else {}, cls)
    except msgspec.ValidationError as err:
        unknown = re.fullmatch(r"Object contains unknown field `(.*)`(?: - at `.*`)?", str(err))
        hint = suggest(unknown[1], cls.__struct_fields__) if unknown else ""
        raise InvalidConfig(f"invalid {what}: {err}{hint}") from None


def check_keys(table: dict[str, Any], allowed: Iterable[str], where: str) -> None:
    """Raise InvalidConfig for the first key of ``table`` not in ``allowed`` (with a "did you mean")."""
    allowed = tuple(allowed)
    for key in table:
        if key not in allowed:
            raise InvalidConfig(f"{where}{key}: unknown key{suggest(key, allowed)}; "
                                f"expected one of: {', '.join(allowed)}")


def suggest(word: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean X?)`` for the closest of ``choices`` to a mistyped ``word``, or ""."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def load_config(data: Any) -> Config:
    """Return a validated Config from a mapping (unknown or out-of-range fields refused)."""
    return load_struct(Config, data, what="config")


def load_rules(data: Any) -> Rules:
    """Return validated engine rules from a mapping."""
    return load_struct(Rules, data, what="rules")


@functools.lru_cache(maxsize=1024)
def exact(value: float | int) -> Fraction:
    """Return the exact decimal a knob was written as (``0.1`` -> ``1/10``).

    ``repr`` of a float is its shortest round-tripping decimal on every CPython
    since 3.1, so this is machine-independent; ``Fraction(0.1)`` would instead
    carry the binary approximation into the arithmetic.
    """
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
