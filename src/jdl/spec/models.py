"""Pydantic models of the evaluation spec (DESIGN.md §3).

Every key has a default except what only the analyst can know (id, title,
organisation, the data, the cohort period). Method names (matchers, propensity
models, estimators, measures, covariates) are plain strings here and are
checked against the registries by `jdl.engine.check_spec`, so that adding a
method never touches the spec package.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from jdl.durations import Duration

SPEC_VERSION = 1

REGIONS = (
    "North East",
    "North West",
    "Yorkshire and the Humber",
    "East Midlands",
    "West Midlands",
    "East of England",
    "London",
    "South East",
    "South West",
    "Wales",
)


def _parse_duration(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    return Duration.parse(value)


DurationField = Annotated[
    Duration,
    BeforeValidator(_parse_duration),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*\d+\s*[dwmy]\s*$",
            "description": "a whole number and a unit: d, w, m or y (e.g. 1y, 6m)",
        }
    ),
]


class SpecRuleError(ValueError):
    """Broken rules of one section, each at a key path relative to that section.

    Raised by model validators so that every broken rule is reported, each at
    its own key (`jdl.spec.problems` expands it into one problem per rule).
    """

    def __init__(self, violations: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.violations = violations
        super().__init__("; ".join(message for _, message in violations))


FOLLOW_UP_ALLOWED = (
    "a duration such as 1y, or a list of distinct durations from shortest to longest such as "
    "[1y, 2y] (the first is the primary window)"
)


def _parse_follow_up(value: Any) -> Duration | list[Duration]:
    """One follow-up window, or several (each measure is computed for every one).

    Windows are compared by their approximate length in days, so `12m` and `1y`
    are the same window; a list must run from the shortest to the longest.
    """
    if isinstance(value, Duration | str):
        window = _parse_duration(value)
        if window.amount <= 0:
            raise ValueError(f"a follow-up window must be longer than zero, not {window}; allowed: "
                             + FOLLOW_UP_ALLOWED)
        return window
    if not isinstance(value, list | tuple):
        raise ValueError(f"{value!r} is not a duration or a list of durations; allowed: {FOLLOW_UP_ALLOWED}")
    if not value:
        raise ValueError(f"the list of follow-up windows is empty; allowed: {FOLLOW_UP_ALLOWED}")
    violations: list[tuple[tuple[str | int, ...], str]] = []
    windows: list[tuple[int, Duration]] = []
    for position, item in enumerate(value):
        try:
            window = _parse_duration(item)
        except ValueError as error:
            violations.append(((position,), str(error)))
            continue
        if window.amount <= 0:
            violations.append(((position,), f"a follow-up window must be longer than zero, not {window}"))
            continue
        windows.append((position, window))
    for number, (position, window) in enumerate(windows[1:], start=1):
        same = [earlier for _, earlier in windows[:number] if earlier.approx_days() == window.approx_days()]
        before = max((earlier for _, earlier in windows[:number]), key=Duration.approx_days)
        if same:
            violations.append(((position,), f"window {window} repeats {same[0]}; each window may appear once"))
        elif window.approx_days() < before.approx_days():
            violations.append(((position,), f"window {window} is shorter than {before} before it; list the "
                               "windows from shortest to longest (the first is the primary window)"))
    if violations:
        raise SpecRuleError(violations)
    return [window for _, window in windows]


def _follow_up_text(value: Duration | list[Duration]) -> str | list[str]:
    return [str(window) for window in value] if isinstance(value, list) else str(value)


_DURATION_SCHEMA = {
    "type": "string",
    "pattern": r"^\s*\d+\s*[dwmy]\s*$",
    "description": "a whole number and a unit: d, w, m or y (e.g. 1y, 6m)",
}
FollowUpField = Annotated[
    Duration | list[Duration],
    PlainValidator(_parse_follow_up),
    PlainSerializer(_follow_up_text, return_type=str | list[str]),
    WithJsonSchema(
        {"anyOf": [_DURATION_SCHEMA, {"type": "array", "items": _DURATION_SCHEMA, "minItems": 1,
                                      "uniqueItems": True}]}
    ),
]


class SpecModel(BaseModel):
    """Base of every spec section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class NationalRecords(SpecModel):
    """The national offending records: a people table and an events table."""

    people: str = Field(description="people table: a Parquet/CSV file, a folder of partitions or a glob")
    events: str = Field(description="events table: a Parquet/CSV file, a folder of partitions or a glob")
    employment: str | None = Field(
        None,
        description="optional employment spells (person_id, start_date, end_date; a blank end_date is "
        "ongoing): a Parquet/CSV file, a folder of partitions or a glob",
    )
    benefits: str | None = Field(
        None,
        description="optional benefit spells (person_id, benefit_type out_of_work/other, start_date, "
        "end_date; a blank end_date is ongoing): a Parquet/CSV file, a folder of partitions or a glob",
    )


