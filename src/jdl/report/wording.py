"""The fixed JDL wording: headline sentences, plain-language meaning and caveats.

Every sentence a published report uses about a result lives in the tables of
this module, so the wording can be audited (and changed) in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jdl.durations import Duration
from jdl.report.publishing import (
    display_rule,
    format_difference,
    format_gamma,
    format_interval,
    format_p_value,
    format_ratio,
    is_number,
    publishable_value,
)

# Direction of a confidence interval of the difference (participants minus comparison).
BELOW_ZERO = "below_zero"
ABOVE_ZERO = "above_zero"
SPANS_ZERO = "spans_zero"

# Keyed by (display, direction). {x} and {y} are published, unsigned magnitudes.
HEADLINE_WORDING: dict[tuple[str, str], str] = {
    ("percent", BELOW_ZERO): (
        "{subject} for {participants} is lower than for the matched comparison group: "
        "lower by between {x} and {y} percentage points. This is a statistically significant result."
    ),
    ("percent", ABOVE_ZERO): (
        "{subject} for {participants} is higher than for the matched comparison group: "
        "higher by between {x} and {y} percentage points. This is a statistically significant result."
    ),
    ("percent", SPANS_ZERO): (
        "{subject} for {participants} could be lower by as many as {x} percentage points "
        "or higher by as many as {y} percentage points; "
        "more people would be needed to determine the direction of the effect."
    ),
    ("per_100", BELOW_ZERO): (
        "{subject} for {participants} is lower than for the matched comparison group: "
        "lower by between {x} and {y} per 100 people. This is a statistically significant result."
    ),
    ("per_100", ABOVE_ZERO): (
        "{subject} for {participants} is higher than for the matched comparison group: "
        "higher by between {x} and {y} per 100 people. This is a statistically significant result."
    ),
    ("per_100", SPANS_ZERO): (
        "{subject} for {participants} could be lower by as many as {x} per 100 people "
        "or higher by as many as {y} per 100 people; "
        "more people would be needed to determine the direction of the effect."
    ),
    ("days", BELOW_ZERO): (
        "{subject} for {participants} is shorter than for the matched comparison group: "
        "shorter by between {x} and {y} days. This is a statistically significant result."
    ),
    ("days", ABOVE_ZERO): (
        "{subject} for {participants} is longer than for the matched comparison group: "
        "longer by between {x} and {y} days. This is a statistically significant result."
    ),
    ("days", SPANS_ZERO): (
        "{subject} for {participants} could be shorter by as many as {x} days "
        "or longer by as many as {y} days; "
        "more people would be needed to determine the direction of the effect."
    ),
    ("value", BELOW_ZERO): (
        "{subject} for {participants} is lower than for the matched comparison group: "
        "lower by between {x} and {y}. This is a statistically significant result."
    ),
    ("value", ABOVE_ZERO): (
        "{subject} for {participants} is higher than for the matched comparison group: "
        "higher by between {x} and {y}. This is a statistically significant result."
    ),
    ("value", SPANS_ZERO): (
        "{subject} for {participants} could be lower by as many as {x} "
        "or higher by as many as {y}; "
        "more people would be needed to determine the direction of the effect."
    ),
}

# Which two numbers, from (ci_low, ci_high), fill {x} and {y} in each direction. A result
# flagged not significant whose interval misses zero (possible with some variance methods)
# keeps the cautious wording, with the bound on the far side of zero shown as 0.
_MAGNITUDES: dict[str, Callable[[float, float], tuple[float, float]]] = {
    BELOW_ZERO: lambda low, high: (-high, -low),
    ABOVE_ZERO: lambda low, high: (low, high),
    SPANS_ZERO: lambda low, high: (max(-low, 0.0), max(high, 0.0)),
}

POWER_SENTENCE = (
    "To detect a difference of this size with 80% confidence (power), "
    "about {people_needed:,} people would be needed in each group."
)
SUPPRESSED_SENTENCE = "{subject} for {participants} is not published: {reason}."
DEFAULT_SUPPRESSION_REASON = "too few people to publish it without risk of identifying them"
NOT_ESTIMATED_SENTENCE = "{subject} for {participants} could not be estimated."

# {period} is the follow-up as an adjective ("one-year"). The order is the report's order.
MEASURE_SUBJECTS: dict[str, str] = {
    "reoffending_rate": "the {period} proven reoffending rate",
    "reoffending_frequency": "the {period} proven reoffending frequency",
    "days_to_first_reoffence": "the average time to first proven reoffence",
    "custody_rate": "the {period} rate of custodial sentences for proven reoffences",
    "custody_frequency": "the {period} frequency of custodial sentences for proven reoffences",
    "first_reoffence_indictable": "the rate of first proven reoffences that were indictable",
    "first_reoffence_either_way": "the rate of first proven reoffences that were triable either way",
    "first_reoffence_summary": "the rate of first proven reoffences that were summary offences",
    "employment_rate": "the proportion employed at any point in the {period} period",
    "days_employed": "the average number of days employed in the {period} period",
    "benefit_rate": "the proportion on an out-of-work benefit at any point in the {period} period",
    "days_on_out_of_work_benefit": "the average number of days on an out-of-work benefit in the {period} period",
}
# Added to a subject that does not name its period, when results have several follow-up windows.
WINDOW_PHRASE = " over the {period} follow-up"
PARTICIPANTS_BY_POPULATION: dict[str, str] = {
    "all": "participants",
    "reoffenders": "participants who reoffended",
}

# Which interval direction is an improvement, by display (lower is better except for days),
# for results that do not say so per measure with `lower_is_better`.
BETTER_DIRECTION: dict[str, str] = {
    "percent": BELOW_ZERO,
    "per_100": BELOW_ZERO,
    "days": ABOVE_ZERO,
    "value": BELOW_ZERO,
}

IMPROVED = "improved"
WORSENED = "worsened"
UNCLEAR = "unclear"
NOT_PUBLISHED = "not_published"

WHAT_THIS_MEANS: dict[str, tuple[str, ...]] = {
    IMPROVED: (
        "The analysis shows a statistically significant improvement in {subject} for the people "
        "who took part, compared with similar people who did not.",
        "This is evidence that, for the people analysed, taking part helped. It does not show how "
        "the support worked, or that the same result would be seen for other people.",
    ),
    WORSENED: (
        "The analysis shows that {subject} was statistically significantly worse for the people "
        "who took part than for similar people who did not.",
        "This does not necessarily mean that taking part made things worse: the people who took "
        "part may differ from the comparison group in ways the records cannot show. The result "
        "should be considered alongside other evidence about the programme.",
    ),
    UNCLEAR: (
        "The analysis cannot say whether taking part changed {subject}: the difference between "
        "participants and the matched comparison group is within the range that could arise by "
        "chance.",
        "This does not mean the programme had no effect. Evaluating more people would make it "
        "possible to reach a firmer conclusion.",
    ),
    NOT_PUBLISHED: (
        "The headline result is not published, to protect the privacy of the people involved "
        "(disclosure control). Other measures, where published, are shown below.",
    ),
}

CAVEATS: tuple[str, ...] = (
    "These results apply only to the people who were matched: participants who could be linked "
    "to national records, had an eligible index event in the study period and were matched to "
    "similar people. They may not apply to everyone the organisation works with.",
    "The analysis measures proven reoffending only. It cannot say that the programme caused any "
    "other outcomes, such as changes in employment, housing or wellbeing, and it does not show "
    "how the programme had its effect.",
    "The comparison group was matched on the characteristics listed in the method section. "
    "Participants may still differ from the comparison group in ways the records do not show "
    "(for example motivation to change), and such unobserved differences may remain and affect "
    "the results.",
    "Proven reoffending counts only offences that led to a conviction or caution within the "
    "follow-up and waiting periods; it does not capture all offending.",
    "A result that is not statistically significant does not show that the programme had no "
    "effect; it means that more people would be needed to tell.",
    "Figures are rounded as published: rates to whole percentages, differences in rates to whole "
    "percentage points, frequencies per 100 people to two decimal places and days to whole days. "
    "A result shown as * is not published, to protect the privacy of the people involved.",
)

# Measures from the optional employment (HMRC) and benefits (DWP) tables: when a report shows
# any of them, the "proven reoffending only" caveat gives way to SPELL_CAVEATS.
SPELL_MEASURES = ("employment_rate", "days_employed", "benefit_rate", "days_on_out_of_work_benefit")
SPELL_CAVEATS: tuple[str, ...] = (
    "The analysis measures proven reoffending, and employment and out-of-work benefits as recorded "
    "in national employment (HMRC) and benefit (DWP) data. Those records do not show all work "
    "(for example some self-employment and cash-in-hand work), and the analysis cannot say that the "
    "programme caused any other outcomes, such as changes in housing or wellbeing, or show how the "
    "programme had its effect.",
    "Employment and benefit measures count a spell that overlaps the follow-up period (the day after "
    "the index date to the end of the follow-up); days are counted once however many spells overlap.",
)


def caveats_for(measure_names: object) -> tuple[str, ...]:
    """The caveats of a report showing these measures (keys of results["measures"])."""
    names = set(measure_names) if isinstance(measure_names, Mapping | list | tuple | set) else set()
    if not names & set(SPELL_MEASURES):
        return CAVEATS
    return (CAVEATS[0], *SPELL_CAVEATS, *CAVEATS[2:])


_NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
)
_UNIT_ADJECTIVES = {"d": "day", "w": "week", "m": "month", "y": "year"}


def period_adjective(follow_up: str) -> str:
    """'1y' -> 'one-year', '18m' -> '18-month' (as in 'the one-year proven reoffending rate')."""
    duration = Duration.parse(follow_up)
    amount = (
        _NUMBER_WORDS[duration.amount]
        if duration.amount < len(_NUMBER_WORDS)
        else str(duration.amount)
    )
    return f"{amount}-{_UNIT_ADJECTIVES[duration.unit]}"


def measure_subject(measure: Mapping[str, Any], name: str | None, follow_up: str = "1y") -> str:
    """The noun phrase a sentence about this measure starts with (lower case).

    A measure of results with several follow-up windows carries its own window
    (`follow_up`) and the name of its outcome column (`column`), which win over
    `name` and `follow_up`; a subject that does not name its period then says it.
    """
    own_window = measure.get("follow_up")
    follow_up = str(own_window or follow_up)
    template = MEASURE_SUBJECTS.get(str(measure.get("column") or name or ""))
    if template is None:
        label = str(measure.get("label") or name or "this measure")
        article = "the mean " if measure.get("display") == "value" else "the "
        subject = article + label[:1].lower() + label[1:]
    else:
        subject = template.format(period=period_adjective(follow_up))
    if own_window and (template is None or "{period}" not in template):
        subject += WINDOW_PHRASE.format(period=period_adjective(follow_up))
    return subject


def participants_phrase(measure: Mapping[str, Any], organisation: str | None) -> str:
    base = PARTICIPANTS_BY_POPULATION.get(str(measure.get("population", "all")), "participants")
    return f"{organisation} {base}" if organisation else base


def interval_direction(measure: Mapping[str, Any]) -> str:
    """Where the confidence interval lies; a significance flag is needed for a definite direction."""
    low, high = measure["ci_low"], measure["ci_high"]
    if measure.get("significant") and high < 0:
        return BELOW_ZERO
    if measure.get("significant") and low > 0:
        return ABOVE_ZERO
    return SPANS_ZERO


def outcome(measure: Mapping[str, Any]) -> str:
    """Improved / worsened / unclear / not published, for the plain-language section."""
    if measure.get("suppressed") or not _is_estimated(measure):
        return NOT_PUBLISHED
    direction = interval_direction(measure)
    if direction == SPANS_ZERO:
        return UNCLEAR
    return IMPROVED if direction == better_direction(measure) else WORSENED


def better_direction(measure: Mapping[str, Any]) -> str:
    """The measure's own `lower_is_better` when results.json has it, else the display's default."""
    lower_is_better = measure.get("lower_is_better")
    if isinstance(lower_is_better, bool):
        return BELOW_ZERO if lower_is_better else ABOVE_ZERO
    return BETTER_DIRECTION[str(measure["display"])]


def headline_sentence(
    measure: Mapping[str, Any],
    *,
    organisation: str | None = None,
    name: str | None = None,
    follow_up: str = "1y",
) -> str:
    """The fixed JDL sentence for one measure of results.json.

    `organisation` names the participants ("Example Mentoring participants"); `name` is the
    measure's key in results["measures"] (it picks the subject phrase; without it the measure's
    label is used); `follow_up` gives the period adjective ("one-year").
    """
    fields = {
        "subject": measure_subject(measure, name, follow_up),
        "participants": participants_phrase(measure, organisation),
    }
    if measure.get("suppressed"):
        reason = str(measure.get("suppression_reason") or DEFAULT_SUPPRESSION_REASON).rstrip(".")
        return _sentence_case(SUPPRESSED_SENTENCE.format(reason=reason, **fields))
    if not _is_estimated(measure):
        return _sentence_case(NOT_ESTIMATED_SENTENCE.format(**fields))
    display = str(measure["display"])
    display_rule(display)  # an unknown display is reported with the allowed ones
    direction = interval_direction(measure)
    x, y = _MAGNITUDES[direction](measure["ci_low"], measure["ci_high"])
    sentence = HEADLINE_WORDING[(display, direction)].format(
        x=_published_magnitude(x, display), y=_published_magnitude(y, display), **fields
    )
    people_needed = measure.get("people_needed")
    if direction == SPANS_ZERO and people_needed is not None:
        sentence += " " + POWER_SENTENCE.format(people_needed=int(people_needed))
    return _sentence_case(sentence)


def what_this_means(
    measure: Mapping[str, Any], *, name: str | None, follow_up: str
) -> tuple[str, ...]:
    subject = measure_subject(measure, name, follow_up)
    return tuple(
        _sentence_case(p.format(subject=subject)) for p in WHAT_THIS_MEANS[outcome(measure)]
    )


def _is_estimated(measure: Mapping[str, Any]) -> bool:
    return is_number(measure.get("ci_low")) and is_number(measure.get("ci_high"))


def _published_magnitude(value: float, display: str) -> str:
    return f"{publishable_value(value, display):,}"


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- Multiplicity: adjusted p-values -------------------------------------------------------

MULTIPLICITY_ADJECTIVES: dict[str, str] = {
    "holm": "Holm-adjusted",
    "bonferroni": "Bonferroni-adjusted",
    "fdr_bh": "Benjamini-Hochberg-adjusted (false discovery rate)",
}
# Keyed by the family the adjusted measures form; {adjusted} is from MULTIPLICITY_ADJECTIVES.
MULTIPLICITY_FOOTNOTES: dict[str, str] = {
    "secondary": (
        "Adjusted p: {adjusted} across the {count} secondary {measures}; "
        "the pre-specified primary measure keeps its raw p-value."
    ),
    "all": "Adjusted p: {adjusted} across all {count} {measures}, the primary measure included.",
    "primary": "Adjusted p: {adjusted} across the {count} pre-specified primary {measures}.",
}
MULTIPLICITY_NOT_ADJUSTED = "p-values are not adjusted for multiple comparisons."
# {measures} with several follow-up windows: each result is one measure in one window.
MULTIPLICITY_WINDOW_RESULTS: dict[bool, str] = {
    True: "result (a measure in one of the {windows} follow-up windows)",
    False: "results (each measure in each of the {windows} follow-up windows)",
}
MULTIPLICITY_OTHER_METHOD = "Adjusted p: adjusted by the {method} method across {count} {measures}."
# {subjects}: measure subjects ("the average time to first proven reoffence").
NO_LONGER_SIGNIFICANT: dict[bool, str] = {
    True: "After adjustment for multiple comparisons, the difference in {subjects} is no longer "
    "statistically significant.",
    False: "After adjustment for multiple comparisons, the differences in {subjects} are no "
    "longer statistically significant.",
}


def multiplicity_footnote(method: str, family: str, count: int, *, windows: int = 1) -> str:
    """The footnote naming how one family of measures had its p-values adjusted."""
    if method == "none":
        return MULTIPLICITY_NOT_ADJUSTED
    measures = "measure" if count == 1 else "measures"
    if windows > 1:
        measures = MULTIPLICITY_WINDOW_RESULTS[count == 1].format(windows=windows)
    if method not in MULTIPLICITY_ADJECTIVES:
        return MULTIPLICITY_OTHER_METHOD.format(
            method=method, count=f"{count:,}", measures=measures
        )
    template = MULTIPLICITY_FOOTNOTES.get(family, MULTIPLICITY_FOOTNOTES["all"])
    return template.format(
        adjusted=MULTIPLICITY_ADJECTIVES[method], count=f"{count:,}", measures=measures
    )


def no_longer_significant(subjects: list[str]) -> str:
    return NO_LONGER_SIGNIFICANT[len(subjects) == 1].format(subjects=_join_labels(subjects))


# --- Ratios ------------------------------------------------------------------------------

RATIO_NAMES: dict[str, str] = {
    "risk_ratio": "Risk ratio",
    "odds_ratio": "Odds ratio",
    "rate_ratio": "Rate ratio",
}
RATIOS_NOTE = (
    "Ratios compare participants with the matched comparison group: a ratio below 1 means the "
    "rate or frequency was lower for participants, 1 means no difference and above 1 means "
    "higher. Ratios are shown to two decimal places, with {confidence} confidence intervals."
)


# --- Sensitivity to unmeasured differences -----------------------------------------------

# What the sensitivity sentences call the primary outcome, by measure name.
SENSITIVITY_OUTCOMES: dict[str, str] = {
    "custody_rate": "custodial sentences",
    "custody_frequency": "custodial sentences",
}
SENSITIVITY_DEFAULT_OUTCOME = "reoffending"
SENSITIVITY_OTHER_OUTCOME = "the outcome"

ROSENBAUM_FOUND = "found"
ROSENBAUM_NOT_SIGNIFICANT = "not_significant"
ROSENBAUM_BEYOND_MAX = "beyond_max"
ROSENBAUM_UNAVAILABLE = "unavailable"

ROSENBAUM_WORDING: dict[str, str] = {
    ROSENBAUM_FOUND: (
        "The result would stop being statistically significant if an unmeasured characteristic "
        "that also affects {outcome} made people Γ\u00a0=\u00a0{gamma} times more likely (in odds) to take "
        "part than matched people with the same recorded characteristics. Any smaller unmeasured "
        "difference would leave the result statistically significant."
    ),
    ROSENBAUM_NOT_SIGNIFICANT: (
        "In the matched-sets test used for this check, the result is not statistically "
        "significant even with no unmeasured difference (Γ\u00a0=\u00a01), so there is no significant "
        "result for an unmeasured characteristic to explain away, and the check cannot show how "
        "robust the result is."
    ),
    ROSENBAUM_BEYOND_MAX: (
        "The result stays statistically significant even if an unmeasured characteristic that "
        "also affects {outcome} made people Γ\u00a0=\u00a0{gamma_max} times more likely (in odds) to take "
        "part than matched people with the same recorded characteristics, the largest difference "
        "checked: it is robust to unmeasured differences at least that large."
    ),
    ROSENBAUM_UNAVAILABLE: "Rosenbaum bounds could not be calculated for this evaluation.",
}
ROSENBAUM_EXPLAINED = (
    "Γ (gamma) says how much more likely to take part one person could be than another who looks "
    "the same in the records, because of something the records do not show; Γ\u00a0=\u00a01 means no such "
    "difference. The larger the Γ a result can withstand, the more robust it is."
)
ROSENBAUM_METHOD = (
    "Method: {method}, over the {informative} of {sets} matched sets in which the outcome was not "
    "the same for everyone."
)
E_VALUE_SENTENCE = (
    "The estimated {ratio_name} (participants relative to the comparison group) is {ratio}. "
    "Following VanderWeele and Ding, an unmeasured confounder would need to be associated with "
    "both taking part and {outcome} by a risk ratio of at least {e_value} to explain away the "
    "estimate, and by a risk ratio of at least {e_value_ci} to move the confidence interval to "
    "include no difference."
)
E_VALUE_SENTENCE_INTERVAL_HAS_NO_DIFFERENCE = (
    "The estimated {ratio_name} (participants relative to the comparison group) is {ratio}. "
    "Following VanderWeele and Ding, an unmeasured confounder would need to be associated with "
    "both taking part and {outcome} by a risk ratio of at least {e_value} to explain away the "
    "estimate; the confidence interval already includes no difference."
)
SENSITIVITY_NOT_PUBLISHED = (
    "Sensitivity to unmeasured differences is not published, because the headline result is not "
    "published (disclosure control)."
)

PLACEBO_SENTENCE = (
    "As a placebo check, the same comparison was made on {outcome}, measured before the index "
    "date, which the programme cannot have changed. The difference between participants and the "
    "matched comparison group was {difference} ({confidence} confidence interval {interval}; "
    "p-value {p_value})."
)
PLACEBO_VERDICT: dict[bool, str] = {
    True: "This is consistent with no difference, as expected if the matched groups were alike "
    "before the programme.",
    False: "This is not consistent with no difference: the groups already differed before the "
    "programme could have had any effect, so part of the estimated effect may come from "
    "differences between the groups rather than from the programme.",
}
NOTE_SENTENCE = "Note: {note}."


def sensitivity_outcome(primary: str, measure: Mapping[str, Any]) -> str:
    """The outcome an unmeasured confounder would have to affect, in plain words."""
    if primary in SENSITIVITY_OUTCOMES:
        return SENSITIVITY_OUTCOMES[primary]
    if primary in MEASURE_SUBJECTS:
        return SENSITIVITY_DEFAULT_OUTCOME
    label = str(measure.get("label") or "")
    return label[:1].lower() + label[1:] if label else SENSITIVITY_OTHER_OUTCOME


def rosenbaum_case(rosenbaum: Mapping[str, Any], *, alpha: float | None) -> str:
    """Which Rosenbaum sentence applies.

    gamma_critical is the Γ at which the bound reaches alpha: 1 (or less) when the result is
    not significant even without hidden bias. A null gamma_critical means either that the
    bound stayed below alpha up to gamma_max or that the result was not significant at all;
    the grid's p-value at Γ = 1 (or, without a grid, the largest Γ checked) tells which.
    """
    if not rosenbaum.get("available", True):
        return ROSENBAUM_UNAVAILABLE
    gamma = rosenbaum.get("gamma_critical")
    if is_number(gamma):
        return ROSENBAUM_FOUND if gamma > 1.0 else ROSENBAUM_NOT_SIGNIFICANT
    grid = [point for point in rosenbaum.get("grid") or [] if len(point) == 2]
    if alpha is None or not grid:
        return ROSENBAUM_BEYOND_MAX
    p_at_one = min(grid, key=lambda point: point[0])[1]
    return ROSENBAUM_NOT_SIGNIFICANT if p_at_one >= alpha else ROSENBAUM_BEYOND_MAX


def rosenbaum_sentence(rosenbaum: Mapping[str, Any], *, outcome: str, alpha: float | None) -> str:
    case = rosenbaum_case(rosenbaum, alpha=alpha)
    return ROSENBAUM_WORDING[case].format(
        outcome=outcome,
        gamma=format_gamma(rosenbaum.get("gamma_critical")),
        gamma_max=format_gamma(rosenbaum.get("gamma_max")),
    )


def rosenbaum_method(rosenbaum: Mapping[str, Any]) -> str | None:
    informative, sets = rosenbaum.get("n_informative_sets"), rosenbaum.get("n_sets")
    if not (rosenbaum.get("method") and is_number(informative) and is_number(sets)):
        return None
    return ROSENBAUM_METHOD.format(
        method=str(rosenbaum["method"]), informative=f"{int(informative):,}", sets=f"{int(sets):,}"
    )


def e_value_sentence(e_value: Mapping[str, Any], *, ratio_name: str, outcome: str) -> str | None:
    if not (is_number(e_value.get("e_value")) and is_number(e_value.get("risk_ratio"))):
        return None
    e_value_ci = e_value.get("e_value_ci")
    interval_has_no_difference = not is_number(e_value_ci) or e_value_ci <= 1.0
    template = (
        E_VALUE_SENTENCE_INTERVAL_HAS_NO_DIFFERENCE
        if interval_has_no_difference
        else E_VALUE_SENTENCE
    )
    return template.format(
        ratio_name=ratio_name.lower(),
        ratio=format_ratio(e_value["risk_ratio"]),
        outcome=outcome,
        e_value=format_ratio(e_value["e_value"]),
        e_value_ci=format_ratio(e_value_ci),
    )


def placebo_sentences(placebo: Mapping[str, Any], *, confidence: str) -> tuple[str, ...]:
    """The placebo check and its verdict; the display defaults to plain values (2 dp)."""
    display = str(placebo.get("display") or "value")
    low, high = placebo.get("ci_low"), placebo.get("ci_high")
    consistent = placebo.get("consistent_with_no_effect")
    if not isinstance(consistent, bool) and is_number(low) and is_number(high):
        consistent = low <= 0 <= high
    outcome_name = str(placebo.get("label") or placebo.get("outcome") or "a pre-index outcome")
    sentences = [
        PLACEBO_SENTENCE.format(
            outcome=outcome_name.replace("_", " "),
            difference=format_difference(placebo.get("difference"), display),
            confidence=confidence,
            interval=format_interval(low, high, display),
            p_value=format_p_value(placebo.get("p_value")),
        )
    ]
    if isinstance(consistent, bool):
        sentences.append(PLACEBO_VERDICT[consistent])
    return tuple(sentences)


def note_sentence(note: object) -> str | None:
    text = str(note or "").strip().rstrip(".")
    return NOTE_SENTENCE.format(note=text) if text else None


# --- Time to first reoffence and subgroups ------------------------------------------------

SURVIVAL_CAPTION = (
    "Share of each group not yet proven to have reoffended, by days since the index date "
    "({method})."
)
# With several follow-up windows the curves run over the longest; {period} is "two-year".
SURVIVAL_CAPTION_WINDOW = (
    "Share of each group not yet proven to have reoffended, by days since the index date, over "
    "the {period} follow-up ({method})."
)
SURVIVAL_MARKDOWN_NOTE = (
    "_The Kaplan-Meier chart of time to first proven reoffence is in the HTML report._"
)
SUBGROUPS_INTRO = (
    "The headline result, {subject}, within groups of participants. Each subgroup was matched "
    "again on its own; a subgroup is reported only when enough participants were matched and "
    "the groups were balanced after matching."
)
SUBGROUPS_CAVEAT = (
    "Subgroup results are exploratory: the groups are smaller, so the intervals are wider, and "
    "with several subgroups some differences may look statistically significant by chance (the "
    "subgroup p-values are not adjusted for multiple comparisons). They should not be read as "
    "showing that the programme works better for one group than another."
)
SUBGROUP_NOT_REPORTED = "Not reported: {reason}."
SUBGROUP_DEFAULT_REASON = "the subgroup did not meet the conditions for reporting"


def subgroup_not_reported(reason: object) -> str:
    text = str(reason or SUBGROUP_DEFAULT_REASON).strip().rstrip(".")
    return SUBGROUP_NOT_REPORTED.format(reason=text)


def _join_labels(labels: list[str]) -> str:
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " and " + labels[-1]
