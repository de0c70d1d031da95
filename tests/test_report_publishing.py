"""Published rounding (DESIGN §1): whole %, per 100 people to 2 dp, whole days."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from jdl.errors import JdlUserError
from jdl.report import publishable_value
from jdl.report.publishing import (
    format_confidence,
    format_count,
    format_difference,
    format_gamma,
    format_interval,
    format_level,
    format_level_with_unit,
    format_p_value,
    format_ratio,
    format_ratio_interval,
)


@pytest.mark.parametrize(
    ("value", "display", "expected"),
    [
        (0.3449, "percent", "34"),
        (0.345, "percent", "35"),  # half away from zero on the decimal value, not binary 34.4999…
        (-0.345, "percent", "-35"),
        (0.0049, "percent", "0"),
        (-0.0049, "percent", "0"),  # never "-0"
        (1.234, "per_100", "123.40"),
        (1.23456, "per_100", "123.46"),
        (0.001249, "per_100", "0.12"),
        (171.5, "days", "172"),
        (23.4, "days", "23"),
    ],
)
def test_publishable_value(value: float, display: str, expected: str) -> None:
    assert publishable_value(value, display) == Decimal(expected)
    assert str(publishable_value(value, display)) == expected


def test_publishable_value_refuses_non_numbers() -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        publishable_value(math.nan, "percent")


def test_unknown_display_is_a_user_error_listing_choices() -> None:
    with pytest.raises(JdlUserError, match="allowed: percent, per_100, days"):
        publishable_value(0.5, "fraction")


def test_formats() -> None:
    assert format_level(0.3449, "percent") == "34%"
    assert format_level(12.345, "per_100") == "1,234.50"
    assert format_level_with_unit(1.234, "per_100") == "123.40 per 100 people"
    assert format_level_with_unit(171.6, "days") == "172 days"
    assert format_difference(-0.0678, "percent") == "-7"
    assert format_difference(0.0213, "percent") == "+2"
    assert format_difference(0.004, "percent") == "0"
    assert format_interval(-0.2634, 0.094, "per_100") == "-26.34 to +9.40"
    assert format_level(None, "percent") == "n/a"
    assert format_interval(math.nan, 0.1, "percent") == "n/a"


def test_numpy_scalars_are_numbers() -> None:
    assert format_level(np.float64(0.3449), "percent") == "34%"
    assert format_count(np.int64(2060)) == "2,060"
    assert format_count(np.bool_(True)) == "n/a"


def test_p_values_and_confidence() -> None:
    assert format_p_value(0.0004) == "<0.001"
    assert format_p_value(0.001) == "0.001"
    assert format_p_value(0.04951) == "0.050"
    assert format_p_value(None) == "n/a"
    assert format_confidence(0.95) == "95%"
    assert format_confidence(0.975) == "97.5%"


def test_ratios_and_gamma_round_half_up_to_two_decimals() -> None:
    assert format_ratio(0.835716) == "0.84"
    assert format_ratio(1.005) == "1.01"  # decimal rounding of the shortest repr, not binary
    assert format_ratio(None) == "n/a"
    assert format_ratio_interval(0.7281, 0.9592) == "0.73 to 0.96"
    assert format_ratio_interval(0.7281, float("nan")) == "n/a"
    assert [format_gamma(g) for g in (1.41625, 1.4, 5.0, 10.0, 1.005)] == [
        "1.42", "1.4", "5", "10", "1.01",
    ]  # fmt: skip
