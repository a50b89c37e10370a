"""The integer forms of the fee, interest and lottery weight formulas equal the exact-fraction formulas (R3, R4, R8, R9)."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from simledger.events.config import Config, exact
from simledger.ledger.engine import PPM, compute_burn_weight_ppm, compute_inference_fee, compute_interest, compute_weight_ppm
from simledger.projections.state import Account

RATES = st.sampled_from([0.0, 0.01, 0.02, 0.05, 0.1, 0.25, 0.3, 1.0, 1.5, 2.0, 3.0, 2.5, 0.333, 7.77])
UNITS = st.integers(min_value=0, max_value=10**9)


@given(rate=RATES, discount=st.sampled_from([0.0, 0.1, 0.15, 0.5, 0.333, 1.0]), thinking=UNITS, output=UNITS,
       threshold=st.integers(min_value=0, max_value=10**6))
def test_inference_fee_is_the_exact_floor(rate, discount, thinking, output, threshold):
    config = Config(base_inference_rate=rate, thinking_layer_discount=discount, commons_threshold_per_turn=threshold)
    fractional = exact(discount) * thinking + output - threshold
    whole = math.floor(exact(discount) * thinking) + output - threshold
    assert compute_inference_fee(config, thinking, output) == int(exact(rate) * max(0, whole))
    assert compute_inference_fee(config, thinking, output, whole_units=False) == int(
        exact(rate) * max(Fraction(0), fractional))


@given(rate=RATES, debt=st.integers(min_value=0, max_value=10**12))
def test_interest_is_the_exact_floor(rate, debt):
    assert compute_interest(rate, debt) == math.floor(exact(rate) * debt)


# Weights as a Config allows them (non-negative, decay in 0..1) and beyond (a Config built in code is not validated).
WEIGHTS = st.one_of(st.sampled_from([0.0, 0.01, 0.02, 0.05, 0.1, 0.333, 0.98, 1.0, 2.5, 10.0, 20.0]),
                    st.floats(min_value=-50, max_value=50, allow_nan=False))
BURNS = st.lists(st.tuples(st.integers(min_value=0, max_value=60), st.integers(min_value=1, max_value=10**12)),
                 max_size=12)


def fraction_burn_weight_ppm(config: Config, burns: list[tuple[int, int]], turn: int) -> int:
    """The burn weight as first written: a Fraction sum of every matured burn, then int()."""
    keep, per_token = 1 - exact(config.burn_decay_rate), exact(config.burn_weight_per_token)
    total = Fraction(0)
    for matures, amount in burns:
        if turn >= matures:
            total += amount * per_token * keep ** (turn - matures)
    return int(total * PPM)


@given(decay=WEIGHTS, per_token=WEIGHTS, burns=BURNS, turn=st.integers(min_value=0, max_value=60))
def test_burn_weight_is_the_exact_fraction_sum(decay, per_token, burns, turn):
    config = Config(burn_decay_rate=decay, burn_weight_per_token=per_token)
    assert compute_burn_weight_ppm(config, burns, turn) == fraction_burn_weight_ppm(config, burns, turn)


@given(base=WEIGHTS, per_token=WEIGHTS, staked=st.integers(min_value=-(10**12), max_value=10**12), burns=BURNS,
       turn=st.integers(min_value=0, max_value=60))
def test_lottery_weight_is_the_exact_fraction_sum(base, per_token, staked, burns, turn):
    config = Config(mine_base_weight=base, stake_weight_per_token=per_token)
    account = Account(staked=staked, burns=burns)
    weight = int((exact(base) + exact(per_token) * staked) * PPM) + fraction_burn_weight_ppm(config, burns, turn)
    assert compute_weight_ppm(config, account, turn) == weight
