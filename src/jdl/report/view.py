"""results.json -> the report's view: every value already worded and rounded as published.

Templates only lay these strings out; no statistic is computed here, only
rounding and wording of the numbers the engine wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from jdl.durations import Duration
from jdl.errors import JdlUserError
from jdl.report import wording
from jdl.report.publishing import (
    NOT_AVAILABLE,
    SUPPRESSED,
    display_rule,
    format_confidence,
    format_count,
    format_difference,
    format_fixed,
    format_gamma,
    format_interval,
    format_level,
    format_level_with_unit,
    format_p_value,
    format_ratio,
    format_ratio_interval,
    is_number,
)

ATTRITION_STAGES = ("submitted", "linked", "index_event_found", "eligible", "matched")
FLAG_LABELS = {"good": "Good", "acceptable": "Acceptable", "imbalanced": "Imbalanced"}
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
DURATION_UNITS = {
    "d": ("day", "days"),
    "w": ("week", "weeks"),
    "m": ("month", "months"),
    "y": ("year", "years"),
}
PARAMETER_LABELS = {
    "method": "Method",
    "ratio": "Comparison people per participant",
    "replace": "Comparison people may be reused",
    "caliper": "Caliper",
    "exact": "Matched exactly on",
    "estimand": "Estimand",
    "order": "Order participants are matched in",
    "discard": "Units outside common support dropped",
    "seed": "Seed",
    "confidence": "Confidence level",
    "variance": "Variance",
}
ESTIMAND_LABELS = {
    "ATT": "ATT (average effect on the people who took part)",
    "ATC": "ATC (average effect on the comparison group)",
    "ATE": "ATE (average effect in the whole population)",
}
LINK_LABELS = {"logit": "the propensity score", "linear_logit": "the logit of the propensity score"}
MATCHING_LABELS = {**PARAMETER_LABELS, "method": "Matching method"}
ESTIMATOR_LABELS = {**PARAMETER_LABELS, "method": "Estimator"}
ORDER_LABELS = {
    "largest": "largest propensity score first",
    "smallest": "smallest propensity score first",
    "random": "random order",
    "data": "the order of the data",
}
PROPENSITY_LABELS = {
    "model": "Propensity model",
    "column": "Propensity score column",
    "link": "Matched on",
}
CALIPER_SCALES = {
    "logit_sd": "standard deviations of the logit of the propensity score",
    "sd": "standard deviations of the matching distance",
    "absolute": "distance units",
}


@dataclass(frozen=True)
class MeasureRow:
    name: str
    label: str
    units: str
    treatment: str
    comparison: str
    difference: str
    interval: str
    p_value: str
    p_value_adjusted: str
    significant: str
    n_treatment: str
    n_comparison: str
    suppressed: bool
    is_primary: bool
    headline: str
    follow_up: str = ""  # the measure's window ("2 years"), with several follow-up windows


@dataclass(frozen=True)
class Footnote:
    label: str
    reason: str


@dataclass(frozen=True)
class Headline:
    label: str
    sentence: str
    treatment: str
    comparison: str
    confidence: str
    outcome: str
    suppressed: bool


@dataclass(frozen=True)
class AttritionStage:
    stage: str
    label: str
    count: str
    percent: str


@dataclass(frozen=True)
class BalanceRow:
    covariate: str
    mean_treatment: str
    mean_comparison_before: str
    mean_comparison_after: str
    smd_before: str
    smd_after: str
    variance_ratio_before: str
    variance_ratio_after: str
    flag: str
    flag_label: str


@dataclass(frozen=True)
class MethodItem:
    label: str
    value: str


@dataclass(frozen=True)
class RatioRow:
    measure: str
    ratio: str
    estimate: str
    interval: str
    suppressed: bool


@dataclass(frozen=True)
class GammaPoint:
    gamma: str
    p_upper: str


@dataclass(frozen=True)
class Sensitivity:
    """Rosenbaum bounds, the E-value and the placebo check; each part empty when absent."""

    rosenbaum: tuple[str, ...]
    grid: tuple[GammaPoint, ...]
    e_value: str | None
    notes: tuple[str, ...]
    placebo: tuple[str, ...]


@dataclass(frozen=True)
class SubgroupRow:
    by: str
    level: str
    reported: bool
    reason: str
    people: str
    treatment: str
    comparison: str
    difference: str
    interval: str
    significant: str
    suppressed: bool


@dataclass(frozen=True)
class Subgroups:
    intro: str
    units: str
    rows: tuple[SubgroupRow, ...]
    footnotes: tuple[Footnote, ...]
    caveat: str


@dataclass(frozen=True)
class Survival:
    """Time to first proven reoffence: the HTML chart's caption and the markdown note."""

    caption: str
    markdown_note: str