class DataSpec(SpecModel):
    """Where the data are: national records plus a cohort file, or one table (table mode)."""

    national_records: NationalRecords | None = Field(
        None, description="record mode: the national people and events tables"
    )
    cohort: str | None = Field(None, description="the organisation's cohort submission (CSV or Excel)")
    table: str | None = Field(None, description="table mode: one row per unit")
    id: str | None = Field(None, description="table mode: the unit id column")
    treatment: str | None = Field(None, description="table mode: the 0/1 treatment column")
    rejects_limit: float = Field(
        0.5,
        ge=0,
        le=1,
        description="fail when more than this share of cohort rows are rejected as unusable",
    )

    @model_validator(mode="after")
    def _one_mode(self) -> DataSpec:
        national = self.national_records is not None or self.cohort is not None
        table = self.table is not None
        if national and table:
            raise ValueError(
                "give either national_records + cohort (record mode) or table + id + treatment "
                "(table mode), not both"
            )
        missing = [key for key in ("id", "treatment") if getattr(self, key) is None]
        if table and missing:
            raise ValueError(f"table mode needs table, id and treatment; missing: {', '.join(missing)}")
        if not table and (self.national_records is None or self.cohort is None):
            raise ValueError(
                "record mode needs both national_records {people, events} and cohort; "
                "for one-row-per-unit data use table + id + treatment"
            )
        return self

    @property
    def mode(self) -> Literal["records", "table"]:
        return "table" if self.table is not None else "records"


LinkageRule = Literal["pnc_id", "exact_identity", "fuzzy_identity"]


class LinkageSpec(SpecModel):
    """How submitted people are linked to national person ids."""

    rules: list[LinkageRule] = Field(
        default_factory=lambda: ["pnc_id", "exact_identity", "fuzzy_identity"],
        min_length=1,
        description="linkage rules, applied in order; a person linked by one rule is not re-linked",
    )
    fuzzy_threshold: float = Field(
        0.92, gt=0, le=1, description="minimum name similarity (Jaro-Winkler) for fuzzy_identity"
    )

    @field_validator("rules")
    @classmethod
    def _no_repeats(cls, rules: list[str]) -> list[str]:
        if len(set(rules)) != len(rules):
            raise ValueError("each linkage rule may appear once")
        return rules


class Period(SpecModel):
    """A closed range of dates (YYYY-MM-DD)."""

    from_: dt.date = Field(alias="from", description="first index date included")
    to: dt.date = Field(description="last index date included")

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.to < self.from_:
            raise SpecRuleError([(("to",), f"period ends ({self.to}) before it starts ({self.from_})")])
        return self


class CohortSpec(SpecModel):
    """Who is in the treatment group and which index event each person has."""

    index: str = Field(
        "first_index_after_intervention_start",
        description="rule choosing each participant's index event (see `jdl.cohort` registry)",
    )
    period: Period | None = Field(None, description="index dates must fall in this period")
    index_window: DurationField = Field(
        Duration(1, "y"),
        description="a participant's index event must fall within this long after intervention_start",
    )
    min_size: int = Field(60, ge=1, description="minimum treatment group after matching (JDL: 60)")
    min_age: int = Field(18, ge=0, description="minimum age at the index date (JDL: adults, 18)")


class ComparisonPoolSpec(SpecModel):
    """Where the comparison group is drawn from."""

    regions: Literal["national"] | list[str] = Field(
        "national", description="'national' or a list of regions the comparison pool is drawn from"
    )

    @field_validator("regions")
    @classmethod
    def _known_regions(cls, regions: str | list[str]) -> str | list[str]:
        if isinstance(regions, list):
            unknown = [r for r in regions if r not in REGIONS]
            if unknown:
                raise ValueError(
                    f"unknown region(s) {unknown}; allowed: {', '.join(REGIONS)} (or 'national')"
                )
            if not regions:
                raise ValueError("give at least one region, or 'national'")
        return regions


