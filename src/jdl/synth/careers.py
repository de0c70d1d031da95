"""Criminal careers as event streams, simulated for everyone at once.

Each person offends as a Poisson process whose rate is a personal frailty (unobserved)
times an age-crime curve, between an onset age and the end of their career. Offences are
generated one per step for all still-active people, so the Python loop runs over the
offence number, never over people. Custody incapacitates: offending time pauses between a
custodial conviction and release, so no offence falls inside a custodial term (people on
bail may offend between an offence and its conviction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jdl.synth import params as P


@dataclass(frozen=True)
class Candidates:
    """Potential people with a record; only those with an event inside the span are kept."""

    date_of_birth: np.ndarray  # int64 day numbers
    male: np.ndarray  # bool
    onset: np.ndarray  # float day number of the first offence
    career_end: np.ndarray  # float day number after which the person no longer offends
    frailty: np.ndarray  # offences per year at the peak age (unobserved)

    def __len__(self) -> int:
        return len(self.date_of_birth)


@dataclass(frozen=True)
class Events:
    """An event stream as parallel arrays; release is meaningful only for custody."""

    person: np.ndarray  # int64 (candidate index, later person position)
    offence: np.ndarray  # int64 day numbers
    outcome: np.ndarray  # int64 day numbers
    outcome_type: np.ndarray  # int8 code into params.OUTCOME_TYPES
    offence_group: np.ndarray  # int8 code into params.OFFENCE_GROUPS
    severity: np.ndarray  # int8 code into params.SEVERITIES
    disposal: np.ndarray  # int8 code into params.DISPOSALS
    sentence_days: np.ndarray  # int32, 0 when not custody
    release: np.ndarray  # int64 day numbers, equal to outcome when not custody

    def __len__(self) -> int:
        return len(self.person)

    def take(self, rows: np.ndarray) -> Events:
        return Events(**{name: getattr(self, name)[rows] for name in self.__dataclass_fields__})

    @staticmethod
    def concatenate(parts: list[Events]) -> Events:
        return Events(
            **{
                name: np.concatenate([getattr(part, name) for part in parts])
                for name in Events.__dataclass_fields__
            }
        )

    @property
    def custody(self) -> np.ndarray:
        return self.disposal == P.CUSTODY

    @property
    def proven(self) -> np.ndarray:
        return self.outcome_type != P.PND

    @property
    def index_date(self) -> np.ndarray:
        """Release from custody for custodial sentences, the outcome date otherwise."""
        return np.where(self.custody, self.release, self.outcome)


def draw_candidates(rng: np.random.Generator, count: int, p: P.SynthParameters) -> Candidates:
    born_from, born_to = P.day_number(p.birth_from), P.day_number(p.birth_to)
    date_of_birth = rng.integers(born_from, born_to + 1, size=count, dtype=np.int64)
    male = rng.random(count) < p.male_share
    late = rng.random(count) < p.late_onset_share
    onset_age = np.where(
        late,
        rng.uniform(*p.late_onset_ages, size=count),
        p.onset_min_age + rng.gamma(p.onset_gamma_shape, p.onset_gamma_scale, size=count),
    )
    one_off = rng.random(count) < p.one_off_share
    career_years = np.where(one_off, 0.0, rng.exponential(p.career_mean_years, size=count))
    onset = date_of_birth + onset_age * P.DAYS_PER_YEAR
    frailty = p.frailty_median * np.exp(p.frailty_log_sd * rng.standard_normal(count))
    return Candidates(
        date_of_birth=date_of_birth,
        male=male,
        onset=onset,
        career_end=onset + career_years * P.DAYS_PER_YEAR,
        frailty=frailty,
    )


def _age_curve(age: np.ndarray, p: P.SynthParameters) -> np.ndarray:
    """Relative offending rate by age: lower for young teens, flat to the peak, then desisting."""
    decline = np.exp(-np.maximum(age - p.peak_age, 0.0) / p.desistance_years)
    return np.where(age < 16.0, p.juvenile_rate_multiplier, 1.0) * decline


def _categorical(rng: np.random.Generator, shares: np.ndarray, count: int) -> np.ndarray:
    cumulative = np.cumsum(shares)
    codes = np.searchsorted(cumulative / cumulative[-1], rng.random(count), side="right")
    return np.minimum(codes, len(shares) - 1).astype(np.int8)


_CAUTION_BY_PRIORS = np.array([0.45, 0.28, 0.18, 0.12, 0.08, 0.05])
_CUSTODY_LOGIT_BY_SEVERITY = np.array([0.0, -2.2, -3.8])
# Shares of (suspended, community, fine, discharge) among non-custodial court sentences.
_NON_CUSTODIAL_BY_SEVERITY = np.array(
    [[0.45, 0.40, 0.10, 0.05], [0.20, 0.35, 0.30, 0.15], [0.05, 0.20, 0.55, 0.20]]
)
_SENTENCE_MEDIAN_DAYS = np.array([540.0, 150.0, 42.0])
_SENTENCE_LOG_SD = np.array([0.8, 0.7, 0.5])
_SENTENCE_MAX_DAYS = np.array([15 * 365, 5 * 365, 182])
_COURT_LAG_MEAN_DAYS = np.array([210.0, 110.0, 50.0])


def _offence_attributes(
    rng: np.random.Generator,
    age: np.ndarray,
    prior_proven: np.ndarray,
    prior_custody: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Offence group, severity, outcome type, disposal, sentence and lag of one offence each."""
    count = len(age)
    group = _categorical(rng, np.asarray(P.OFFENCE_GROUP_SHARES), count)
    severity_cumulative = np.cumsum(np.asarray(P.SEVERITY_BY_GROUP), axis=1)[group]
    u = rng.random(count)
    severity = (
        (u > severity_cumulative[:, 0]).astype(np.int8) + (u > severity_cumulative[:, 1])
    ).astype(np.int8)
    indictable = severity == P.INDICTABLE

    caution_p = _CAUTION_BY_PRIORS[np.minimum(prior_proven, len(_CAUTION_BY_PRIORS) - 1)]
    caution_p = np.minimum(np.where(age < 18, caution_p * 1.4, caution_p), 0.8)
    caution_p = np.where(indictable, caution_p * 0.1, caution_p)
    pnd_group = np.isin(group, [P.OFFENCE_GROUPS.index(name) for name in P.PND_GROUPS])
    pnd_p = np.where(prior_proven == 0, 0.30, np.where(prior_proven < 3, 0.20, 0.10))
    pnd_p = np.where(pnd_group & ~indictable & (age >= 16), pnd_p, 0.0)
    u = rng.random(count)
    outcome_type = np.full(count, P.COURT, dtype=np.int8)
    outcome_type[u < pnd_p + caution_p * (1 - pnd_p)] = P.CAUTION
    outcome_type[u < pnd_p] = P.PND

    custody_logit = (
        _CUSTODY_LOGIT_BY_SEVERITY[severity]
        + 0.3 * np.sqrt(np.minimum(prior_proven, 40))
        + 0.5 * (prior_custody > 0)
        - 1.2 * (age < 18)
    )
    custody = rng.random(count) < 1 / (1 + np.exp(-custody_logit))
    non_custodial_cumulative = np.cumsum(_NON_CUSTODIAL_BY_SEVERITY, axis=1)[severity]
    u = rng.random(count)
    non_custodial = P.SUSPENDED + (u[:, None] > non_custodial_cumulative[:, :3]).sum(axis=1)
    disposal = np.where(custody, P.CUSTODY, non_custodial).astype(np.int8)
    disposal[outcome_type == P.CAUTION] = P.CAUTION_DISPOSAL
    disposal[outcome_type == P.PND] = P.PND_DISPOSAL
    is_custody = disposal == P.CUSTODY

    sentence = _SENTENCE_MEDIAN_DAYS[severity] * np.exp(
        _SENTENCE_LOG_SD[severity] * rng.standard_normal(count)
    )
    sentence = np.clip(np.rint(sentence), 7, _SENTENCE_MAX_DAYS[severity]).astype(np.int32)
    sentence = np.where(is_custody, sentence, 0).astype(np.int32)

    court_lag = 7 + rng.gamma(2.0, _COURT_LAG_MEAN_DAYS[severity] / 2.0)
    caution_lag = 1 + rng.gamma(1.5, 12.0, size=count)
    pnd_lag = rng.integers(0, 4, size=count)
    lag = np.select(
        [outcome_type == P.COURT, outcome_type == P.CAUTION], [court_lag, caution_lag], pnd_lag
    )
    return group, severity, outcome_type, disposal, sentence, np.floor(lag).astype(np.int64)


