"""One evaluation: the stages in order.

Only this module (and `batch`) knows the order of the stages; each stage is a
plain function of a spec section and data. Dask reads the national records
partition by partition; what comes back to pandas is the small part an
evaluation needs (candidate identities, index events in the period, and the
histories of the people in the treatment group and the comparison pool).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd

import jdl
from jdl import cohort as cohort_stage
from jdl import linkage as linkage_stage
from jdl import measures as measures_stage
from jdl.audit import (
    RunWriter,
    canonical_json,
    fingerprint_files,
    git_state,
    package_versions,
    platform_facts,
)
from jdl.errors import EvaluationCannotComplete, JdlUserError, Problem
from jdl.estimation import ESTIMATORS, estimate, naive_difference
from jdl.matching import MATCHERS, PROPENSITY_MODELS, match
from jdl.report import render_report
from jdl.sources import national
from jdl.sources.cohort_file import read_cohort
from jdl.spec import LoadedSpec, Spec, canonical_spec_json, load_spec, spec_sha256

log = logging.getLogger("jdl")

PEOPLE_LINK_COLUMNS = ["person_id", "pnc_id", "forename", "surname", "date_of_birth", "sex"]
PEOPLE_STATIC_COLUMNS = ["person_id", "date_of_birth", "sex", "ethnicity", "region"]
EVENT_COLUMNS = list(national.EVENTS.required)
HISTORY_COLUMNS = ["person_id", "offence_date", "outcome_date", "outcome_type", "offence_group",
                   "severity", "disposal", "sentence_days", "release_date"]
OVERLAP_BINS = 20


# ---------------------------------------------------------------- spec checks


def check_spec(loaded: LoadedSpec) -> list[Problem]:
    """Registry checks the spec package cannot make: every named method must exist."""
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
    if spec.data.mode == "records":
        if spec.cohort.index not in cohort_stage.INDEX_RULES:
            unknown(("cohort", "index"), spec.cohort.index, list(cohort_stage.INDEX_RULES), "index rule")
        for position, covariate in enumerate(spec.covariates):
            if covariate.name not in measures_stage.COVARIATES:
                unknown(("covariates", position), covariate.name, list(measures_stage.COVARIATES), "covariate")
            elif covariate.window is not None and not measures_stage.COVARIATES[covariate.name].takes_window:
                problems.append(loaded.problem(
                    ("covariates", position, "window"), f"covariate {covariate.name} takes no window",
                    value=str(covariate.window),
                    allowed=", ".join(sorted(n for n, c in measures_stage.COVARIATES.items() if c.takes_window)),
                ))
        for position, measure in enumerate(spec.outcomes.measures):
            if measure.name not in measures_stage.MEASURES:
                unknown(("outcomes", "measures", position), measure.name, list(measures_stage.MEASURES), "measure")
    return problems


def load_and_check(path: Path) -> LoadedSpec:
    loaded = load_spec(path)
    problems = check_spec(loaded)
    if problems:
        raise JdlUserError(problems)
    return loaded


# ---------------------------------------------------------------- timing


@dataclass
class StageClock:
    timings: dict[str, float] = field(default_factory=dict)
    on_stage: Callable[[str], None] | None = None

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.on_stage:
            self.on_stage(name)
        log.info("stage %s: start", name)
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            self.timings[name] = round(elapsed, 3)
            log.info("stage %s: %.2f s", name, elapsed)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    results: dict[str, Any] | None
    exit_status: int
    message: str


def _run_id(spec_hash: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{spec_hash[:8]}"


def _attrition(counts: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    submitted = counts[0][2] or 1
    return [
        {"stage": stage, "label": label, "count": int(n), "percent_of_submitted": 100.0 * n / submitted}
        for stage, label, n in counts
    ]


def _estimate_dict(result: Any, column: measures_stage.OutcomeColumn) -> dict[str, Any]:
    return {
        "label": column.label,
        "kind": column.kind,
        "display": column.display,
        "population": column.population,
        "lower_is_better": column.lower_is_better,
        "treatment": result.treatment_mean,
        "comparison": result.comparison_mean,
        "difference": result.difference,
        "se": result.se,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_value": result.p_value,
        "significant": bool(result.significant),
        "confidence": result.confidence,
        "n_treatment": int(result.n_treatment),
        "n_comparison": int(result.n_comparison),
        "people_needed": None if result.people_needed is None else int(result.people_needed),
        "min_detectable_effect": getattr(result, "min_detectable_effect", None),
        "estimand": result.estimand,
        "method": result.method,
        "suppressed": False,
        "suppression_reason": None,
    }


def _disclosure_control(measure: dict[str, Any], treated_reoffenders: int) -> None:
    """Suppress what DESIGN.md §1 says may not be published (raw values stay in results.json)."""
    if measure["population"] == "reoffenders" and treated_reoffenders < 30:
        measure["suppressed"] = True
        measure["suppression_reason"] = (
            f"fewer than 30 people in the treatment group reoffended ({treated_reoffenders})"
        )
    elif measure["kind"] == "binary":
        n = measure["n_treatment"]
        p = measure["treatment"]
        if n * p < 10 or n * (1 - p) < 10:
            measure["suppressed"] = True
            measure["suppression_reason"] = "too few people (n×p < 10) to publish this measure"


def _overlap(scores: np.ndarray, treated: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
    edges = np.linspace(0.0, 1.0, OVERLAP_BINS + 1)
    control = ~treated
    return {
        "bins": edges.tolist(),
        "treatment": np.histogram(scores[treated], bins=edges)[0].tolist(),
        "comparison_before": np.histogram(scores[control], bins=edges)[0].tolist(),
        "comparison_after": np.histogram(scores[control], bins=edges, weights=weights[control])[0].tolist(),
    }


# ---------------------------------------------------------------- the run


def _resolve_location(text: str) -> str:
    return text if "://" in text else str(Path(text))


class _Evaluation:
    """State of one records-mode run, stage by stage."""

    def __init__(self, loaded: LoadedSpec, writer: RunWriter, clock: StageClock) -> None:
        self.loaded = loaded
        self.spec: Spec = loaded.spec
        self.writer = writer
        self.clock = clock
        self.rejects: list[pd.DataFrame] = []
        self.warnings: list[str] = []
        self.counts: dict[str, int] = {}
        self.inputs: dict[str, Any] = {}

    def reject(self, source: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        out = pd.DataFrame(
            {
                "source": source,
                "row_number": frame["row_number"].astype("Int64") if "row_number" in frame else pd.NA,
                "person_id": frame["person_id"].astype("Int64") if "person_id" in frame else pd.NA,
                "reason": frame["reason"].astype("string"),
            }
        )
        self.rejects.append(out)

    def rejects_frame(self) -> pd.DataFrame:
        if not self.rejects:
            return pd.DataFrame({"source": [], "row_number": [], "person_id": [], "reason": []})
        frame = pd.concat(self.rejects, ignore_index=True)
        return frame.sort_values(["source", "row_number", "person_id"], kind="mergesort", na_position="last")

    # -- stages

    def run(self) -> dict[str, Any]:
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

        people_src = national.open_table(_resolve_location(records.people), national.PEOPLE,
                                         "data.national_records.people")
        events_src = national.open_table(_resolve_location(records.events), national.EVENTS,
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
                    part["person_id"].isin(ids) & part["outcome_type"].isin(("court_conviction", "caution")),
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
            frame = pd.concat([index_table[["person_id", "treated", "index_date"]], covariates, outcomes],
                              axis=1)
            covariate_columns = list(covariates.columns)

        return self._match_and_estimate(frame, covariate_columns, outcome_columns)

    def _match_and_estimate(
        self, frame: pd.DataFrame, covariate_columns: list[str],
        outcome_columns: list[measures_stage.OutcomeColumn],
    ) -> dict[str, Any]:
        spec = self.spec
        with self.clock.stage("matching"):
            exact_columns = [
                measures_stage.covariate_column(c.name, c.window)
                for c in spec.covariates if c.name in spec.matching.exact
            ]
            matching_spec = spec.matching.model_copy(update={"exact": exact_columns})
            matching = match(frame, treatment="treated", covariates=covariate_columns, spec=matching_spec)
            self.counts["matched"] = int(matching.n_treated_matched)
            self.counts["comparison"] = int(matching.n_control_matched)
            if matching.n_treated_matched < spec.cohort.min_size:
                raise EvaluationCannotComplete(
                    "cohort.min_size",
                    f"only {matching.n_treated_matched} participants could be matched, fewer than the "
                    f"minimum of {spec.cohort.min_size}",
                    hint="the Justice Data Lab publishes no result for fewer than 60 matched people; "
                    "submit more participants, or check the caliper (matching.caliper) and exact strata",
                )

        with self.clock.stage("estimation"):
            measures: dict[str, Any] = {}
            naive: dict[str, Any] = {}
            treated = frame["treated"].to_numpy(dtype=bool)
            in_matched_treatment = treated & (matching.units["weight"].to_numpy() > 0)
            treated_reoffenders = int(frame.loc[in_matched_treatment, "person_id"].isin(self.reoffender_ids).sum())
            for column in outcome_columns:
                result = estimate(frame[column.name], matching, spec.estimator, kind=column.kind)
                entry = _estimate_dict(result, column)
                _disclosure_control(entry, treated_reoffenders)
                measures[column.name] = entry
                raw = naive_difference(frame[column.name], frame["treated"], spec.estimator, kind=column.kind)
                naive[column.name] = {
                    "treatment": raw.treatment_mean, "comparison": raw.comparison_mean,
                    "difference": raw.difference, "ci_low": raw.ci_low, "ci_high": raw.ci_high,
                    "p_value": raw.p_value,
                }

        imbalanced = matching.balance.loc[matching.balance["flag"] == "imbalanced", "covariate"].tolist()
        if imbalanced:
            self.warnings.append(
                "covariates still imbalanced after matching (|SMD| > 0.10): " + ", ".join(imbalanced)
            )
        primary = spec.outcomes.primary
        primary_column = primary if primary in measures else next(
            c.name for c in outcome_columns if c.name.startswith(primary)
        )
        units = matching.units
        self.matched = pd.DataFrame(
            {
                "person_id": frame["person_id"].astype("int64"),
                "treated": frame["treated"].astype(bool),
                "weight": units["weight"].astype("float64"),
                "subclass": units["subclass"].astype("Int64"),
                "propensity_score": units["propensity_score"].astype("float64"),
                "distance": units["distance"].astype("float64"),
                "index_date": frame["index_date"],
            }
        ).loc[units["weight"].to_numpy() > 0].reset_index(drop=True)
        self.balance = matching.balance
        scores = units["propensity_score"].to_numpy(dtype=float)
        period = spec.cohort.period
        assert period is not None
        return {
            "jdl_version": jdl.__version__,
            "spec_id": spec.id,
            "title": spec.title,
            "organisation": spec.organisation,
            "mode": "records",
            "spec_sha256": spec_sha256(spec),
            "n": {
                "submitted": self.counts["submitted"],
                "linked": self.counts["linked"],
                "index_event_found": self.counts["index_event_found"],
                "eligible": self.counts["eligible"],
                "treatment": self.counts["matched"],
                "comparison": self.counts["comparison"],
                "comparison_pool": self.counts["comparison_pool"],
                "comparison_effective": float(matching.effective_sample_size_control),
            },
            "attrition": self.attrition(),
            "linkage": self.linkage_counts,
            "method": {
                "period": {"from": period.from_.isoformat(), "to": period.to.isoformat()},
                "records_end": self.records_end.date().isoformat(),
                "follow_up": str(spec.outcomes.follow_up),
                "waiting_period": str(spec.outcomes.waiting_period),
                "index_rule": spec.cohort.index,
                "matching": {"method": matching.method, "estimand": matching.estimand,
                             **matching.parameters},
                "propensity": {"model": matching.propensity.model,
                               "link": spec.matching.propensity.link},
                "estimator": {"method": spec.estimator.method, "confidence": spec.estimator.confidence,
                              "variance": spec.estimator.variance.method},
                "covariates": covariate_columns,
            },
            "primary": primary_column,
            "measures": measures,
            "naive": naive,
            "balance": _records(matching.balance),
            "propensity_overlap": _overlap(scores, frame["treated"].to_numpy(dtype=bool),
                                           units["weight"].to_numpy(dtype=float)),
            "seed": spec.matching.seed,
            "warnings": list(self.warnings),
        }

    def attrition(self) -> list[dict[str, Any]]:
        stages = [
            ("submitted", "Submitted"),
            ("linked", "Linked to national records"),
            ("index_event_found", "Index event found in the period"),
            ("eligible", "Eligible"),
            ("matched", "Matched"),
        ]
        return _attrition([(s, label, self.counts[s]) for s, label in stages if s in self.counts])


def _latest_allowed(records_end: pd.Timestamp, spec: Spec) -> pd.Timestamp:
    """The last period end whose follow-up fits in the records (calendar arithmetic, searched by day)."""
    step = pd.Timedelta(days=1)
    span = spec.outcomes.follow_up.approx_days() + spec.outcomes.waiting_period.approx_days()
    candidate = records_end - pd.Timedelta(days=int(span) + 5)
    while spec.outcomes.waiting_period.add_to(spec.outcomes.follow_up.add_to(candidate + step)) <= records_end:
        candidate += step
    return candidate


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


@contextlib.contextmanager
def dask_context(scheduler: str | None) -> Iterator[str]:
    """A distributed client for `--scheduler`, otherwise Dask's local threaded scheduler."""
    if scheduler:
        from distributed import Client

        with Client(scheduler) as client, dask.config.set(scheduler=client):
            yield f"distributed:{scheduler}"
    else:
        with dask.config.set(scheduler="threads"):
            yield "local-threads"