@dataclass(frozen=True)
class ReportView:
    title: str
    organisation: str
    spec_id: str
    jdl_version: str
    mode: str
    seed: str
    headline: Headline | None
    what_this_means: tuple[str, ...]
    sample_summary: str
    attrition: tuple[AttritionStage, ...]
    measures: tuple[MeasureRow, ...]
    follow_up_column: bool  # several follow-up windows: the tables name each row's window
    footnotes: tuple[Footnote, ...]
    adjusted_p: bool
    multiplicity_notes: tuple[str, ...]
    ratios: tuple[RatioRow, ...]
    ratios_note: str
    survival: Survival | None
    subgroups: Subgroups | None
    sensitivity: Sensitivity | None
    confidence: str
    naive: tuple[MeasureRow, ...]
    balance: tuple[BalanceRow, ...]
    method: tuple[MethodItem, ...]
    matching: tuple[MethodItem, ...]
    estimator: tuple[MethodItem, ...]
    covariates: tuple[str, ...]
    caveats: tuple[str, ...]
    warnings: tuple[str, ...]


def build_view(results: Mapping[str, Any]) -> ReportView:
    for key in ("title", "organisation", "measures", "n"):
        if key not in results:
            raise JdlUserError.single(
                "results",
                f"the results have no {key!r}",
                hint="render a results.json written by `jdl run`",
            )
    organisation = str(results["organisation"])
    method = results.get("method") or {}
    follow_up = str(method.get("follow_up") or "1y")
    primary = str(results.get("primary") or "")
    measures: Mapping[str, Mapping[str, Any]] = results["measures"]
    primary_measure = measures.get(primary)
    inference: Mapping[str, Any] = results.get("inference") or {}
    confidence = _confidence(primary_measure, method)
    windows = len(method.get("follow_up_windows") or [])
    rows = tuple(
        _measure_row(name, measures[name], organisation, follow_up, is_primary=name == primary)
        for name in _in_report_order(measures)
    )
    return ReportView(
        title=str(results["title"]),
        organisation=organisation,
        spec_id=str(results.get("spec_id", "")),
        jdl_version=str(results.get("jdl_version", "")),
        mode=str(results.get("mode", "records")),
        seed=str(results.get("seed", NOT_AVAILABLE)),
        headline=_headline(primary, primary_measure, organisation, follow_up),
        what_this_means=(
            wording.what_this_means(primary_measure, name=primary, follow_up=follow_up)
            if primary_measure is not None
            else ()
        ),
        sample_summary=_sample_summary(results["n"]),
        attrition=_attrition(results.get("attrition") or []),
        measures=rows,
        follow_up_column=windows > 1,
        footnotes=tuple(
            Footnote(_windowed_label(row.label, measures[row.name]), _suppression_reason(measures[row.name]))
            for row in rows
            if row.suppressed
        ),
        adjusted_p=_shows_adjusted_p(measures),
        multiplicity_notes=_multiplicity_notes(measures, follow_up, windows),
        ratios=_ratio_rows(measures),
        ratios_note=wording.RATIOS_NOTE.format(confidence=confidence),
        survival=_survival(inference, measures),
        subgroups=_subgroups(results.get("subgroups") or [], primary, primary_measure, follow_up),
        sensitivity=_sensitivity(inference, primary, primary_measure, confidence),
        confidence=confidence,
        naive=_naive_rows(results.get("naive") or {}, measures, primary),
        balance=tuple(_balance_row(row) for row in results.get("balance") or []),
        method=_method_items(results, follow_up),
        matching=_parameter_items(method.get("matching") or {}, MATCHING_LABELS)
        + _parameter_items(method.get("propensity") or {}, PROPENSITY_LABELS),
        estimator=_parameter_items(method.get("estimator") or {}, ESTIMATOR_LABELS),
        covariates=tuple(str(c) for c in method.get("covariates") or []),
        caveats=wording.caveats_for(measures),
        warnings=tuple(str(w) for w in results.get("warnings") or []),
    )


