"""Parameters of the synthetic national records: record span, career model, selection, noise.

Everything the generator assumes is here, and all of it is written to truth.json, so an
evaluation on the synthetic data can be checked against what was planted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import numpy as np

EPOCH = dt.date(1970, 1, 1)
DAYS_PER_YEAR = 365.25

OUTCOME_TYPES = ("court_conviction", "caution", "pnd")
COURT, CAUTION, PND = 0, 1, 2

SEVERITIES = ("indictable", "either_way", "summary")
INDICTABLE, EITHER_WAY, SUMMARY = 0, 1, 2

DISPOSALS = ("custody", "suspended", "community", "fine", "discharge", "caution", "pnd")
CUSTODY, SUSPENDED, COMMUNITY, FINE, DISCHARGE, CAUTION_DISPOSAL, PND_DISPOSAL = range(7)

OFFENCE_GROUPS = (
    "violence",
    "theft",
    "burglary",
    "robbery",
    "drugs",
    "public_order",
    "criminal_damage",
    "fraud",
    "sexual",
    "motoring",
    "other",
)
OFFENCE_GROUP_SHARES = (0.20, 0.24, 0.05, 0.02, 0.12, 0.09, 0.07, 0.05, 0.02, 0.08, 0.06)
# Share of (indictable, either way, summary) for each offence group, in OFFENCE_GROUPS order.
SEVERITY_BY_GROUP = (
    (0.15, 0.45, 0.40),
    (0.00, 0.55, 0.45),
    (0.35, 0.65, 0.00),
    (1.00, 0.00, 0.00),
    (0.15, 0.60, 0.25),
    (0.00, 0.30, 0.70),
    (0.00, 0.35, 0.65),
    (0.10, 0.80, 0.10),
    (0.60, 0.35, 0.05),
    (0.00, 0.10, 0.90),
    (0.05, 0.35, 0.60),
)
# Offence groups a penalty notice for disorder can be given for.
PND_GROUPS = ("theft", "drugs", "public_order", "criminal_damage", "other")

SEXES = ("M", "F")
ETHNICITIES = ("White", "Black", "Asian", "Mixed", "Other", "Unknown")
ETHNICITY_SHARES = (0.73, 0.10, 0.08, 0.04, 0.02, 0.03)
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
REGION_SHARES = (0.05, 0.13, 0.10, 0.08, 0.10, 0.10, 0.17, 0.13, 0.08, 0.06)


def day_number(value: dt.date) -> int:
    """Days since 1970-01-01, the integer form every date takes inside the generator."""
    return (value - EPOCH).days


def add_months(days: np.ndarray, months: int) -> np.ndarray:
    """Calendar month addition on day numbers, clipping to the month's last day (29 Feb + 1y = 28 Feb)."""
    values = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    month_start = values.astype("datetime64[M]")
    day_in_month = (values - month_start.astype("datetime64[D]")).astype(np.int64)
    target = month_start + np.timedelta64(months, "M")
    month_length = (
        (target + np.timedelta64(1, "M")).astype("datetime64[D]") - target.astype("datetime64[D]")
    ).astype(np.int64)
    result = target.astype("datetime64[D]") + np.minimum(day_in_month, month_length - 1)
    return result.astype(np.int64)


@dataclass(frozen=True)
class CohortPlan:
    """One example organisation's submission: its size and programme strands."""

    name: str
    rows: int
    strands: tuple[str, ...]


@dataclass(frozen=True)
class SynthParameters:
    """Assumptions of the generator; defaults give the documented demo data."""

    records_from: dt.date = dt.date(2000, 1, 1)
    extraction_date: dt.date = dt.date(2020, 6, 30)
    period_from: dt.date = dt.date(2016, 1, 1)
    period_to: dt.date = dt.date(2018, 12, 31)
    people_per_file: int = 250_000

    # Who has a record: birth years, sex, onset and length of criminal careers.
    birth_from: dt.date = dt.date(1940, 1, 1)
    birth_to: dt.date = dt.date(2005, 6, 30)
    male_share: float = 0.80
    onset_min_age: float = 12.0
    onset_gamma_shape: float = 2.2
    onset_gamma_scale: float = 4.0
    late_onset_share: float = 0.15
    late_onset_ages: tuple[float, float] = (25.0, 50.0)
    one_off_share: float = 0.40
    career_mean_years: float = 10.0

    # Offending rate (offences per year at the peak age) = frailty x sex x age curve.
    frailty_median: float = 0.25
    frailty_log_sd: float = 1.7
    female_rate_multiplier: float = 0.6
    juvenile_rate_multiplier: float = 0.7
    peak_age: float = 20.0
    desistance_years: float = 15.0
    spree_share: float = 0.6
    spree_mean_days: float = 25.0
    release_rate_multiplier: float = 2.0

    # Planted effect: each offence after the index date survives with this probability.
    effect_multiplier: float = 0.6

    # Employment and benefit spells (jdl.synth.employment): employability = intercept
    # - log_offences x log(1 + proven offences) - custody x (ever in custody) + personal noise;
    # job and out-of-work durations are lognormal around medians scaled by exp(+/- score / 2).
    employment_records_from: dt.date = dt.date(2010, 1, 1)
    employment_intercept: float = 0.6
    employment_log_offences: float = 0.45
    employment_custody: float = 0.7
    employment_person_sd: float = 0.8
    employment_job_median_days: int = 420
    employment_gap_median_days: int = 240
    employment_duration_sigma: float = 0.9
    benefit_claim_share: float = 0.7
    benefit_delay_days: int = 45
    other_benefit_share: float = 0.12
    # Planted employment effect: a participant out of work all year after the index date finds a
    # job in that year with this probability (common random numbers, as for reoffending).
    employment_effect_share: float = 0.12

    # Selection into the programmes (log-odds weights on observed covariates only).
    selection_age_under_21: float = 0.7
    selection_age_21_to_25: float = 0.35
    selection_log_prior_offences: float = 0.55
    selection_custody_index: float = 1.0
    selection_male: float = 0.3
    selection_region: tuple[tuple[str, float], ...] = (
        ("London", 0.4),
        ("North West", 0.3),
        ("West Midlands", 0.2),
        ("South West", -0.3),
        ("Wales", -0.2),
    )
    max_participant_share: float = 0.2

    cohorts: tuple[CohortPlan, ...] = (
        CohortPlan("small", 80, ("mentoring", "peer_support")),
        CohortPlan("medium", 500, ("employment", "education", "mentoring")),
        CohortPlan("large", 5_000, ("mentoring", "employment", "housing", "education")),
    )

    # Cohort file noise.
    missing_pnc_share: float = 0.30
    typo_share: float = 0.04
    formatting_share: float = 0.03
    fabricated_share: float = 0.02
    intervention_lead_days: int = 60
    in_prison_lead_days: int = 300

    def as_json(self) -> dict[str, object]:
        values = asdict(self)
        for key, value in values.items():
            if isinstance(value, dt.date):
                values[key] = value.isoformat()
        return values