def run_evaluation(
    spec_path: Path,
    *,
    out_dir: Path | None = None,
    scheduler: str | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Run one evaluation and write its run directory."""
    started = time.perf_counter()
    loaded = load_and_check(spec_path)
    spec = loaded.spec
    if spec.data.mode != "records":
        raise JdlUserError([loaded.problem(
            ("data", "table"), "table mode is not available in this version of jdl",
            allowed="record mode: data.national_records + data.cohort",
        )])
    spec_hash = spec_sha256(spec)
    run_id = _run_id(spec_hash)
    run_dir = out_dir if out_dir is not None else Path("runs") / spec.id / run_id
    writer = RunWriter(run_dir)
    log_handler = _attach_log(writer.adopt("run.log"))
    clock = StageClock(on_stage=on_stage)
    evaluation = _Evaluation(loaded, writer, clock)
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "spec_path": str(spec_path),
        "spec_sha256": spec_hash,
        "resolved_spec": __import__("json").loads(canonical_spec_json(spec)),
        "spec_chain": [str(p) for p in loaded.chain],
        "git": git_state(spec_path),
        "packages": package_versions(),
        "platform": platform_facts(),
        "seeds": {"matching": spec.matching.seed, "bootstrap": spec.estimator.variance.seed},
    }
    status, message, results = 0, "", None
    try:
        with dask_context(scheduler) as executor:
            manifest["executor"] = executor
            log.info("run %s of spec %s (sha256 %s)", run_id, spec.id, spec_hash)
            results = evaluation.run()
    except EvaluationCannotComplete as error:
        status, message = error.exit_status, error.render()
        log.error("evaluation could not complete: %s", message)
    except JdlUserError:
        _detach_log(log_handler)
        writer.abandon()
        raise
    manifest["inputs"] = evaluation.inputs
    manifest["timings_seconds"] = {**clock.timings, "total": round(time.perf_counter() - started, 3)}
    manifest["status"] = "complete" if results is not None else "incomplete"
    rejects = evaluation.rejects_frame()
    writer.csv("rejects.csv", rejects)
    if results is None:
        writer.text("attrition.json", canonical_json({"attrition": evaluation.attrition(),
                                                      "reason": message}))
    else:
        with clock.stage("report"):
            writer.csv("balance.csv", evaluation.balance)
            writer.parquet("matched.parquet", evaluation.matched)
            for fmt in spec.report.formats:
                if fmt == "json":
                    continue
                name = "report.html" if fmt == "html" else "report.md"
                writer.text(name, render_report(results, template=spec.report.template, fmt=fmt))
            writer.text("results.json", canonical_json(results))
        manifest["timings_seconds"]["report"] = clock.timings["report"]
        manifest["timings_seconds"]["total"] = round(time.perf_counter() - started, 3)
        manifest["results_sha256"] = hashlib.sha256(canonical_json(results).encode()).hexdigest()
    writer.text("manifest.json", canonical_json(manifest))
    _detach_log(log_handler)
    writer.commit()
    return RunOutcome(run_dir, results, status, message)


def _attach_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _detach_log(handler: logging.Handler) -> None:
    handler.close()
    log.removeHandler(handler)