def _headline(
    name: str, measure: Mapping[str, Any] | None, organisation: str, follow_up: str
) -> Headline | None:
    if measure is None:
        return None
    suppressed = bool(measure.get("suppressed"))
    display = str(measure.get("display"))
    return Headline(
        label=_windowed_label(str(measure.get("label") or name), measure),
        sentence=wording.headline_sentence(
            measure, organisation=organisation, name=name, follow_up=follow_up
        ),
        treatment=SUPPRESSED
        if suppressed
        else format_level_with_unit(measure.get("treatment"), display),
        comparison=SUPPRESSED
        if suppressed
        else format_level_with_unit(measure.get("comparison"), display),
        confidence=format_confidence(measure.get("confidence")),
        outcome=wording.outcome(measure),
        suppressed=suppressed,
    )


def _measure_row(
    name: str, measure: Mapping[str, Any], organisation: str, follow_up: str, *, is_primary: bool
) -> MeasureRow:
    display = str(measure.get("display"))
    suppressed = bool(measure.get("suppressed"))
    label = str(measure.get("label") or name)
    units = _units(measure, display)
    headline = wording.headline_sentence(
        measure, organisation=organisation, name=name, follow_up=follow_up
    )
    window = _window_text(measure)
    if suppressed:
        return MeasureRow(
            name,
            label,
            units,
            *([SUPPRESSED] * 9),
            suppressed=True,
            is_primary=is_primary,
            headline=headline,
            follow_up=window,
        )
    significant = measure.get("significant")
    return MeasureRow(
        name=name,
        label=label,
        units=units,
        treatment=format_level(measure.get("treatment"), display),
        comparison=format_level(measure.get("comparison"), display),
        difference=format_difference(measure.get("difference"), display),
        interval=format_interval(measure.get("ci_low"), measure.get("ci_high"), display),
        p_value=format_p_value(measure.get("p_value")),
        p_value_adjusted=format_p_value(measure.get("p_value_adjusted")),
        significant=NOT_AVAILABLE if significant is None else ("Yes" if significant else "No"),
        n_treatment=format_count(measure.get("n_treatment")),
        n_comparison=format_count(measure.get("n_comparison")),
        suppressed=False,
        is_primary=is_primary,
        headline=headline,
        follow_up=window,
    )


def _naive_rows(
    naive: Mapping[str, Mapping[str, Any]], measures: Mapping[str, Mapping[str, Any]], primary: str
) -> tuple[MeasureRow, ...]:
    """Unmatched comparisons, suppressed wherever the matched measure is (same participants)."""
    rows = []
    ordered = [name for name in _in_report_order(measures) if name in naive]
    for name in ordered + [name for name in _in_report_order(naive) if name not in measures]:
        values = naive[name]
        measure = measures.get(name, {})
        display = str(measure.get("display", "percent"))
        suppressed = bool(measure.get("suppressed"))
        cell = (lambda _text: SUPPRESSED) if suppressed else (lambda text: text)
        rows.append(
            MeasureRow(
                name=name,
                label=str(measure.get("label") or name),
                units=_units(measure, display),
                treatment=cell(format_level(values.get("treatment"), display)),
                comparison=cell(format_level(values.get("comparison"), display)),
                difference=cell(format_difference(values.get("difference"), display)),
                interval=cell(
                    format_interval(values.get("ci_low"), values.get("ci_high"), display)
                ),
                p_value=cell(format_p_value(values.get("p_value"))),
                p_value_adjusted="",
                significant="",
                n_treatment="",
                n_comparison="",
                suppressed=suppressed,
                is_primary=name == primary,
                headline="",
                follow_up=_window_text(measure),
            )
        )
    return tuple(rows)


