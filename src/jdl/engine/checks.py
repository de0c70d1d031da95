"""Registry checks the spec package cannot make: every named method must exist."""

from __future__ import annotations

from pathlib import Path

from jdl import cohort as cohort_stage
from jdl import measures as measures_stage
from jdl.errors import JdlUserError, Problem
from jdl.estimation import ESTIMATORS
from jdl.matching import MATCHERS, PROPENSITY_MODELS
from jdl.spec import LoadedSpec, load_spec


def check_spec(loaded: LoadedSpec) -> list[Problem]:
    spec = loaded.spec
    problems: list[Problem] = []

    def unknown(key_path: tuple[str | int, ...], value: str, choices: list[str], what: str) -> None:
        problems.append(loaded.problem(key_path, f"unknown {what}", value=value,
                                       allowed=", ".join(sorted(choices))))

    if spec.matching.method not in MATCHERS:
        unknown(("matching", "method"), spec.matching.method, list(MATCHERS), "matching method")
    if spec.matching.propensity.column is None and spec.matching.propensity.model_name not in PROPENSITY_MODELS:
        unknown(("matching", "propensity", "model"), spec.matching.propensity.model_name,
                list(PROPENSITY_MODELS), "propensity model")
    if spec.estimator.method not in ESTIMATORS:
        unknown(("estimator", "method"), spec.estimator.method, list(ESTIMATORS), "estimator")
    if spec.data.mode == "table":
        problems.extend(_table_mode_problems(loaded))
        return problems
    if spec.cohort.index not in cohort_stage.INDEX_RULES:
        unknown(("cohort", "index"), spec.cohort.index, list(cohort_stage.INDEX_RULES), "index rule")
    windowed = sorted(n for n, c in measures_stage.COVARIATES.items() if c.takes_window)
    for position, covariate in enumerate(spec.covariates):
        if covariate.name not in measures_stage.COVARIATES:
            unknown(("covariates", position), covariate.name, list(measures_stage.COVARIATES), "covariate")
        elif covariate.window is not None and not measures_stage.COVARIATES[covariate.name].takes_window:
            problems.append(loaded.problem(
                ("covariates", position, "window"), f"covariate {covariate.name} takes no window",
                value=str(covariate.window), allowed=", ".join(windowed),
            ))
    placebo = spec.estimator.sensitivity.placebo_outcome
    if placebo and placebo not in measures_stage.COVARIATES:
        unknown(("estimator", "sensitivity", "placebo_outcome"), placebo, list(measures_stage.COVARIATES),
                "placebo outcome (a pre-index measure such as prior_year_reoffending)")
    for position, measure in enumerate(spec.outcomes.measures):
        if measure.name not in measures_stage.MEASURES:
            unknown(("outcomes", "measures", position), measure.name, list(measures_stage.MEASURES), "measure")
        elif measure.lower_is_better is not None:
            problems.append(loaded.problem(
                ("outcomes", "measures", position, "lower_is_better"),
                "record-mode measures know which direction is better", value=measure.lower_is_better,
                hint="remove lower_is_better; it is for table-mode outcome columns",
            ))
    problems.extend(_spell_table_problems(loaded))
    return problems


def _spell_table_problems(loaded: LoadedSpec) -> list[Problem]:
    """Employment and benefit covariates and measures need their optional table in the spec."""
    spec = loaded.spec
    records = spec.data.national_records
    wanted: list[tuple[tuple[str | int, ...], str, str]] = []
    for position, covariate in enumerate(spec.covariates):
        if covariate.name in measures_stage.COVARIATES:
            wanted.append((("covariates", position), "covariate", covariate.name))
    placebo = spec.estimator.sensitivity.placebo_outcome
    if placebo and placebo in measures_stage.COVARIATES:
        wanted.append((("estimator", "sensitivity", "placebo_outcome"), "placebo outcome", placebo))
    for position, measure in enumerate(spec.outcomes.measures):
        if measure.name in measures_stage.MEASURES:
            wanted.append((("outcomes", "measures", position), "measure", measure.name))
    problems = []
    for key_path, what, name in wanted:
        table = measures_stage.table_needed(name)
        if table is not None and (records is None or getattr(records, table) is None):
            problems.append(loaded.problem(
                key_path, f"{what} {name} needs the {table} table, and data.national_records.{table} is not given",
                value=name, allowed=f"give data.national_records.{table} (a Parquet/CSV file, folder or glob)",
                hint=f"or remove {name}",
            ))
    return problems


def _table_mode_problems(loaded: LoadedSpec) -> list[Problem]:
    """Table mode: covariates and outcomes are columns, so only their form can be checked here."""
    problems = []
    follow_up = loaded.spec.outcomes.follow_up
    if isinstance(follow_up, list) and len(follow_up) > 1:
        # one window is ignored as it always was (outcomes are given columns), but several would
        # promise results per window that a table cannot give
        problems.append(loaded.problem(
            ("outcomes", "follow_up"), "table-mode outcomes are plain columns, so they have no follow-up windows",
            value=[str(w) for w in follow_up], allowed="one duration (ignored in table mode), or leave it out",
            hint="give each window's outcome as its own column in outcomes.measures",
        ))
    for position, covariate in enumerate(loaded.spec.covariates):
        if covariate.window is not None:
            problems.append(loaded.problem(
                ("covariates", position, "window"), "table-mode covariates are plain columns and take no window",
                value=str(covariate.window),
            ))
    return problems


def load_and_check(path: Path) -> LoadedSpec:
    loaded = load_spec(path)
    problems = check_spec(loaded)
    if problems:
        raise JdlUserError(problems)
    return loaded
