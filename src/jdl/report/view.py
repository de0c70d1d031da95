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
    format_interval,
    format_level,
    format_level_with_unit,
    format_p_value,
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
    significant: str
    n_treatment: str
    n_comparison: str
    suppressed: bool
    is_primary: bool
    headline: str


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
    footnotes: tuple[Footnote, ...]
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
        footnotes=tuple(
            Footnote(row.label, _suppression_reason(measures[row.name]))
            for row in rows
            if row.suppressed
        ),
        confidence=_confidence(primary_measure, method),
        naive=_naive_rows(results.get("naive") or {}, measures, primary),
        balance=tuple(_balance_row(row) for row in results.get("balance") or []),
        method=_method_items(results, follow_up),
        matching=_parameter_items(method.get("matching") or {}, MATCHING_LABELS)
        + _parameter_items(method.get("propensity") or {}, PROPENSITY_LABELS),
        estimator=_parameter_items(method.get("estimator") or {}, ESTIMATOR_LABELS),
        covariates=tuple(str(c) for c in method.get("covariates") or []),
        caveats=wording.CAVEATS,
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
        label=str(measure.get("label") or name),
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
    if suppressed:
        return MeasureRow(
            name,
            label,
            units,
            *([SUPPRESSED] * 8),
            suppressed=True,
            is_primary=is_primary,
            headline=headline,
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
        significant=NOT_AVAILABLE if significant is None else ("Yes" if significant else "No"),
        n_treatment=format_count(measure.get("n_treatment")),
        n_comparison=format_count(measure.get("n_comparison")),
        suppressed=False,
        is_primary=is_primary,
        headline=headline,
    )


def _naive_rows(
    naive: Mapping[str, Mapping[str, Any]], measures: Mapping[str, Mapping[str, Any]], primary: str
) -> tuple[MeasureRow, ...]:
    """Unmatched comparisons, suppressed wherever the matched measure is (same participants)."""
    rows = []
    for name in _in_report_order(naive):
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
                significant="",
                n_treatment="",
                n_comparison="",
                suppressed=suppressed,
                is_primary=name == primary,
                headline="",
            )
        )
    return tuple(rows)


def _in_report_order(measures: Mapping[str, Any]) -> list[str]:
    """The usual JDL order of measures (results.json may have sorted keys), then any others."""
    known = [name for name in wording.MEASURE_SUBJECTS if name in measures]
    return known + [name for name in measures if name not in wording.MEASURE_SUBJECTS]


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