def _shows_adjusted_p(measures: Mapping[str, Mapping[str, Any]]) -> bool:
    """An adjusted-p column only when some measure has one from an actual adjustment."""
    return any(
        is_number(measure.get("p_value_adjusted"))
        and (measure.get("multiplicity") or {}).get("method") != "none"
        for measure in measures.values()
    )


def _multiplicity_notes(
    measures: Mapping[str, Mapping[str, Any]], follow_up: str, windows: int = 1
) -> tuple[str, ...]:
    """One footnote per family of adjusted measures, then any result adjustment overturned."""
    families: dict[tuple[str, str], int] = {}
    overturned: list[str] = []
    for name in _in_report_order(measures):
        measure = measures[name]
        multiplicity = measure.get("multiplicity")
        if not isinstance(multiplicity, Mapping):
            continue
        method = str(multiplicity.get("method") or "none")
        family = str(multiplicity.get("family") or "all")
        size = multiplicity.get("family_size")
        # A lone primary measure is its own family of one: the secondary footnote covers it.
        if family != "primary" or (is_number(size) and size > 1) or method == "none":
            families.setdefault((method, family), int(size) if is_number(size) else 0)
        if (
            not measure.get("suppressed")
            and measure.get("significant") is True
            and multiplicity.get("significant_adjusted") is False
        ):
            overturned.append(wording.measure_subject(measure, name, follow_up))
    notes = dict.fromkeys(
        wording.multiplicity_footnote(method, family, size, windows=windows)
        for (method, family), size in families.items()
    )
    if overturned:
        notes[wording.no_longer_significant(overturned)] = None
    return tuple(notes)


def _ratio_rows(measures: Mapping[str, Mapping[str, Any]]) -> tuple[RatioRow, ...]:
    rows = []
    for name in _in_report_order(measures):
        measure = measures[name]
        ratios = measure.get("ratios")
        if not isinstance(ratios, Mapping):
            continue
        suppressed = bool(measure.get("suppressed"))
        keys = [key for key in wording.RATIO_NAMES if key in ratios]
        keys += [key for key in ratios if key not in wording.RATIO_NAMES]
        for key in keys:
            ratio = ratios[key] if isinstance(ratios[key], Mapping) else {}
            rows.append(
                RatioRow(
                    measure=_windowed_label(str(measure.get("label") or name), measure),
                    ratio=wording.RATIO_NAMES.get(key, str(key).replace("_", " ").capitalize()),
                    estimate=SUPPRESSED if suppressed else format_ratio(ratio.get("estimate")),
                    interval=SUPPRESSED
                    if suppressed
                    else format_ratio_interval(ratio.get("ci_low"), ratio.get("ci_high")),
                    suppressed=suppressed,
                )
            )
    return tuple(rows)


def _survival(
    inference: Mapping[str, Any], measures: Mapping[str, Mapping[str, Any]]
) -> Survival | None:
    """The curves show each group's reoffending rate over time, so any suppression hides them."""
    curves = survival_curves(inference)
    section = inference.get("time_to_first_reoffence") or {}
    # with several windows the curves are those of one window (its measures decide)
    window = section.get("follow_up")
    hidden_by = ("reoffending_rate", "days_to_first_reoffence")
    if not curves or any(
        measure.get("suppressed")
        for name, measure in measures.items()
        if str(measure.get("column") or name) in hidden_by and measure.get("follow_up") == window
    ):
        return None
    method = str(section.get("method") or "Kaplan-Meier")
    caption = (
        wording.SURVIVAL_CAPTION.format(method=method)
        if window is None
        else wording.SURVIVAL_CAPTION_WINDOW.format(
            method=method, period=wording.period_adjective(str(window))
        )
    )
    return Survival(caption=caption, markdown_note=wording.SURVIVAL_MARKDOWN_NOTE)