class CovariateSpec(SpecModel):
    """A covariate measured at the index date; a bare name is short for {name: NAME}."""

    name: str = Field(description="covariate name (see `jdl.measures` registry) or a table column")
    window: DurationField | None = Field(
        None, description="look-back window before the index date; none means the whole history"
    )


def _covariate_from_string(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


CovariateEntry = Annotated[
    CovariateSpec,
    BeforeValidator(_covariate_from_string, json_schema_input_type=str | CovariateSpec),
]

DEFAULT_COVARIATES = (
    "age_at_index",
    "sex",
    "ethnicity",
    "index_offence_group",
    "index_disposal",
    "prior_proven_offences",
    "prior_custodial_sentences",
    "years_since_first_offence",
    "copas_rate",
)


class PropensitySpec(SpecModel):
    """The propensity score: fitted by a model, or read from a column."""

    model: str | None = Field(None, description="propensity model name (default: logistic)")
    column: str | None = Field(None, description="use a score already in the data instead of a model")
    link: Literal["logit", "linear_logit"] = Field(
        "linear_logit",
        description="match on the score (logit) or on its linear predictor (linear_logit)",
    )

    @model_validator(mode="after")
    def _model_or_column(self) -> PropensitySpec:
        if self.model is not None and self.column is not None:
            raise ValueError("give either model or column, not both")
        return self

    @property
    def model_name(self) -> str:
        return self.model or "logistic"


class CaliperSpec(SpecModel):
    """The largest allowed distance between matched units."""

    width: float = Field(gt=0, description="caliper width")
    scale: Literal["logit_sd", "sd", "absolute"] = Field(
        "logit_sd",
        description="logit_sd: SDs of the logit of the score; sd: SDs of the distance matched on; "
        "absolute: distance units",
    )


class KernelSpec(SpecModel):
    """Kernel matching: every comparison unit near a focal unit, weighted by a kernel of the distance."""

    type: Literal["epanechnikov", "gaussian", "uniform", "triangular", "biweight"] = Field(
        "epanechnikov", description="kernel function"
    )
    bandwidth: float = Field(0.2, gt=0, description="kernel bandwidth, in units given by scale")
    scale: Literal["logit_sd", "sd", "absolute"] = Field(
        "sd",
        description="logit_sd: SDs of the logit of the score; sd: SDs of the distance matched on; "
        "absolute: distance units",
    )


CUTPOINT_RULES = ("sturges", "fd", "scott")

# Matcher-specific keys and the methods that use them (checked when the key is given).
METHOD_KEYS: dict[str, tuple[str, ...]] = {
    "subclasses": ("subclass",),
    "cutpoints": ("coarsened_exact",),
    "kernel": ("kernel",),
    "mahalanobis": ("nearest_neighbour",),
    "covariate_calipers": ("nearest_neighbour",),
}


def _default_of(key: str) -> Any:
    field = MatchingSpec.model_fields[key]
    return field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]


