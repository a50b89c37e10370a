"""The integer forms of the fee and interest formulas equal the exact-fraction formulas (R3, R4)."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from simledger.events.config import Config, exact
from simledger.ledger.engine import compute_inference_fee, compute_interest

RATES = st.sampled_from([0.0, 0.01, 0.02, 0.05, 0.1, 0.25, 0.3, 1.0, 1.5, 2.0, 3.0, 2.5, 0.333, 7.77])
UNITS = st.integers(min_value=0, max_value=10**9)


@given(rate=RATES, discount=st.sampled_from([0.0, 0.1, 0.15, 0.5, 0.333, 1.0]), thinking=UNITS, output=UNITS,
       threshold=st.integers(min_value=0, max_value=10**6))
def test_inference_fee_is_the_exact_floor(rate, discount, thinking, output, threshold):
    config = Config(base_inference_rate=rate, thinking_layer_discount=discount, commons_threshold_per_turn=threshold)
    billable = exact(discount) * thinking + output - threshold
    assert compute_inference_fee(config, thinking, output) == int(exact(rate) * max(Fraction(0), billable))


@given(rate=RATES, debt=st.integers(min_value=0, max_value=10**12))
def test_interest_is_the_exact_floor(rate, debt):
    assert compute_interest(rate, debt) == math.floor(exact(rate) * debt)