def survival_curves(inference: Mapping[str, Any]) -> Mapping[str, Any]:
    section = inference.get("time_to_first_reoffence")
    if not isinstance(section, Mapping):
        return {}
    curves = section.get("curves")
    return curves if isinstance(curves, Mapping) else {}


def _subgroups(
    entries: Sequence[Mapping[str, Any]],
    primary: str,
    primary_measure: Mapping[str, Any] | None,
    follow_up: str,
) -> Subgroups | None:
    if not entries:
        return None
    primary_measure = primary_measure or {}
    default_display = str(primary_measure.get("display") or "percent")
    rows = tuple(_subgroup_row(entry, default_display) for entry in entries)
    subject = wording.measure_subject(primary_measure, primary or None, follow_up)
    return Subgroups(
        intro=wording.SUBGROUPS_INTRO.format(subject=subject),
        units=_units(primary_measure, default_display),
        rows=rows,
        footnotes=tuple(
            Footnote(f"{row.by} {row.level}", _suppression_reason(entry.get("primary") or {}))
            for row, entry in zip(rows, entries, strict=True)
            if row.suppressed
        ),
        caveat=wording.SUBGROUPS_CAVEAT,
    )


def _subgroup_row(entry: Mapping[str, Any], default_display: str) -> SubgroupRow:
    by, level = str(entry.get("by", "")), str(entry.get("level", ""))
    primary = entry.get("primary")
    if entry.get("status") != "reported" or not isinstance(primary, Mapping):
        return SubgroupRow(
            by, level, False, wording.subgroup_not_reported(entry.get("reason")),
            *([""] * 6), suppressed=False,
        )  # fmt: skip
    people = f"{format_count(entry.get('n_treatment'))} / {format_count(entry.get('n_comparison'))}"
    if primary.get("suppressed"):
        return SubgroupRow(
            by, level, True, "", people, *([SUPPRESSED] * 5), suppressed=True
        )  # fmt: skip
    display = str(primary.get("display") or default_display)
    significant = primary.get("significant")
    return SubgroupRow(
        by=by,
        level=level,
        reported=True,
        reason="",
        people=people,
        treatment=format_level(primary.get("treatment"), display),
        comparison=format_level(primary.get("comparison"), display),
        difference=format_difference(primary.get("difference"), display),
        interval=format_interval(primary.get("ci_low"), primary.get("ci_high"), display),
        significant=NOT_AVAILABLE if significant is None else ("Yes" if significant else "No"),
        suppressed=False,
    )


def _sensitivity(
    inference: Mapping[str, Any],
    primary: str,
    primary_measure: Mapping[str, Any] | None,
    confidence: str,
) -> Sensitivity | None:
    rosenbaum = inference.get("rosenbaum")
    e_value = inference.get("e_value")
    placebo = inference.get("placebo")
    if not any(isinstance(part, Mapping) for part in (rosenbaum, e_value, placebo)):
        return None
    # The placebo's own note only restates its verdict, which the fixed wording already gives.
    placebo_part = (
        wording.placebo_sentences(placebo, confidence=confidence)
        if isinstance(placebo, Mapping)
        else ()
    )
    measure = primary_measure or {}
    if measure.get("suppressed") and (rosenbaum or e_value):
        # Γ and the E-value are functions of the headline's numbers, so they are withheld too.
        return Sensitivity((wording.SENSITIVITY_NOT_PUBLISHED,), (), None, (), placebo_part)
    outcome = wording.sensitivity_outcome(primary, measure)
    paragraphs: tuple[str, ...] = ()
    grid: tuple[GammaPoint, ...] = ()
    notes: list[str | None] = []
    if isinstance(rosenbaum, Mapping):
        confidence_level = measure.get("confidence")
        alpha = 1.0 - float(confidence_level) if is_number(confidence_level) else None
        paragraphs = (
            wording.rosenbaum_sentence(rosenbaum, outcome=outcome, alpha=alpha),
            wording.ROSENBAUM_EXPLAINED,
        )
        if rosenbaum.get("available", True):
            grid = tuple(
                GammaPoint(format_gamma(point[0]), format_p_value(point[1]))
                for point in rosenbaum.get("grid") or []
                if len(point) == 2
            )
            notes.append(wording.rosenbaum_method(rosenbaum))
        notes.append(wording.note_sentence(rosenbaum.get("note")))
    e_value_text = None
    if isinstance(e_value, Mapping):
        ratios = measure.get("ratios") or {}
        ratio_name = wording.RATIO_NAMES[
            "rate_ratio" if "rate_ratio" in ratios and "risk_ratio" not in ratios else "risk_ratio"
        ]
        e_value_text = wording.e_value_sentence(e_value, ratio_name=ratio_name, outcome=outcome)
    return Sensitivity(
        rosenbaum=paragraphs,
        grid=grid,
        e_value=e_value_text,
        notes=tuple(note for note in notes if note),
        placebo=placebo_part,
    )