class MatchingSpec(SpecModel):
    """How the comparison group is matched to the treatment group."""

    method: str = Field("nearest_neighbour", description="matcher name (see `jdl.matching` registry)")
    propensity: PropensitySpec = Field(
        default_factory=PropensitySpec, description="the score matched on"
    )
    estimand: Literal["ATT", "ATC", "ATE"] = Field(
        "ATT",
        description="ATT: effect on the treated (JDL); ATC: on the comparison group; ATE: on all",
    )
    ratio: int = Field(1, ge=1, le=100, description="comparison units per treated unit")
    replace: bool = Field(False, description="whether a comparison unit may be matched more than once")
    caliper: CaliperSpec | None = Field(None, description="no caliper when absent")
    exact: list[str] = Field(default_factory=list, description="covariates matched exactly")
    order: Literal["largest", "smallest", "random", "data"] = Field(
        "largest", description="order in which treated units choose their matches"
    )
    discard: Literal["none", "treated", "control", "both"] = Field(
        "none", description="drop units outside common support of the score"
    )
    seed: int = Field(2013, description="seed for random ordering and any other randomness")
    subclasses: int = Field(
        6, ge=2, le=1000, description="method subclass: number of propensity-score quantile subclasses"
    )
    cutpoints: dict[str, int | list[float] | str] = Field(
        default_factory=dict,
        description="method coarsened_exact: per numeric covariate, a number of bins, a list of cut "
        "points, a rule (sturges, fd, scott) or qN for N quantile bins; 0 = match exactly, "
        "1 = ignore the covariate; covariates not named use sturges (MatchIt's default)",
    )
    kernel: KernelSpec = Field(
        default_factory=KernelSpec, description="method kernel: kernel type and bandwidth"
    )
    mahalanobis: list[str] = Field(
        default_factory=list,
        description="method nearest_neighbour: covariates whose Mahalanobis distance chooses the match "
        "among units within the caliper (MatchIt's mahvars); empty = match on the distance",
    )
    covariate_calipers: dict[str, CaliperSpec] = Field(
        default_factory=dict,
        description="method nearest_neighbour: per numeric covariate, the largest allowed difference "
        "(scale sd: SDs of the covariate; absolute: its own units)",
    )

    @model_validator(mode="after")
    def _method_parameters(self) -> MatchingSpec:
        violations: list[tuple[tuple[str | int, ...], str]] = []
        known = {m for methods in METHOD_KEYS.values() for m in methods} | {
            "exact", "radius", "nearest_neighbour"
        }
        if self.method in known:
            for key, methods in METHOD_KEYS.items():
                # a key counts as given when set to something other than its default
                given = key in self.model_fields_set and getattr(self, key) != _default_of(key)
                if given and self.method not in methods:
                    violations.append(
                        ((key,), f"{key} applies to method {' or '.join(methods)}, not to "
                         f"{self.method!r}; remove it or change matching.method")
                    )
        for name, caliper in self.covariate_calipers.items():
            if caliper.scale == "logit_sd":
                violations.append(
                    (("covariate_calipers", name, "scale"),
                     "a covariate caliper's scale is sd or absolute (logit_sd is for the score)")
                )
        for name, rule in self.cutpoints.items():
            if isinstance(rule, str) and rule not in CUTPOINT_RULES and not (
                rule.startswith("q") and rule[1:].isdigit() and int(rule[1:]) >= 2
            ):
                violations.append(
                    (("cutpoints", name),
                     f"unknown cut-point rule {rule!r}; use a number of bins, a list of cut points, "
                     f"{', '.join(CUTPOINT_RULES)} or qN (N quantile bins)")
                )
            elif isinstance(rule, int) and rule < 0:
                violations.append((("cutpoints", name), "a number of bins must be 0 or more"))
        if violations:
            raise SpecRuleError(violations)
        return self


class MeasureSpec(SpecModel):
    """An outcome measure; a bare name is short for {name: NAME}."""

    name: str = Field(description="measure name (see `jdl.measures` registry) or a table column")
    label: str | None = Field(None, description="how the report names the measure (default: its own label)")
    lower_is_better: bool | None = Field(
        None,
        description="table mode: whether a lower value is an improvement (default true); record-mode "
        "measures know their own direction",
    )


