"""The fixed JDL headline wording, checked against complete golden sentences."""

from __future__ import annotations

from typing import Any

import pytest

from jdl.errors import JdlUserError
from jdl.report import headline_sentence
from jdl.report.wording import HEADLINE_WORDING, what_this_means

ORG = "Example Mentoring"


def measure(
    display: str, low: float, high: float, *, significant: bool, **extra: Any
) -> dict[str, Any]:
    return {
        "label": "A label",
        "display": display,
        "population": "all",
        "treatment": 0.3,
        "comparison": 0.35,
        "difference": (low + high) / 2,
        "ci_low": low,
        "ci_high": high,
        "p_value": 0.01 if significant else 0.4,
        "significant": significant,
        "confidence": 0.95,
        "people_needed": None,
        "suppressed": False,
        "suppression_reason": None,
        **extra,
    }


def test_significant_lower_rate_uses_magnitudes_of_the_interval() -> None:
    sentence = headline_sentence(
        measure("percent", -0.1131, -0.0225, significant=True),
        organisation=ORG,
        name="reoffending_rate",
    )
    assert sentence == (
        "The one-year proven reoffending rate for Example Mentoring participants is lower than for the "
        "matched comparison group: lower by between 2 and 11 percentage points. "
        "This is a statistically significant result."
    )


def test_significant_higher_rate() -> None:
    sentence = headline_sentence(
        measure("percent", 0.0151, 0.0849, significant=True),
        organisation=ORG,
        name="reoffending_rate",
    )
    assert sentence == (
        "The one-year proven reoffending rate for Example Mentoring participants is higher than for the "
        "matched comparison group: higher by between 2 and 8 percentage points. "
        "This is a statistically significant result."
    )


def test_interval_spanning_zero_with_power_sentence() -> None:
    sentence = headline_sentence(
        measure("percent", -0.0634, 0.0281, significant=False, people_needed=2340),
        organisation=ORG,
        name="reoffending_rate",
    )
    assert sentence == (
        "The one-year proven reoffending rate for Example Mentoring participants could be lower by as many "
        "as 6 percentage points or higher by as many as 3 percentage points; more people would be needed to "
        "determine the direction of the effect. To detect a difference of this size with 80% confidence "
        "(power), about 2,340 people would be needed in each group."
    )


def test_interval_spanning_zero_without_people_needed_has_no_power_sentence() -> None:
    sentence = headline_sentence(
        measure("percent", -0.0634, 0.0281, significant=False),
        organisation=ORG,
        name="reoffending_rate",
    )
    assert sentence.endswith(
        "more people would be needed to determine the direction of the effect."
    )
    assert "power" not in sentence


def test_not_significant_interval_missing_zero_keeps_cautious_wording_without_negative_numbers() -> (
    None
):
    sentence = headline_sentence(
        measure("percent", -0.081, -0.004, significant=False),
        organisation=ORG,
        name="reoffending_rate",
    )
    assert (
        "could be lower by as many as 8 percentage points or higher by as many as 0 percentage"
        in sentence
    )
    assert "statistically significant" not in sentence


def test_frequency_is_worded_per_100_people_to_two_decimals() -> None:
    sentence = headline_sentence(
        measure("per_100", -0.41236, -0.0521, significant=True),
        organisation=ORG,
        name="reoffending_frequency",
    )
    assert sentence == (
        "The one-year proven reoffending frequency for Example Mentoring participants is lower than for the "
        "matched comparison group: lower by between 5.21 and 41.24 per 100 people. "
        "This is a statistically significant result."
    )


def test_frequency_spanning_zero() -> None:
    sentence = headline_sentence(
        measure("per_100", -0.2634, 0.094, significant=False),
        organisation=ORG,
        name="reoffending_frequency",
    )
    assert (
        "could be lower by as many as 26.34 per 100 people or higher by as many as 9.40 per 100 people;"
        in sentence
    )


def test_days_positive_difference_reads_longer() -> None:
    sentence = headline_sentence(
        measure("days", 5.56, 41.24, significant=True, population="reoffenders"),
        organisation=ORG,
        name="days_to_first_reoffence",
    )
    assert sentence == (
        "The average time to first proven reoffence for Example Mentoring participants who reoffended is "
        "longer than for the matched comparison group: longer by between 6 and 41 days. "
        "This is a statistically significant result."
    )