def simulate_careers(
    rng: np.random.Generator, candidates: Candidates, p: P.SynthParameters
) -> Events:
    """Offences of every candidate up to the extraction date, sorted by person and offence.

    Events before the record span are kept only when they are custodial terms that end
    inside it (they still keep the person from offending).
    """
    extraction = float(P.day_number(p.extraction_date))
    active = np.flatnonzero(candidates.onset <= extraction)
    clock = candidates.onset[active]
    prior_proven = np.zeros(len(candidates), dtype=np.int64)
    prior_custody = np.zeros(len(candidates), dtype=np.int64)
    rate_multiplier = np.where(candidates.male, 1.0, p.female_rate_multiplier) * candidates.frailty
    stop = np.minimum(candidates.career_end, extraction)
    # Each person's current custodial span: offending time pauses while inside.
    term_start = np.zeros(len(candidates))
    term_end = np.zeros(len(candidates))
    parts: list[Events] = []
    while active.size:
        offence = np.floor(clock).astype(np.int64)
        age = (offence - candidates.date_of_birth[active]) / P.DAYS_PER_YEAR
        group, severity, outcome_type, disposal, sentence, lag = _offence_attributes(
            rng, age, prior_proven[active], prior_custody[active]
        )
        outcome = offence + lag
        is_custody = disposal == P.CUSTODY
        release = np.where(is_custody, outcome + (sentence + 1) // 2, outcome)
        parts.append(
            Events(
                active, offence, outcome, outcome_type, group, severity, disposal, sentence, release
            )
        )
        prior_proven[active] += outcome_type != P.PND
        prior_custody[active] += is_custody
        # A term still pending (convicted or released after now) merges with the new one into
        # one covering span, so no offence can land inside either.
        sentenced = active[is_custody]
        pending = term_end[sentenced] > clock[is_custody]
        term_start[sentenced] = np.where(
            pending, np.minimum(term_start[sentenced], outcome[is_custody]), outcome[is_custody]
        )
        term_end[sentenced] = np.where(
            pending, np.maximum(term_end[sentenced], release[is_custody]), release[is_custody]
        )

        age_now = (clock - candidates.date_of_birth[active]) / P.DAYS_PER_YEAR
        rate_per_day = rate_multiplier[active] * _age_curve(age_now, p) / P.DAYS_PER_YEAR
        # Offending comes in sprees: some offences are followed quickly by another.
        # Sprees belong to established careers: first offenders rarely offend again at once.
        spree_share = p.spree_share * np.minimum(prior_proven[active], 3) / 3
        spree = rng.random(active.size) < spree_share
        gap = rng.exponential(size=active.size) / np.where(
            spree, 1.0 / p.spree_mean_days, rate_per_day
        )
        clock = clock + gap
        # Time inside does not count; straight after release offending is more likely.
        inside = (clock > term_start[active]) & (clock < term_end[active])
        after_release = term_end[active] + (clock - term_start[active]) / p.release_rate_multiplier
        clock = np.where(inside, after_release, clock)
        still_offending = clock <= stop[active]
        active = active[still_offending]
        clock = clock[still_offending]
    if not parts:
        return _empty_events()
    events = Events.concatenate(parts)
    # Only events in the record span, and custodial terms reaching into it, matter.
    records_from = P.day_number(p.records_from)
    relevant = (events.offence >= records_from) | (events.custody & (events.release > records_from))
    return drop_offences_in_custody(events.take(np.flatnonzero(relevant)))


def drop_offences_in_custody(events: Events) -> Events:
    """Sort by person and offence, removing any offence strictly inside a custodial term.

    The simulation already pauses offending over covering custodial spans, so this is a
    safety net that keeps the contract's rule exact whatever the parameters.
    """
    order = np.lexsort((events.outcome, events.offence, events.person))
    events = events.take(order)
    span = np.int64(1 << 20)  # larger than any day number difference in the simulation
    key = events.person * span + (events.offence - events.offence.min())
    custody = np.flatnonzero(events.custody)
    base = events.person[custody] * span - events.offence.min()
    first = np.searchsorted(key, base + events.outcome[custody] + 1, side="left")
    last = np.searchsorted(key, base + events.release[custody], side="left")
    marks = np.bincount(first, minlength=len(events) + 1) - np.bincount(
        last, minlength=len(events) + 1
    )
    inside = np.cumsum(marks[:-1]) > 0
    return events.take(np.flatnonzero(~inside))


def _empty_events() -> Events:
    ints = np.zeros(0, dtype=np.int64)
    codes = np.zeros(0, dtype=np.int8)
    return Events(ints, ints, ints, codes, codes, codes, codes, np.zeros(0, np.int32), ints)