def _measure_from_string(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


MeasureEntry = Annotated[
    MeasureSpec,
    BeforeValidator(_measure_from_string, json_schema_input_type=str | MeasureSpec),
]

DEFAULT_MEASURES = (
    "reoffending_rate",
    "reoffending_frequency",
    "days_to_first_reoffence",
    "custody_rate",
    "custody_frequency",
    "first_reoffence_severity",
)


class OutcomesSpec(SpecModel):
    """The follow-up window and the outcome measures."""

    follow_up: FollowUpField = Field(
        Duration(1, "y"),
        description="follow-up window after the index date, or a list of windows from shortest to longest "
        "(e.g. [1y, 2y]): every measure is computed for each window on the same matched groups; the first "
        "is the primary window the headline refers to",
    )
    waiting_period: DurationField = Field(
        Duration(6, "m"), description="further time for an offence in the window to be proven"
    )
    measures: list[MeasureEntry] = Field(
        default_factory=lambda: [MeasureSpec(name=n) for n in DEFAULT_MEASURES],
        min_length=1,
        description="outcome measures: names, or {name: NAME}",
    )
    primary: str = Field("reoffending_rate", description="the pre-specified headline measure")

    @model_validator(mode="after")
    def _primary_is_measured(self) -> OutcomesSpec:
        names = [m.name for m in self.measures]
        violations: list[tuple[tuple[str | int, ...], str]] = []
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            violations.append((("measures",), f"each measure may appear once; repeated: {repeated}"))
        if self.primary not in names:
            violations.append(
                (("primary",), f"primary measure {self.primary!r} is not among measures {names}")
            )
        if violations:
            raise SpecRuleError(violations)
        return self

    @property
    def windows(self) -> tuple[Duration, ...]:
        """Every follow-up window, the primary first and the longest last."""
        return tuple(self.follow_up) if isinstance(self.follow_up, list) else (self.follow_up,)

    @property
    def primary_window(self) -> Duration:
        """The window the headline and the primary measure refer to."""
        return self.windows[0]

    @property
    def longest_window(self) -> Duration:
        """The window the records must cover (plus the waiting period) for every index date."""
        return self.windows[-1]


VarianceMethod = Literal["pair_cluster_robust", "robust", "bootstrap"]


class VarianceSpec(SpecModel):
    """How the standard error is computed; a bare method name is short for {method: NAME}."""

    method: VarianceMethod = Field(
        "pair_cluster_robust",
        description="pair_cluster_robust: clustered on matched sets (two-way with replacement; HC3 "
        "for exact, coarsened_exact and subclass strata, as MatchIt's guide); robust: "
        "heteroskedasticity-robust (HC1); bootstrap: resampling",
    )
    reps: int = Field(999, ge=50, description="bootstrap replicates")
    seed: int = Field(2013, description="bootstrap seed")
    interval: Literal["percentile", "bca"] = Field(
        "percentile",
        description="bootstrap interval: percentile, or bca (bias-corrected and accelerated, "
        "acceleration from the delete-one-cluster jackknife)",
    )


def _variance_from_string(value: Any) -> Any:
    return {"method": value} if isinstance(value, str) else value


class LearnerSpec(SpecModel):
    """The scikit-learn model inside the causalml meta-learners (s/t/x/dr_learner)."""

    model: Literal["gradient_boosting", "random_forest", "linear"] = Field(
        "gradient_boosting",
        description="gradient_boosting: GradientBoostingRegressor (100 trees, depth 3, subsample "
        "0.8); random_forest: RandomForestRegressor (200 trees, min 20 per leaf); linear: OLS",
    )
    seed: int = Field(2013, description="seed of the learner and of the DR-learner's cross-fitting")


class MultiplicitySpec(SpecModel):
    """Adjustment of p-values for testing several measures."""

    method: Literal["holm", "fdr_bh", "bonferroni", "none"] = Field(
        "holm",
        description="holm: family-wise error (Holm); fdr_bh: false discovery rate "
        "(Benjamini-Hochberg); bonferroni; none",
    )
    family: Literal["secondary", "all"] = Field(
        "secondary",
        description="secondary: the pre-specified primary measure keeps its raw p-value and the "
        "others are adjusted together; all: every measure is adjusted together",
    )


class SensitivitySpec(SpecModel):
    """Sensitivity of the primary result to unmeasured confounding."""

    rosenbaum: bool = Field(True, description="Rosenbaum bounds for the binary primary measure")
    gamma_max: float = Field(5.0, gt=1, le=100, description="largest Γ searched")
    e_value: bool = Field(True, description="E-value of the risk ratio (VanderWeele & Ding)")
    placebo_outcome: str | None = Field(
        None, description="a pre-index outcome the intervention cannot have changed (none: skip)"
    )


class EstimatorSpec(SpecModel):
    """How the difference between the groups is estimated."""

    method: str = Field("weighted_difference", description="estimator name (see `jdl.estimation`)")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="confidence level of the intervals")
    variance: Annotated[
        VarianceSpec,
        BeforeValidator(_variance_from_string, json_schema_input_type=VarianceMethod | VarianceSpec),
    ] = Field(
        default_factory=VarianceSpec, description="a method name, or {method, reps, seed, interval}"
    )
    learner: LearnerSpec = Field(
        default_factory=LearnerSpec, description="model and seed of the causalml meta-learners"
    )
    multiplicity: MultiplicitySpec = Field(
        default_factory=MultiplicitySpec, description=MultiplicitySpec.__doc__
    )
    sensitivity: SensitivitySpec = Field(
        default_factory=SensitivitySpec, description=SensitivitySpec.__doc__
    )