def _in_report_order(measures: Mapping[str, Any]) -> list[str]:
    """The usual JDL order of measures (results.json may have sorted keys), then any others.

    With several follow-up windows each measure's windows follow one another, shortest first,
    so that the one- and two-year results of a measure sit side by side.
    """
    def column(name: str) -> str:
        entry = measures[name]
        return str(entry.get("column") or name) if isinstance(entry, Mapping) else name

    columns = list(dict.fromkeys(column(name) for name in measures))
    known = [c for c in wording.MEASURE_SUBJECTS if c in columns]
    order = {c: i for i, c in enumerate(known + [c for c in columns if c not in wording.MEASURE_SUBJECTS])}
    return sorted(measures, key=lambda name: (order[column(name)], _window_days(measures[name])))


def _window_days(measure: Any) -> float:
    window = measure.get("follow_up") if isinstance(measure, Mapping) else None
    try:
        return Duration.parse(str(window)).approx_days() if window else 0.0
    except ValueError:
        return 0.0


def _window_text(measure: Mapping[str, Any]) -> str:
    """The measure's own follow-up window in words ("2 years"); empty with one window."""
    window = measure.get("follow_up")
    return _long_duration(str(window)) if window else ""


def _windowed_label(label: str, measure: Mapping[str, Any]) -> str:
    """A measure's label, naming its window when results have several."""
    window = _window_text(measure)
    return f"{label} ({window})" if window else label


def _units(measure: Mapping[str, Any], display: str) -> str:
    units = display_rule(display).units_label
    return f"{units}; reoffenders only" if measure.get("population") == "reoffenders" else units


def _suppression_reason(measure: Mapping[str, Any]) -> str:
    return str(measure.get("suppression_reason") or wording.DEFAULT_SUPPRESSION_REASON).rstrip(".")


def _confidence(measure: Mapping[str, Any] | None, method: Mapping[str, Any]) -> str:
    if measure is not None and is_number(measure.get("confidence")):
        return format_confidence(measure["confidence"])
    return format_confidence((method.get("estimator") or {}).get("confidence"))


def _sample_summary(n: Mapping[str, Any]) -> str:
    text = (
        f"{format_count(n.get('treatment'))} participants were matched to "
        f"{format_count(n.get('comparison'))} people from a comparison pool of "
        f"{format_count(n.get('comparison_pool'))}"
    )
    if is_number(n.get("comparison_effective")):
        text += f" (effective comparison group size {format_fixed(n['comparison_effective'], 1)})"
    return text + "."


def _attrition(stages: Sequence[Mapping[str, Any]]) -> tuple[AttritionStage, ...]:
    # percent_of_submitted is a percentage (0-100), so it is shown as given, to one decimal.
    return tuple(
        AttritionStage(
            stage=str(stage.get("stage", "")),
            label=str(stage.get("label") or stage.get("stage", "")),
            count=format_count(stage.get("count")),
            percent=f"{format_fixed(stage.get('percent_of_submitted'), 1)}%",
        )
        for stage in stages
    )


