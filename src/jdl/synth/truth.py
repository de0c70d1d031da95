"""The planted truth: potential outcomes of participants, naive differences, base rates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jdl.synth import params as P
from jdl.synth.careers import Events
from jdl.synth.employment import OUT_OF_WORK, EmploymentRecords, Spells, days_covered
from jdl.synth.outcomes import IndexEvents, proven_reoffences
from jdl.synth.participants import Participants


def subset(index: IndexEvents, positions: np.ndarray) -> IndexEvents:
    return IndexEvents(index.person[positions], index.row[positions], index.index_date[positions])


def potential_reoffences(
    y0: Events, keep: np.ndarray, index: IndexEvents, group: Participants, people: int
) -> tuple[np.ndarray, np.ndarray]:
    """Proven reoffences of each participant without (Y(0)) and with (Y(1)) the programme."""
    planted = subset(index, group.index_position)
    untreated = proven_reoffences(y0, planted, people)
    treated = proven_reoffences(y0, planted, people, keep=keep)
    return untreated, treated


def cohort_effects(
    untreated: np.ndarray,
    treated: np.ndarray,
    recorded: Events,
    recorded_index: IndexEvents,
    group: Participants,
    all_participants: np.ndarray,
    people: int,
) -> dict[str, object]:
    """Sample ATT (rate and frequency) and the naive difference against everyone else."""
    in_cohort = np.isin(recorded_index.person, group.person)
    other_participants = ~in_cohort & np.isin(recorded_index.person, all_participants)
    pool_counts = proven_reoffences(
        recorded, subset(recorded_index, np.flatnonzero(~in_cohort)), people
    )
    recorded_counts = proven_reoffences(
        recorded, subset(recorded_index, np.flatnonzero(in_cohort)), people
    )
    reoffended_y0, reoffended_y1 = untreated > 0, treated > 0
    return {
        "rate_untreated_y0": _round(reoffended_y0.mean()),
        "rate_treated_y1": _round(reoffended_y1.mean()),
        "true_effect_rate": _round(np.mean(reoffended_y1.astype(float) - reoffended_y0)),
        "frequency_untreated_y0": _round(untreated.mean()),
        "frequency_treated_y1": _round(treated.mean()),
        "true_effect_frequency": _round(np.mean(treated - untreated)),
        "pool_size": int((~in_cohort).sum()),
        "pool_other_cohorts_participants": int(other_participants.sum()),
        "pool_rate": _round(np.mean(pool_counts > 0)),
        "pool_frequency": _round(pool_counts.mean()),
        "naive_difference_rate": _round(np.mean(recorded_counts > 0) - np.mean(pool_counts > 0)),
        "naive_difference_frequency": _round(recorded_counts.mean() - pool_counts.mean()),
    }


def pool_base_rates(recorded: Events, index: IndexEvents, people: int) -> dict[str, object]:
    """Recorded one-year proven reoffending of everyone with an index event, by index disposal."""
    counts = proven_reoffences(recorded, index, people)
    disposal = recorded.disposal[index.row]
    by_disposal: dict[str, object] = {}
    for code, name in enumerate(P.DISPOSALS):
        chosen = disposal == code
        if chosen.any():
            by_disposal[name] = {
                "people": int(chosen.sum()),
                "rate": _round(np.mean(counts[chosen] > 0)),
                "frequency": _round(counts[chosen].mean()),
            }
    return {
        "people_with_index_event": len(index.person),
        "rate": _round(np.mean(counts > 0)),
        "frequency": _round(counts.mean()),
        "mean_reoffences_among_reoffenders": _round(counts[counts > 0].mean()),
        "rate_by_index_disposal": by_disposal,
    }


def participants_frame(
    group: Participants,
    index: IndexEvents,
    y0: Events,
    untreated: np.ndarray,
    treated: np.ndarray,
) -> pd.DataFrame:
    """One row per planted participant: the answer key for linkage and outcome checks."""
    rows = index.row[group.index_position]
    return pd.DataFrame(
        {
            "cohort": group.name,
            "person_id": group.person + 1,
            "intervention_start": _iso(group.intervention_start),
            "index_date": _iso(index.index_date[group.index_position]),
            "index_disposal": np.asarray(P.DISPOSALS)[y0.disposal[rows]],
            "reoffences_y0": untreated,
            "reoffences_y1": treated,
        }
    )


def employment_effects(records: EmploymentRecords, person: np.ndarray, index_date: np.ndarray) -> dict[str, object]:
    """One-year employment and out-of-work benefit outcomes of one cohort's planted participants.

    Y(0) and Y(1) are the spells without and with the programme; the sample ATT is their mean
    difference over the planted participants (common random numbers).
    """
    first, last = index_date + 1, P.add_months(index_date, 12)

    def covered(spells: Spells) -> np.ndarray:
        return days_covered(spells, person, first, last)

    def out_of_work(spells: Spells) -> Spells:
        return spells.take(np.flatnonzero(spells.kind == OUT_OF_WORK))

    jobs_y0, jobs_y1 = covered(records.employment_y0), covered(records.employment)
    benefit_y0 = covered(out_of_work(records.benefits_y0))
    benefit_y1 = covered(out_of_work(records.benefits))
    return {
        "employment_rate_y0": _round(np.mean(jobs_y0 > 0)),
        "employment_rate_y1": _round(np.mean(jobs_y1 > 0)),
        "true_effect_employment_rate": _round(np.mean((jobs_y1 > 0).astype(float) - (jobs_y0 > 0))),
        "days_employed_y0": _round(jobs_y0.mean()),
        "true_effect_days_employed": _round(np.mean(jobs_y1 - jobs_y0)),
        "benefit_rate_y0": _round(np.mean(benefit_y0 > 0)),
        "true_effect_benefit_rate": _round(np.mean((benefit_y1 > 0).astype(float) - (benefit_y0 > 0))),
        "days_on_out_of_work_benefit_y0": _round(benefit_y0.mean()),
        "true_effect_days_on_out_of_work_benefit": _round(np.mean(benefit_y1 - benefit_y0)),
    }


def _iso(days: np.ndarray) -> list[str]:
    return [str(value) for value in np.asarray(days, dtype=np.int64).astype("datetime64[D]")]


def _round(value: float) -> float:
    return round(float(value), 6)