class ReportSpec(SpecModel):
    """The published report."""

    template: str = Field("jdl_standard", description="a folder under report_templates/ or a path")
    formats: list[Literal["html", "markdown", "json"]] = Field(
        default_factory=lambda: ["html", "markdown", "json"],
        min_length=1,
        description="report files written",
    )


class SubgroupSpec(SpecModel):
    """A subgroup analysis: the evaluation re-matched within each level of one column."""

    by: str = Field(
        description="a covariate (e.g. sex, age_at_index) or, in record mode, a column of the cohort "
        "file (e.g. attendance); cohort columns split participants only, the pool is shared"
    )
    bands: list[float] | None = Field(
        None,
        description="cut points for a numeric column, e.g. [18, 25, 35] gives 18-24, 25-34, 35 and over; "
        "without bands each distinct value is a level",
    )
    min_size: int | None = Field(
        None, ge=1, description="minimum matched participants to report a level (default cohort.min_size)"
    )
    max_smd: float = Field(
        0.10, gt=0, description="balance gate: a level is reported only if every |SMD| after matching is below this"
    )

    @field_validator("bands")
    @classmethod
    def _increasing(cls, bands: list[float] | None) -> list[float] | None:
        if bands is not None and (not bands or sorted(set(bands)) != bands):
            raise ValueError("bands must be one or more strictly increasing cut points")
        return bands


class Spec(SpecModel):
    """One evaluation."""

    spec_version: Literal[1] = Field(SPEC_VERSION, description="version of the spec format")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="slug naming the evaluation")
    title: str = Field(description="title of the evaluation, as published")
    organisation: str = Field(description="the organisation whose work is evaluated")
    extends: str | None = Field(None, description="base spec whose keys this one overrides")
    data: DataSpec = Field(
        description="national_records + cohort (record mode) or table + id + treatment (table mode)"
    )
    linkage: LinkageSpec = Field(default_factory=LinkageSpec, description=LinkageSpec.__doc__)
    cohort: CohortSpec = Field(default_factory=CohortSpec, description=CohortSpec.__doc__)
    comparison_pool: ComparisonPoolSpec = Field(
        default_factory=ComparisonPoolSpec, description=ComparisonPoolSpec.__doc__
    )
    covariates: list[CovariateEntry] = Field(
        default_factory=lambda: [CovariateSpec(name=n) for n in DEFAULT_COVARIATES],
        min_length=1,
        description="covariates matched on: names, or {name, window}",
    )
    matching: MatchingSpec = Field(default_factory=MatchingSpec, description=MatchingSpec.__doc__)
    outcomes: OutcomesSpec = Field(default_factory=OutcomesSpec, description=OutcomesSpec.__doc__)
    estimator: EstimatorSpec = Field(
        default_factory=EstimatorSpec, description=EstimatorSpec.__doc__
    )
    report: ReportSpec = Field(default_factory=ReportSpec, description=ReportSpec.__doc__)
    subgroups: list[SubgroupSpec] = Field(
        default_factory=list, description="subgroup analyses, each re-matched within its levels"
    )

    @model_validator(mode="after")
    def _record_mode_needs_period(self) -> Spec:
        violations: list[tuple[tuple[str | int, ...], str]] = []
        if self.data.mode == "records" and self.cohort.period is None:
            violations.append(
                (("cohort", "period"), "is required with national records: give {from: DATE, to: DATE}")
            )
        names = [c.name for c in self.covariates]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            violations.append(
                (("covariates",), f"each covariate may appear once; repeated: {repeated}")
            )
        missing_exact = [e for e in self.matching.exact if e not in names]
        if missing_exact:
            violations.append(
                (
                    ("matching", "exact"),
                    f"names {missing_exact}, which are not among the covariates {names}",
                )
            )
        if violations:
            raise SpecRuleError(violations)
        return self

    @property
    def covariate_names(self) -> list[str]:
        return [c.name for c in self.covariates]