def test_days_negative_difference_reads_shorter() -> None:
    sentence = headline_sentence(
        measure("days", -30.4, -2.6, significant=True, population="reoffenders"),
        organisation=ORG,
        name="days_to_first_reoffence",
    )
    assert (
        "is shorter than for the matched comparison group: shorter by between 3 and 30 days."
        in sentence
    )


def test_days_spanning_zero() -> None:
    sentence = headline_sentence(
        measure("days", -12.2, 20.7, significant=False, population="reoffenders"),
        organisation=ORG,
        name="days_to_first_reoffence",
    )
    assert "could be shorter by as many as 12 days or longer by as many as 21 days;" in sentence


def test_wording_table_covers_every_display_and_direction_once() -> None:
    displays = {d for d, _ in HEADLINE_WORDING}
    directions = {k for _, k in HEADLINE_WORDING}
    assert displays == {"percent", "per_100", "days", "value"}
    assert len(HEADLINE_WORDING) == len(displays) * len(directions) == 12


def test_suppressed_measure_gives_reason_and_no_numbers() -> None:
    sentence = headline_sentence(
        measure(
            "percent",
            -0.2,
            -0.1,
            significant=True,
            suppressed=True,
            suppression_reason="n×p is below 10",
        ),
        organisation=ORG,
        name="custody_rate",
    )
    assert sentence == (
        "The one-year rate of custodial sentences for proven reoffences for Example Mentoring participants "
        "is not published: n×p is below 10."
    )


def test_follow_up_and_missing_organisation_and_name() -> None:
    two_year = headline_sentence(
        measure("percent", -0.1, -0.05, significant=True), name="reoffending_rate", follow_up="2y"
    )
    assert two_year.startswith("The two-year proven reoffending rate for participants is lower")
    unnamed = headline_sentence(
        measure("percent", -0.1, -0.05, significant=True, label="Employment rate")
    )
    assert unnamed.startswith("The employment rate for participants is lower")


def test_unknown_display_lists_allowed_kinds() -> None:
    with pytest.raises(JdlUserError, match="percent, per_100, days"):
        headline_sentence(measure("ratio", -0.1, -0.05, significant=True))


@pytest.mark.parametrize(
    ("display", "low", "high", "significant", "expected_start"),
    [
        (
            "percent",
            -0.1,
            -0.05,
            True,
            "The analysis shows a statistically significant improvement",
        ),
        (
            "percent",
            0.05,
            0.1,
            True,
            "The analysis shows that the one-year proven reoffending rate was",
        ),
        ("days", 5.0, 40.0, True, "The analysis shows a statistically significant improvement"),
        ("days", -40.0, -5.0, True, "The analysis shows that"),
        ("percent", -0.1, 0.05, False, "The analysis cannot say"),
    ],
)
def test_what_this_means_knows_which_direction_is_better(
    display: str, low: float, high: float, significant: bool, expected_start: str
) -> None:
    paragraphs = what_this_means(
        measure(display, low, high, significant=significant),
        name="reoffending_rate",
        follow_up="1y",
    )
    assert paragraphs[0].startswith(expected_start)


def test_lower_is_better_in_the_results_overrides_the_display_default() -> None:
    higher_is_better = measure("percent", 0.05, 0.1, significant=True, lower_is_better=False)
    paragraphs = what_this_means(higher_is_better, name="first_reoffence_summary", follow_up="1y")
    assert paragraphs[0].startswith("The analysis shows a statistically significant improvement")


def test_value_display_wording_for_table_mode_outcomes() -> None:
    measure = {
        "display": "value",
        "label": "Annual earnings",
        "population": "all",
        "significant": True,
        "ci_low": 1160.138,
        "ci_high": 2032.605,
        "lower_is_better": False,
    }
    assert headline_sentence(measure, organisation="Study Team", name="re78") == (
        "The mean annual earnings for Study Team participants is higher than for the matched comparison "
        "group: higher by between 1,160.14 and 2,032.61. This is a statistically significant result."
    )