def _balance_row(row: Mapping[str, Any]) -> BalanceRow:
    flag = str(row.get("flag", ""))
    return BalanceRow(
        covariate=str(row.get("covariate", "")),
        mean_treatment=format_fixed(row.get("mean_treatment"), 2),
        mean_comparison_before=format_fixed(row.get("mean_comparison_before"), 2),
        mean_comparison_after=format_fixed(row.get("mean_comparison_after"), 2),
        smd_before=format_fixed(row.get("smd_before"), 3),
        smd_after=format_fixed(row.get("smd_after"), 3),
        variance_ratio_before=format_fixed(row.get("variance_ratio_before"), 2),
        variance_ratio_after=format_fixed(row.get("variance_ratio_after"), 2),
        flag=flag,
        flag_label=FLAG_LABELS.get(flag, flag),
    )


def _method_items(results: Mapping[str, Any], follow_up: str) -> tuple[MethodItem, ...]:
    method = results.get("method") or {}
    items = []
    period = method.get("period") or {}
    if period.get("from") and period.get("to"):
        items.append(
            MethodItem(
                "Study period", f"{_long_date(period['from'])} to {_long_date(period['to'])}"
            )
        )
    windows = [str(w) for w in method.get("follow_up_windows") or []]
    if len(windows) > 1:
        described = [_long_duration(w) for w in windows]
        described[0] += " (primary)"
        text = ", ".join(described[:-1]) + " and " + described[-1]
        items.append(MethodItem("Follow-up", f"{text} from the index date, on the same matched groups"))
    else:
        items.append(MethodItem("Follow-up", f"{_long_duration(follow_up)} from the index date"))
    if method.get("waiting_period"):
        items.append(
            MethodItem(
                "Waiting period",
                f"a further {_long_duration(str(method['waiting_period']))} for offences to be proven",
            )
        )
    items.append(
        MethodItem(
            "Data",
            "national records" if results.get("mode", "records") == "records" else "one table",
        )
    )
    items.append(MethodItem("Random seed", str(results.get("seed", NOT_AVAILABLE))))
    return tuple(items)


def _parameter_items(
    parameters: Mapping[str, Any], labels: Mapping[str, str] = PARAMETER_LABELS
) -> tuple[MethodItem, ...]:
    """Known parameters in the order of `labels` (results.json may sort keys), then any others."""
    keys = [key for key in labels if key in parameters]
    keys += [key for key in parameters if key not in labels]
    return tuple(
        MethodItem(
            labels.get(key, str(key).replace("_", " ").capitalize()),
            _describe(key, parameters[key]),
        )
        for key in keys
    )


def _describe(key: str, value: Any) -> str:
    if value is None:
        return "none"
    if key == "estimand" and value in ESTIMAND_LABELS:
        return ESTIMAND_LABELS[value]
    if key == "order" and value in ORDER_LABELS:
        return ORDER_LABELS[value]
    if key == "link" and value in LINK_LABELS:
        return LINK_LABELS[value]
    if key == "confidence" and is_number(value):
        return format_confidence(value)
    if key == "caliper" and isinstance(value, Mapping) and "width" in value:
        scale = value.get("scale", "absolute")
        return f"{value['width']} {CALIPER_SCALES.get(scale, str(scale))}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{k.replace('_', ' ')} {_describe(k, v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "none"
    return (
        str(value).replace("_", " ")
        if key in {"method", "order", "model", "variance"}
        else str(value)
    )


def _long_date(text: str) -> str:
    try:
        day = date.fromisoformat(str(text))
    except ValueError:
        return str(text)
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def _long_duration(text: str) -> str:
    try:
        duration = Duration.parse(text)
    except ValueError:
        return text
    singular, plural = DURATION_UNITS[duration.unit]
    return f"{duration.amount} {singular if duration.amount == 1 else plural}"
