"""The straightforward way: one process, whole tables in pandas, the same definitions.

A baseline for benchmarks/scaling.py. It reads the national people and events
tables whole with pandas, applies jdl's own contract normalisation, linkage,
index-event, covariate, outcome, matching and estimation functions on those
whole frames (vectorised pandas, no Dask, no cache), and returns the headline
estimate, which must equal the engine's.

    python benchmarks/pandas_baseline.py SPEC.yaml
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jdl import cohort as cohort_stage
from jdl import linkage as linkage_stage
from jdl import measures as measures_stage
from jdl.engine.checks import load_and_check
from jdl.estimation import estimate
from jdl.matching import match
from jdl.sources import national
from jdl.sources.cohort_file import read_cohort

PROVEN = ("court_conviction", "caution")


def _whole(location: str, contract: national.TableContract) -> pd.DataFrame:
    """The whole table in one pandas frame, normalised to the data contract; valid rows only."""
    frame = pd.read_parquet(location)
    normalised = national._normalise(frame, contract, list(contract.required))
    return normalised.loc[normalised[national.REJECT_COLUMN].isna()].drop(columns=[national.REJECT_COLUMN])


def evaluate(spec_path: Path) -> dict[str, Any]:
    """The spec's evaluation, whole-table pandas; the primary measure's estimate and timings."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    spec = load_and_check(spec_path).spec
    records = spec.data.national_records
    assert records is not None and spec.data.cohort is not None and spec.cohort.period is not None
    period = spec.cohort.period
    people = _whole(records.people, national.PEOPLE)
    events = _whole(records.events, national.EVENTS)
    timings["read"] = time.perf_counter() - started

    cohort = read_cohort(spec.data.cohort)
    candidates = linkage_stage.select_candidates(people, linkage_stage.candidate_keys(cohort.rows))
    linked = linkage_stage.link_cohort(cohort.rows, candidates, rules=list(spec.linkage.rules),
                                       fuzzy_threshold=spec.linkage.fuzzy_threshold)
    occasions = cohort_stage.resolve_occasions(
        cohort_stage.candidate_index_rows(events, period.from_, period.to))
    linked_rows = linked.links.merge(cohort.rows[["row_number", "intervention_start"]], on="row_number")
    treatment = cohort_stage.choose_treatment_index(
        linked_rows, occasions, rule_name=spec.cohort.index, window=spec.cohort.index_window,
        period_from=period.from_, period_to=period.to)
    pool = cohort_stage.choose_pool_index(occasions, exclude_person_ids=linked.links["person_id"],
                                          period_from=period.from_, period_to=period.to)
    static = people[["person_id", "date_of_birth", "sex", "ethnicity", "region"]].drop_duplicates("person_id")
    treated_ok = cohort_stage.eligibility_reasons(treatment.chosen, static, min_age=spec.cohort.min_age,
                                                  regions=None, apply_regions=False).isna()
    regions = None if spec.comparison_pool.regions == "national" else list(spec.comparison_pool.regions)
    pool_ok = cohort_stage.eligibility_reasons(pool, static, min_age=spec.cohort.min_age, regions=regions,
                                               apply_regions=True).isna()
    index_table = pd.concat(
        [treatment.chosen.loc[treated_ok].drop(columns=["row_number", "intervention_start"]).assign(treated=True),
         pool.loc[pool_ok].assign(treated=False)], ignore_index=True,
    ).sort_values("person_id", kind="mergesort").reset_index(drop=True)
    timings["index_events"] = time.perf_counter() - started - sum(timings.values())

    history = events.loc[events["person_id"].isin(index_table["person_id"]) & events["outcome_type"].isin(PROVEN)]
    history = history.sort_values(["person_id", "offence_date", "outcome_date"], kind="mergesort")
    context = measures_stage.CovariateContext(index_table, static, history)
    covariates = measures_stage.compute_covariates(context, [(c.name, c.window) for c in spec.covariates])
    outcomes, columns = measures_stage.compute_outcomes(
        index_table, history, measure_names=[m.name for m in spec.outcomes.measures],
        follow_up=spec.outcomes.follow_up, waiting_period=spec.outcomes.waiting_period)
    frame = pd.concat([index_table[["person_id", "treated", "index_date"]], covariates, outcomes], axis=1)
    timings["features"] = time.perf_counter() - started - sum(timings.values())

    exact = [measures_stage.covariate_column(c.name, c.window) for c in spec.covariates
             if c.name in spec.matching.exact]
    matching = match(frame, treatment="treated", covariates=list(covariates.columns),
                     spec=spec.matching.model_copy(update={"exact": exact}))
    primary = next(c for c in columns if c.name.startswith(spec.outcomes.primary))
    result = estimate(frame[primary.name], matching, spec.estimator, kind=primary.kind)
    timings["matching_estimation"] = time.perf_counter() - started - sum(timings.values())
    return {
        "measure": primary.name,
        "treatment": float(result.treatment_mean),
        "comparison": float(result.comparison_mean),
        "difference": float(result.difference),
        "n_treatment": int(np.sum(frame["treated"])),
        "comparison_pool": int(len(frame) - np.sum(frame["treated"])),
        "seconds": round(time.perf_counter() - started, 3),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


if __name__ == "__main__":
    print(json.dumps(evaluate(Path(sys.argv[1])), indent=2))
