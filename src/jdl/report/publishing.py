"""Published rounding and number formatting (DESIGN §1 disclosure control).

Rates are published to whole percentages, frequencies per 100 people to two
decimal places and days to whole days; differences use the same units (a
difference of two rates is in percentage points). Rounding is done in decimal
arithmetic on the shortest representation of the float, half away from zero,
so 0.345 publishes as 35% on every platform and a difference of -0.345 as -35.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from numbers import Real
from typing import TypeGuard

from jdl.errors import JdlUserError


@dataclass(frozen=True)
class DisplayRule:
    """How one `display` kind is scaled, rounded and named in a published report."""

    scale: Decimal
    quantum: Decimal
    level_suffix: str
    level_unit: str
    difference_unit: str
    units_label: str


DISPLAY_RULES: dict[str, DisplayRule] = {
    "percent": DisplayRule(
        scale=Decimal(100),
        quantum=Decimal(1),
        level_suffix="%",
        level_unit="",
        difference_unit="percentage points",
        units_label="% (difference in percentage points)",
    ),
    "per_100": DisplayRule(
        scale=Decimal(100),
        quantum=Decimal("0.01"),
        level_suffix="",
        level_unit="per 100 people",
        difference_unit="per 100 people",
        units_label="per 100 people",
    ),
    "days": DisplayRule(
        scale=Decimal(1),
        quantum=Decimal(1),
        level_suffix="",
        level_unit="days",
        difference_unit="days",
        units_label="days",
    ),
    # plain numeric outcomes of table mode (e.g. earnings in the Lalonde study)
    "value": DisplayRule(
        scale=Decimal(1),
        quantum=Decimal("0.01"),
        level_suffix="",
        level_unit="",
        difference_unit="",
        units_label="mean value",
    ),
}

NOT_AVAILABLE = "n/a"
SUPPRESSED = "*"


def display_rule(display: str) -> DisplayRule:
    try:
        return DISPLAY_RULES[display]
    except KeyError:
        raise JdlUserError.single(
            "results measures: display",
            "unknown display kind",
            value=display,
            allowed=", ".join(DISPLAY_RULES),
        ) from None


def is_number(value: object) -> TypeGuard[float]:
    # numbers.Real also admits numpy scalars (np.int64 is not an int subclass).
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))


def publishable_value(value: float, display: str) -> Decimal:
    """`value` (raw: a proportion, a per-person count or days) in published units and rounding.

    >>> publishable_value(0.3449, "percent")
    Decimal('34')
    >>> publishable_value(1.234, "per_100")
    Decimal('123.40')
    """
    if not is_number(value):
        raise ValueError(f"cannot publish {value!r}: not a finite number")
    rule = display_rule(display)
    scaled = Decimal(repr(float(value))) * rule.scale
    rounded = scaled.quantize(rule.quantum, rounding=ROUND_HALF_UP)
    # A tiny negative value rounds to "-0", which would read as a direction.
    return rounded.copy_abs() if rounded.is_zero() else rounded


def format_count(value: object) -> str:
    if not is_number(value):
        return NOT_AVAILABLE
    return f"{int(value):,}"


def format_level(value: object, display: str) -> str:
    """A group's value as published: '34%', '123.40', '245'."""
    if not is_number(value):
        return NOT_AVAILABLE
    return f"{publishable_value(value, display):,}{display_rule(display).level_suffix}"


def format_level_with_unit(value: object, display: str) -> str:
    """A group's value with its unit for prose: '34%', '123.40 per 100 people', '245 days'."""
    text = format_level(value, display)
    unit = display_rule(display).level_unit
    return f"{text} {unit}" if unit and text != NOT_AVAILABLE else text


def format_difference(value: object, display: str) -> str:
    """A signed difference as published: '-5', '+3', '0', '-12.30'."""
    if not is_number(value):
        return NOT_AVAILABLE
    published = publishable_value(value, display)
    sign = "+" if published > 0 else ""
    return f"{sign}{published:,}"


def format_interval(low: object, high: object, display: str) -> str:
    if not (is_number(low) and is_number(high)):
        return NOT_AVAILABLE
    return f"{format_difference(low, display)} to {format_difference(high, display)}"


def format_p_value(value: object) -> str:
    if not is_number(value):
        return NOT_AVAILABLE
    p = float(value)
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_fixed(value: object, decimals: int) -> str:
    if not is_number(value):
        return NOT_AVAILABLE
    return f"{float(value):,.{decimals}f}"


def format_confidence(confidence: object) -> str:
    """0.95 -> '95%' (0.975 -> '97.5%')."""
    if not is_number(confidence):
        return NOT_AVAILABLE
    percent = Decimal(repr(float(confidence))) * 100
    return f"{percent.normalize():f}%"


def _two_decimals(value: float) -> Decimal:
    rounded = Decimal(repr(float(value))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return rounded.copy_abs() if rounded.is_zero() else rounded


def format_ratio(value: object) -> str:
    """A ratio (risk, odds or rate ratio, E-value) to two decimal places: '0.86'."""
    if not is_number(value):
        return NOT_AVAILABLE
    return f"{_two_decimals(value):,}"


def format_ratio_interval(low: object, high: object) -> str:
    if not (is_number(low) and is_number(high)):
        return NOT_AVAILABLE
    return f"{format_ratio(low)} to {format_ratio(high)}"


def format_gamma(value: object) -> str:
    """Rosenbaum's Γ to at most two decimal places, without trailing zeros: '1.26', '1.4', '5'."""
    if not is_number(value):
        return NOT_AVAILABLE
    return f"{_two_decimals(value).normalize():f}"
