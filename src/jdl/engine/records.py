"""Record mode: an organisation's cohort linked to national records.

The order of the stages lives here: cohort file, linkage, index events,
eligibility, covariates and outcomes. Dask reads the national records
partition by partition; what comes back to pandas is the small part an
evaluation needs (candidate identities, index events in the period, and the
histories of the people in the treatment group and the comparison pool).
"""

from __future__ import annotations

from typing import Any

import dask
import numpy as np
import pandas as pd

from jdl import cohort as cohort_stage
from jdl import linkage as linkage_stage
from jdl import measures as measures_stage
from jdl.audit import fingerprint_files
from jdl.engine.evaluation import Evaluation, attrition_table
from jdl.errors import EvaluationCannotComplete, JdlUserError
from jdl.sources import national
from jdl.sources.cohort_file import read_cohort
from jdl.spec import Spec

PEOPLE_LINK_COLUMNS = ["person_id", "pnc_id", "forename", "surname", "date_of_birth", "sex"]
PEOPLE_STATIC_COLUMNS = ["person_id", "date_of_birth", "sex", "ethnicity", "region"]
EVENT_COLUMNS = list(national.EVENTS.required)
HISTORY_COLUMNS = ["person_id", "offence_date", "outcome_date", "outcome_type", "offence_group",
                   "severity", "disposal", "sentence_days", "release_date"]
PROVEN = ("court_conviction", "caution")


