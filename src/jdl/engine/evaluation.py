"""What every evaluation shares once its units are known: matching, estimation, the results.

A mode (national records, or one table) prepares a frame with one row per
unit: its id, a `treated` flag, covariate columns and outcome columns. From
there the stages are the same, and so is the shape of `results.json`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import jdl
from jdl.engine.subgroups import run_subgroups
from jdl.errors import EvaluationCannotComplete
from jdl.estimation import estimate, naive_difference
from jdl.estimation.disclosure import apply_disclosure, reoffender_measures_publishable
from jdl.estimation.multiplicity import adjust_p_values
from jdl.estimation.ratios import effect_ratios
from jdl.estimation.sensitivity import e_value, placebo_estimate, rosenbaum_bounds
from jdl.estimation.survival import time_to_first_reoffence_curves
from jdl.matching import MatchingResult, match
from jdl.matching.background import background_executor, taken
from jdl.measures import OutcomeColumn
from jdl.spec import LoadedSpec, Spec, spec_sha256

log = logging.getLogger("jdl")

OVERLAP_BINS = 20


@dataclass
class StageClock:
    """Wall-clock time of each stage, for the manifest and the progress display."""

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


def attrition_table(counts: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    submitted = counts[0][2] or 1
    return [
        {"stage": stage, "label": label, "count": int(n), "percent_of_submitted": 100.0 * n / submitted}
        for stage, label, n in counts
    ]


def estimate_entry(result: Any, column: OutcomeColumn) -> dict[str, Any]:
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
        "min_detectable_effect": result.min_detectable_effect,
        "estimand": result.estimand,
        "method": result.method,
        "suppressed": False,
        "suppression_reason": None,
    }


def overlap_histogram(scores: np.ndarray, treated: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
    edges = np.linspace(0.0, 1.0, OVERLAP_BINS + 1)
    control = ~treated
    return {
        "bins": edges.tolist(),
        "treatment": np.histogram(scores[treated], bins=edges)[0].tolist(),
        "comparison_before": np.histogram(scores[control], bins=edges)[0].tolist(),
        "comparison_after": np.histogram(scores[control], bins=edges, weights=weights[control])[0].tolist(),
    }


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


class Evaluation(ABC):
    """State of one run, stage by stage; a mode subclass supplies `prepare()`."""

    mode = "records"
    id_column = "person_id"

    def __init__(self, loaded: LoadedSpec, clock: StageClock) -> None:
        self.loaded = loaded
        self.spec: Spec = loaded.spec
        self.clock = clock
        self.rejects: list[pd.DataFrame] = []
        self.warnings: list[str] = []
        self.counts: dict[str, int] = {}
        self.inputs: dict[str, Any] = {}
        self.balance = pd.DataFrame()
        self.matched = pd.DataFrame()
        self.inference: dict[str, Any] = {}
        # with several follow-up windows: outcome column -> (its window, the column in the primary window)
        self.outcome_windows: dict[str, tuple[str, str]] = {}

    # -- hooks for the modes

    @abstractmethod
    def prepare(self) -> tuple[pd.DataFrame, list[str], list[OutcomeColumn]]:
        """The unit frame (id, treated, covariates, outcomes), covariate and outcome columns."""

    @abstractmethod
    def attrition(self) -> list[dict[str, Any]]:
        """The stages people were lost at, with counts and share of those submitted."""

    def method_details(self) -> dict[str, Any]:
        return {}

    def extra_results(self) -> dict[str, Any]:
        return {}

    def treated_reoffenders(
        self, frame: pd.DataFrame, in_matched_treatment: np.ndarray, follow_up: str | None = None
    ) -> int | None:
        """Matched participants who reoffended in the `follow_up` window (None: the primary one)."""
        return None

    def matched_extra_columns(self, frame: pd.DataFrame) -> dict[str, pd.Series]:
        return {}

    def participant_columns(self) -> set[str]:
        """Frame columns known for participants only (an organisation's own cohort columns)."""
        return set()

    # -- shared

    def reject(self, source: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        self.rejects.append(
            pd.DataFrame(
                {
                    "source": source,
                    "row_number": frame["row_number"].astype("Int64") if "row_number" in frame else pd.NA,
                    "person_id": frame["person_id"].astype("Int64") if "person_id" in frame else pd.NA,
                    "reason": frame["reason"].astype("string"),
                }
            )
        )

    def rejects_frame(self) -> pd.DataFrame:
        if not self.rejects:
            return pd.DataFrame({"source": [], "row_number": [], "person_id": [], "reason": []})
        frame = pd.concat(self.rejects, ignore_index=True)
        return frame.sort_values(["source", "row_number", "person_id"], kind="mergesort", na_position="last")

    def run(self) -> dict[str, Any]:
        frame, covariate_columns, outcome_columns = self.prepare()
        return self.match_and_estimate(frame, covariate_columns, outcome_columns)

    def exact_columns(self) -> list[str]:
        return list(self.spec.matching.exact)

    def match_and_estimate(
        self, frame: pd.DataFrame, covariate_columns: list[str], outcome_columns: list[OutcomeColumn]
    ) -> dict[str, Any]:
        spec = self.spec
        # the unmatched differences need no matching: they are computed on a second thread while
        # the matching's serial parts leave a core idle, each one whole on that thread (the same
        # arithmetic as on the main thread); the estimation stage collects them in outcome order
        # scipy.sparse and statsmodels add process-wide warning filters when first imported (the
        # naive differences import scipy.stats): imported here, not on the second thread, so that a
        # filter is never added while this thread is inside warnings.catch_warnings(), whose exit
        # would drop it
        importlib.import_module("scipy.sparse")
        importlib.import_module("statsmodels.tools.sm_exceptions")
        background = background_executor("jdl-naive")
        try:
            treated_column = frame["treated"]
            naive_futures = {
                column.name: background.submit(naive_difference, frame[column.name], treated_column,
                                               spec.estimator, kind=column.kind, power=False)
                for column in outcome_columns
            }
            return self._match_and_estimate(frame, covariate_columns, outcome_columns, naive_futures)
        finally:
            background.shutdown(wait=True, cancel_futures=True)

    def _match_and_estimate(
        self, frame: pd.DataFrame, covariate_columns: list[str], outcome_columns: list[OutcomeColumn],
        naive_futures: dict[str, Future[Any]],
    ) -> dict[str, Any]:
        spec = self.spec
        with self.clock.stage("matching"):
            matching_spec = spec.matching.model_copy(update={"exact": self.exact_columns()})
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
            measures, naive = self._estimate_all(frame, matching, outcome_columns, covariate_columns,
                                                 naive_futures)

        imbalanced = matching.balance.loc[matching.balance["flag"] == "imbalanced", "covariate"].tolist()
        if imbalanced:
            self.warnings.append(
                "covariates still imbalanced after matching (|SMD| > 0.10): " + ", ".join(imbalanced)
            )
        units = matching.units
        keep = units["weight"].to_numpy() > 0
        self.matched = pd.DataFrame(
            {
                self.id_column: frame["unit_id"],
                "treated": frame["treated"].astype(bool),
                "weight": units["weight"].astype("float64"),
                "subclass": units["subclass"].astype("Int64"),
                "propensity_score": units["propensity_score"].astype("float64"),
                "distance": units["distance"].astype("float64"),
                **self.matched_extra_columns(frame),
            }
        ).loc[keep].reset_index(drop=True)
        self.balance = matching.balance
        results = self._results(frame, matching, measures, naive, covariate_columns, outcome_columns)
        if spec.subgroups:
            with self.clock.stage("subgroups"):
                results["subgroups"] = run_subgroups(
                    spec, frame, covariate_columns, outcome_columns, results["primary"],
                    participant_only=self.participant_columns(), exact_columns=self.exact_columns(),
                )
        return results

    def follow_up_days(self) -> float | None:
        """Length of the (longest) follow-up window in days, for time-to-event curves (record mode)."""
        return None

    def survival_outcome(self) -> tuple[str, str | None]:
        """The days-to-first-reoffence column the curves use, and its window when there are several."""
        return "days_to_first_reoffence", None

    def _estimate_all(
        self, frame: pd.DataFrame, matching: MatchingResult, outcome_columns: list[OutcomeColumn],
        covariate_columns: list[str], naive_futures: dict[str, Future[Any]],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        spec = self.spec
        measures: dict[str, Any] = {}
        naive: dict[str, Any] = {}
        treated = frame["treated"].to_numpy(dtype=bool)
        in_matched_treatment = treated & (matching.units["weight"].to_numpy() > 0)
        covariates = frame[covariate_columns]
        variance = spec.estimator.variance.method
        for column in outcome_columns:
            result = estimate(frame[column.name], matching, spec.estimator, kind=column.kind,
                              covariates=covariates)
            entry = estimate_entry(result, column)
            window = self.outcome_windows.get(column.name)
            if window is not None:
                entry["follow_up"], entry["column"] = window
            # who counts as a reoffender (for disclosure control) depends on the window
            reoffenders = self.treated_reoffenders(frame, in_matched_treatment,
                                                   follow_up=None if window is None else window[0])
            if column.kind in ("binary", "count") and variance in ("pair_cluster_robust", "robust"):
                ratios = effect_ratios(frame[column.name], matching, column.kind,
                                       confidence=spec.estimator.confidence, variance=variance)
                entry["ratios"] = {
                    name: {"estimate": r.estimate, "ci_low": r.ci_low, "ci_high": r.ci_high,
                           "p_value": r.p_value}
                    for name, r in ratios.ratios.items()
                }
            entry = apply_disclosure(entry, treated_reoffenders=reoffenders, name=column.name)
            measures[column.name] = entry
            # its errors are raised here, in outcome order; one not started yet is computed here
            raw = taken(naive_futures[column.name], functools.partial(
                naive_difference, frame[column.name], frame["treated"], spec.estimator, kind=column.kind,
                power=False))
            naive[column.name] = {
                "treatment": raw.treatment_mean, "comparison": raw.comparison_mean,
                "difference": raw.difference, "ci_low": raw.ci_low, "ci_high": raw.ci_high,
                "p_value": raw.p_value,
            }
        self._adjust_p_values(measures)
        self.inference = self._inference(frame, matching, measures, covariates, in_matched_treatment)
        return measures, naive

    def _adjust_p_values(self, measures: dict[str, Any]) -> None:
        multiplicity = self.spec.estimator.multiplicity
        primary = self._primary_name(measures)
        adjusted = adjust_p_values(
            {name: m["p_value"] for name, m in measures.items()}, [primary], multiplicity.method,
            family=multiplicity.family, alpha=1 - self.spec.estimator.confidence,
        )
        for name, value in adjusted.items():
            measures[name]["p_value_adjusted"] = value.adjusted
            measures[name]["multiplicity"] = {"method": value.method, "family": value.family,
                                              "family_size": value.family_size,
                                              "significant_adjusted": value.significant}

    def _primary_name(self, measures: dict[str, Any]) -> str:
        primary = self.spec.outcomes.primary
        return primary if primary in measures else next(n for n in measures if n.startswith(primary))

    def _inference(
        self, frame: pd.DataFrame, matching: MatchingResult, measures: dict[str, Any],
        covariates: pd.DataFrame, in_matched_treatment: np.ndarray,
    ) -> dict[str, Any]:
        """Sensitivity analyses of the primary measure and time-to-event curves."""
        spec = self.spec
        sensitivity = spec.estimator.sensitivity
        primary = self._primary_name(measures)
        entry = measures[primary]
        out: dict[str, Any] = {}
        if sensitivity.rosenbaum and entry["kind"] == "binary":
            # the bound is one-sided: half the two-sided level keeps it consistent with the headline test
            alpha = (1 - spec.estimator.confidence) / 2
            bound = rosenbaum_bounds(frame[primary], matching, alpha=alpha, gamma_max=sensitivity.gamma_max)
            out["rosenbaum"] = {
                "available": bound.available, "method": bound.method, "alpha": alpha,
                "gamma_critical": bound.gamma_critical,
                "gamma_max": bound.gamma_max, "direction": bound.direction, "n_sets": bound.n_sets,
                "n_informative_sets": bound.n_informative_sets,
                "grid": [list(point) for point in bound.grid], "note": bound.note,
            }
        risk_ratio = entry.get("ratios", {}).get("risk_ratio") or entry.get("ratios", {}).get("rate_ratio")
        if sensitivity.e_value and risk_ratio and all(
            np.isfinite(risk_ratio[k]) and risk_ratio[k] > 0 for k in ("estimate", "ci_low", "ci_high")
        ):
            value = e_value(risk_ratio["estimate"], risk_ratio["ci_low"], risk_ratio["ci_high"])
            out["e_value"] = {"method": value.method, "risk_ratio": value.risk_ratio,
                              "e_value": value.e_value, "e_value_ci": value.e_value_ci}
        if sensitivity.placebo_outcome:
            placebo_column = sensitivity.placebo_outcome
            values = pd.to_numeric(frame[placebo_column], errors="coerce")
            kind = "binary" if set(pd.unique(values.dropna())) <= {0, 1} else "continuous"
            placebo = placebo_estimate(values, matching, spec.estimator, kind=kind, name=placebo_column,
                                       covariates=covariates)
            out["placebo"] = {
                "outcome": placebo.outcome, "kind": kind, "label": placebo_column,
                "display": "percent" if kind == "binary" else "value",
                "difference": placebo.estimate.difference,
                "ci_low": placebo.estimate.ci_low, "ci_high": placebo.estimate.ci_high,
                "p_value": placebo.estimate.p_value,
                "treatment": placebo.estimate.treatment_mean, "comparison": placebo.estimate.comparison_mean,
                "consistent_with_no_effect": placebo.consistent_with_no_effect, "note": placebo.note,
            }
        days = self.follow_up_days()
        days_column, window = self.survival_outcome()
        reoffenders = self.treated_reoffenders(frame, in_matched_treatment, follow_up=window)
        if (days is not None and days_column in frame and reoffenders is not None
                and reoffender_measures_publishable(reoffenders)):
            curves = time_to_first_reoffence_curves(frame[days_column], matching, follow_up_days=days)
            out["time_to_first_reoffence"] = {
                "method": curves.method,
                "curves": {label: {"time": list(c.time), "survival": list(c.survival)}
                           for label, c in curves.curves.items()},
                **({"follow_up": window} if window is not None else {}),
            }
        return out

    def _results(
        self,
        frame: pd.DataFrame,
        matching: MatchingResult,
        measures: dict[str, Any],
        naive: dict[str, Any],
        covariate_columns: list[str],
        outcome_columns: list[OutcomeColumn],
    ) -> dict[str, Any]:
        spec = self.spec
        primary = spec.outcomes.primary
        primary_column = primary if primary in measures else next(
            c.name for c in outcome_columns if c.name.startswith(primary)
        )
        units = matching.units
        n = {
            "submitted": self.counts["submitted"],
            "eligible": self.counts["eligible"],
            "treatment": self.counts["matched"],
            "comparison": self.counts["comparison"],
            "comparison_pool": self.counts["comparison_pool"],
            "comparison_effective": float(matching.effective_sample_size_control),
        }
        for optional in ("linked", "index_event_found"):
            if optional in self.counts:
                n[optional] = self.counts[optional]
        return {
            "jdl_version": jdl.__version__,
            "spec_id": spec.id,
            "title": spec.title,
            "organisation": spec.organisation,
            "mode": self.mode,
            "spec_sha256": spec_sha256(spec),
            "n": n,
            "attrition": self.attrition(),
            **self.extra_results(),
            "method": {
                **self.method_details(),
                "matching": {"method": matching.method, "estimand": matching.estimand, **matching.parameters},
                "propensity": {"model": matching.propensity.model, "link": spec.matching.propensity.link},
                "estimator": {"method": spec.estimator.method, "confidence": spec.estimator.confidence,
                              "variance": spec.estimator.variance.method},
                "covariates": covariate_columns,
            },
            "primary": primary_column,
            "measures": measures,
            "inference": self.inference,
            "naive": naive,
            "balance": frame_records(matching.balance),
            "propensity_overlap": overlap_histogram(
                units["propensity_score"].to_numpy(dtype=float),
                frame["treated"].to_numpy(dtype=bool),
                units["weight"].to_numpy(dtype=float),
            ),
            "seed": spec.matching.seed,
            "warnings": list(self.warnings),
        }