class RecordsEvaluation(Evaluation):
    mode = "records"
    id_column = "person_id"

    def prepare(self) -> tuple[pd.DataFrame, list[str], list[measures_stage.OutcomeColumn]]:
        spec = self.spec
        records = spec.data.national_records
        assert records is not None and spec.data.cohort is not None and spec.cohort.period is not None
        period = spec.cohort.period

        with self.clock.stage("read_cohort"):
            cohort_file = read_cohort(spec.data.cohort)
            self.inputs["cohort"] = fingerprint_files([str(cohort_file.path)])
            self.reject("cohort", cohort_file.rejects)
            self.counts["submitted"] = cohort_file.n_submitted
            rejected_share = len(cohort_file.rejects) / max(cohort_file.n_submitted, 1)
            if rejected_share > spec.data.rejects_limit:
                raise JdlUserError.single(
                    str(cohort_file.path),
                    f"{len(cohort_file.rejects)} of {cohort_file.n_submitted} rows are unusable "
                    f"({rejected_share:.0%}, more than data.rejects_limit {spec.data.rejects_limit:.0%})",
                    hint="see the reasons in rejects.csv of this run",
                )
            if len(cohort_file.rejects):
                self.warnings.append(f"{len(cohort_file.rejects)} cohort rows were unusable (see rejects.csv)")

        people_src = national.open_table(records.people, national.PEOPLE,
                                         "data.national_records.people")
        events_src = national.open_table(records.events, national.EVENTS,
                                         "data.national_records.events")
        with self.clock.stage("fingerprint"):
            self.inputs["people"] = fingerprint_files(people_src.files)
            self.inputs["events"] = fingerprint_files(events_src.files)

        with self.clock.stage("linkage"):
            keys = linkage_stage.candidate_keys(cohort_file.rows)
            people = people_src.read(PEOPLE_LINK_COLUMNS)
            meta = people._meta
            candidates = people.map_partitions(
                lambda part: linkage_stage.select_candidates(
                    part.loc[part[national.REJECT_COLUMN].isna()], keys
                ),
                meta=meta,
            ).compute()
            candidates = candidates.drop(columns=[national.REJECT_COLUMN])
            linked = linkage_stage.link_cohort(
                cohort_file.rows, candidates, rules=list(spec.linkage.rules),
                fuzzy_threshold=spec.linkage.fuzzy_threshold,
            )
            self.reject("linkage", linked.unlinked)
            self.counts["linked"] = len(linked.links)
            self.linkage_counts = dict(linked.counts)

        with self.clock.stage("index_events"):
            events = events_src.read(EVENT_COLUMNS)
            valid = events[events[national.REJECT_COLUMN].isna()].drop(columns=[national.REJECT_COLUMN])
            index_meta = cohort_stage.candidate_index_rows(valid._meta, period.from_, period.to)
            candidates_dd = valid.map_partitions(
                cohort_stage.candidate_index_rows, period.from_, period.to, meta=index_meta
            )
            bad_events = events[~events[national.REJECT_COLUMN].isna()][["person_id", national.REJECT_COLUMN]]
            index_rows, event_rejects, records_end = dask.compute(
                candidates_dd, bad_events, valid["outcome_date"].max()
            )
            occasions = cohort_stage.resolve_occasions(index_rows)
            event_rejects = event_rejects.rename(columns={national.REJECT_COLUMN: "reason"})
            event_rejects["reason"] = "events table: " + event_rejects["reason"].astype("string")
            self.reject("events", event_rejects)
            if len(event_rejects):
                self.warnings.append(
                    f"{len(event_rejects)} rows of the events table break the data contract and were "
                    "left out (see rejects.csv)"
                )
            records_end = pd.Timestamp(records_end)
            self.records_end = records_end
            latest_needed = spec.outcomes.waiting_period.add_to(
                spec.outcomes.follow_up.add_to(pd.Timestamp(period.to))
            )
            if latest_needed > records_end:
                raise JdlUserError([self.loaded.problem(
                    ("cohort", "period", "to"),
                    f"an index date of {period.to} needs records until {latest_needed.date()} "
                    f"(follow-up {spec.outcomes.follow_up} + waiting period {spec.outcomes.waiting_period}), "
                    f"but the events end at {records_end.date()}",
                    value=str(period.to),
                    allowed=f"a period ending by {_latest_allowed(records_end, spec).date()}",
                )])

            linked_rows = linked.links.merge(
                cohort_file.rows[["row_number", "intervention_start"]], on="row_number", how="left"
            )
            treatment = cohort_stage.choose_treatment_index(
                linked_rows, occasions, rule_name=spec.cohort.index, window=spec.cohort.index_window,
                period_from=period.from_, period_to=period.to,
            )
            self.reject("index_event", treatment.not_found)
            pool = cohort_stage.choose_pool_index(
                occasions, exclude_person_ids=linked.links["person_id"],
                period_from=period.from_, period_to=period.to,
            )
            self.counts["index_event_found"] = len(treatment.chosen)

        with self.clock.stage("eligibility"):
            wanted = np.union1d(treatment.chosen["person_id"].to_numpy(), pool["person_id"].to_numpy())
            static = people_src.read(PEOPLE_STATIC_COLUMNS)
            people_static = static.map_partitions(
                lambda part: part.loc[part["person_id"].isin(wanted) & part[national.REJECT_COLUMN].isna()],
                meta=static._meta,
            ).compute().drop(columns=[national.REJECT_COLUMN])
            people_static = people_static.drop_duplicates("person_id").sort_values("person_id")
            regions = spec.comparison_pool.regions
            region_list = None if regions == "national" else list(regions)
            treated_reasons = cohort_stage.eligibility_reasons(
                treatment.chosen, people_static, min_age=spec.cohort.min_age, regions=None,
                apply_regions=False,
            )
            ineligible = treatment.chosen.loc[treated_reasons.notna(), ["row_number"]].assign(
                reason=treated_reasons[treated_reasons.notna()].to_numpy()
            )
            self.reject("eligibility", ineligible)
            treated_index = treatment.chosen.loc[treated_reasons.isna()]
            pool_reasons = cohort_stage.eligibility_reasons(
                pool, people_static, min_age=spec.cohort.min_age, regions=region_list, apply_regions=True
            )
            pool_index = pool.loc[pool_reasons.isna()]
            self.counts["eligible"] = len(treated_index)
            self.counts["comparison_pool"] = len(pool_index)
            if len(treated_index) == 0:
                raise EvaluationCannotComplete(
                    "cohort", "no participant has an eligible index event in the period",
                    hint="check cohort.period and intervention_start dates; see rejects.csv",
                )
            index_table = pd.concat(
                [
                    treated_index.drop(columns=["row_number", "intervention_start"]).assign(treated=True),
                    pool_index.assign(treated=False),
                ],
                ignore_index=True,
            ).sort_values("person_id", kind="mergesort").reset_index(drop=True)
            self.treated_rows = treated_index[["row_number", "person_id"]]

        with self.clock.stage("features"):
            ids = index_table["person_id"].to_numpy()
            history = valid.map_partitions(
                lambda part: part.loc[
                    part["person_id"].isin(ids) & part["outcome_type"].isin(PROVEN),
                    HISTORY_COLUMNS,
                ],
                meta=valid._meta[HISTORY_COLUMNS],
            ).compute()
            history = history.sort_values(["person_id", "offence_date", "outcome_date"], kind="mergesort")
            context = measures_stage.CovariateContext(index_table, people_static, history)
            requested = [(c.name, c.window) for c in spec.covariates]
            covariates = measures_stage.compute_covariates(context, requested)
            outcomes, outcome_columns = measures_stage.compute_outcomes(
                index_table, history, measure_names=[m.name for m in spec.outcomes.measures],
                follow_up=spec.outcomes.follow_up, waiting_period=spec.outcomes.waiting_period,
            )
            self.reoffender_ids = measures_stage.proven_reoffences(
                index_table, history, spec.outcomes.follow_up, spec.outcomes.waiting_period
            )["person_id"].unique()
            frame = pd.concat(
                [index_table[["person_id", "treated", "index_date"]].assign(unit_id=index_table["person_id"]),
                 covariates, outcomes],
                axis=1,
            )
            covariate_columns = list(covariates.columns)

        return frame, covariate_columns, outcome_columns


    def exact_columns(self) -> list[str]:
        return [
            measures_stage.covariate_column(c.name, c.window)
            for c in self.spec.covariates if c.name in self.spec.matching.exact
        ]

    def treated_reoffenders(self, frame: pd.DataFrame, in_matched_treatment: np.ndarray) -> int | None:
        return int(frame.loc[in_matched_treatment, "person_id"].isin(self.reoffender_ids).sum())

    def matched_extra_columns(self, frame: pd.DataFrame) -> dict[str, pd.Series]:
        return {"index_date": frame["index_date"]}

    def extra_results(self) -> dict[str, Any]:
        return {"linkage": self.linkage_counts}

    def method_details(self) -> dict[str, Any]:
        spec = self.spec
        period = spec.cohort.period
        assert period is not None
        return {
            "period": {"from": period.from_.isoformat(), "to": period.to.isoformat()},
            "records_end": self.records_end.date().isoformat(),
            "follow_up": str(spec.outcomes.follow_up),
            "waiting_period": str(spec.outcomes.waiting_period),
            "index_rule": spec.cohort.index,
        }

    def attrition(self) -> list[dict[str, Any]]:
        stages = [
            ("submitted", "Submitted"),
            ("linked", "Linked to national records"),
            ("index_event_found", "Index event found in the period"),
            ("eligible", "Eligible"),
            ("matched", "Matched"),
        ]
        return attrition_table([(s, label, self.counts[s]) for s, label in stages if s in self.counts])


def _latest_allowed(records_end: pd.Timestamp, spec: Spec) -> pd.Timestamp:
    """The last period end whose follow-up fits in the records (calendar arithmetic, searched by day)."""
    step = pd.Timedelta(days=1)
    span = spec.outcomes.follow_up.approx_days() + spec.outcomes.waiting_period.approx_days()
    candidate = records_end - pd.Timedelta(days=int(span) + 5)
    while spec.outcomes.waiting_period.add_to(spec.outcomes.follow_up.add_to(candidate + step)) <= records_end:
        candidate += step
    return candidate
