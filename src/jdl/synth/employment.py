"""Employment and benefit spells for the synthetic people, with a planted employment effect.

Each person alternates between spells in and out of work, from the start of the
employment records (or their 16th birthday) until extraction (or their 67th).
How long each lasts depends on a personal employability: lower for people with
more proven offences and for those ever sentenced to custody, plus personal
noise. A custodial sentence ends a job on the day before sentencing, and no job
starts before release. Most gaps between jobs are covered, after a short delay,
by an out-of-work benefit spell; some people also have an "other" benefit
(disability, carer's) spell.

The planted effect uses common random numbers, like the reoffending effect: a
participant not in work at any point of the year after their index date in
Y(0) finds a job in that year in Y(1) when their uniform draw is below
`employment_effect_share`; the job cuts short the out-of-work benefit spell it
falls in. The written tables hold Y(1) for participants and Y(0) for everyone
else. Everything is vectorised; the one loop runs over the spell number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jdl.synth import params as P
from jdl.synth.careers import Events

BENEFIT_TYPES = ("out_of_work", "other")
OUT_OF_WORK, OTHER = 0, 1


@dataclass(frozen=True)
class Spells:
    """Spells as parallel arrays sorted by person then start; end is inclusive, ONGOING if open."""

    person: np.ndarray  # int64 person positions
    start: np.ndarray  # int64 day numbers
    end: np.ndarray  # int64 day numbers (ONGOING: still open at extraction)
    kind: np.ndarray  # int8: BENEFIT_TYPES code (0 for employment)

    def __len__(self) -> int:
        return len(self.person)

    def take(self, rows: np.ndarray) -> Spells:
        return Spells(self.person[rows], self.start[rows], self.end[rows], self.kind[rows])

    @staticmethod
    def concatenate(parts: list[Spells]) -> Spells:
        merged = Spells(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("person", "start", "end", "kind")))
        return merged.take(np.lexsort((merged.end, merged.start, merged.person)))


ONGOING = np.iinfo(np.int64).max // 4


@dataclass(frozen=True)
class PlantedParticipants:
    """Every planted participant (all cohorts) and their index dates, for the employment effect."""

    person: np.ndarray  # person positions
    index_date: np.ndarray  # int64 day numbers


@dataclass(frozen=True)
class EmploymentRecords:
    employment: Spells  # as written: Y(1) for participants
    benefits: Spells
    employment_y0: Spells  # participants' spells without the programme (everyone else: as written)
    benefits_y0: Spells


def employability(events: Events, people: int, p: P.SynthParameters, rng: np.random.Generator) -> np.ndarray:
    """Log-odds-like score: fewer jobs for more proven offences and for anyone ever in custody."""
    proven = np.bincount(events.person[events.proven], minlength=people)
    custody = np.bincount(events.person[events.custody], minlength=people) > 0
    return (p.employment_intercept - p.employment_log_offences * np.log1p(proven)
            - p.employment_custody * custody + p.employment_person_sd * rng.standard_normal(people))


def simulate_employment(
    rng: np.random.Generator,
    date_of_birth: np.ndarray,
    events: Events,
    participants: PlantedParticipants,
    p: P.SynthParameters,
) -> EmploymentRecords:
    """Y(0) spells for everyone, then the participants' Y(1) spells."""
    people = len(date_of_birth)
    score = employability(events, people, p, rng)
    first_day = np.maximum(P.day_number(p.employment_records_from), date_of_birth + int(16 * P.DAYS_PER_YEAR))
    last_day = np.minimum(P.day_number(p.extraction_date), date_of_birth + int(67 * P.DAYS_PER_YEAR))
    jobs = _alternating_jobs(rng, score, first_day, last_day, p)
    jobs = _around_custody(jobs, events)
    # a release after extraction would start the next job after it: not in the records yet
    jobs = jobs.take(np.flatnonzero(jobs.start <= P.day_number(p.extraction_date)))
    benefits_y0 = Spells.concatenate([_out_of_work_spells(rng, jobs, score, first_day, last_day, p),
                                      _other_benefit_spells(rng, first_day, last_day, p)])
    extra = _around_custody(_programme_jobs(rng, jobs, participants, p), events)
    employment = Spells.concatenate([jobs, extra])
    benefits = _cut_by_new_jobs(benefits_y0, extra)
    return EmploymentRecords(employment, benefits, jobs, benefits_y0)


def _lognormal_days(rng: np.random.Generator, median_days: np.ndarray, sigma: float) -> np.ndarray:
    draws = median_days * np.exp(sigma * rng.standard_normal(len(median_days)))
    return np.maximum(np.round(draws), 7).astype(np.int64)


def _alternating_jobs(
    rng: np.random.Generator, score: np.ndarray, first_day: np.ndarray, last_day: np.ndarray, p: P.SynthParameters
) -> Spells:
    """Jobs of an alternating in-work / out-of-work process over each person's working span."""
    people = len(score)
    employed = rng.random(people) < 1.0 / (1.0 + np.exp(-score))
    # a person's span may start mid-spell: the first spell is shortened by a uniform share
    now = first_day - np.round(rng.random(people) * p.employment_job_median_days).astype(np.int64)
    active = np.flatnonzero(now <= last_day)
    parts: list[Spells] = []
    while active.size:
        job_median = p.employment_job_median_days * np.exp(0.5 * score[active])
        gap_median = p.employment_gap_median_days * np.exp(-0.5 * score[active])
        in_work = employed[active]
        length = _lognormal_days(rng, np.where(in_work, job_median, gap_median), p.employment_duration_sigma)
        start = now[active]
        end = start + length - 1
        if in_work.any():
            rows = np.flatnonzero(in_work & (end >= first_day[active]))
            who = active[rows]
            parts.append(Spells(who, np.maximum(start[rows], first_day[who]),
                                np.where(end[rows] >= last_day[who], ONGOING, end[rows]),
                                np.zeros(len(rows), dtype=np.int8)))
        now[active] = end + 1
        employed[active] = ~in_work
        active = active[now[active] <= last_day[active]]
    jobs = Spells.concatenate(parts) if parts else _empty()
    retired = (jobs.end == ONGOING) & (last_day[jobs.person] < P.day_number(p.extraction_date))
    return Spells(jobs.person, jobs.start, np.where(retired, last_day[jobs.person], jobs.end), jobs.kind)


def _empty() -> Spells:
    none = np.zeros(0, dtype=np.int64)
    return Spells(none, none, none, np.zeros(0, dtype=np.int8))


def _around_custody(jobs: Spells, events: Events) -> Spells:
    """No job through a custodial term: none starts before release, and a sentence ends a job the day before."""
    rows = np.flatnonzero(events.custody & (events.release > events.outcome))
    if not rows.size or not len(jobs):
        return jobs
    order = np.lexsort((events.outcome[rows], events.person[rows]))
    person, sentenced, released = events.person[rows][order], events.outcome[rows][order], events.release[rows][order]
    # concurrent sentences overlap: what matters is the latest release of any term sentenced so far
    free_from = _running_max_by(person, released) + 1
    width = np.int64(1) << 32
    keys = person * width + sentenced
    start = jobs.start.copy()
    for _ in range(20):  # each pass moves starts past the terms sentenced before them; few are needed
        before = np.searchsorted(keys, jobs.person * width + start, side="right") - 1
        at = np.maximum(before, 0)
        inside = (before >= 0) & (person[at] == jobs.person) & (free_from[at] > start)
        if not inside.any():
            break
        start = np.where(inside, free_from[at], start)
    after = np.searchsorted(keys, jobs.person * width + start, side="right")
    at = np.minimum(after, len(keys) - 1)
    cut = (after < len(keys)) & (person[at] == jobs.person) & (sentenced[at] - 1 < jobs.end)
    end = np.where(cut, sentenced[at] - 1, jobs.end)
    keep = start <= end
    return Spells(jobs.person[keep], start[keep], end[keep], jobs.kind[keep])


def _running_max_by(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The running maximum of `values` within each run of equal, sorted `group` values."""
    offset = np.int64(1) << 40
    # groups are sorted: adding group x offset keeps each group's values above all earlier groups'
    return np.maximum.accumulate(values + group * offset) - group * offset


def _gaps(jobs: Spells, first_day: np.ndarray, last_day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(person, first day, last day) of each stretch out of work within the working span."""
    people = len(first_day)
    counts = np.bincount(jobs.person, minlength=people)
    first_job = np.cumsum(counts) - counts
    # gap before each job (from the previous job's end, or the span start)
    previous_end = np.empty(len(jobs), dtype=np.int64)
    previous_end[:] = first_day[jobs.person] - 1
    same = np.zeros(len(jobs), dtype=bool)
    same[1:] = jobs.person[1:] == jobs.person[:-1]
    previous_end[1:] = np.where(same[1:], np.maximum(jobs.end[:-1], first_day[jobs.person[1:]] - 1),
                                previous_end[1:])
    before = (jobs.person, previous_end + 1, jobs.start - 1)
    # the gap after each person's last job (or the whole span if they never worked)
    last_job = first_job + counts - 1
    worked = counts > 0
    tail_from = np.where(worked, jobs.end[np.maximum(last_job, 0)] + 1 if len(jobs) else 0, first_day)
    tail = (np.arange(people), tail_from, last_day)
    person = np.concatenate([before[0], tail[0]])
    start = np.concatenate([before[1], tail[1]])
    end = np.concatenate([before[2], tail[2]])
    keep = (start <= end) & (start < ONGOING // 2)
    return person[keep], start[keep], end[keep]


def _out_of_work_spells(
    rng: np.random.Generator, jobs: Spells, score: np.ndarray, first_day: np.ndarray, last_day: np.ndarray,
    p: P.SynthParameters,
) -> Spells:
    """Most gaps out of work are covered by an out-of-work benefit after a short delay."""
    person, start, end = _gaps(jobs, first_day, last_day)
    claims = rng.random(len(person)) < p.benefit_claim_share
    delay = np.floor(rng.random(len(person)) * p.benefit_delay_days).astype(np.int64)
    start = start + delay
    keep = claims & (start <= end)
    open_ended = end >= P.day_number(p.extraction_date)
    return Spells(person[keep], start[keep], np.where(open_ended, ONGOING, end)[keep],
                  np.full(int(keep.sum()), OUT_OF_WORK, dtype=np.int8))


def _other_benefit_spells(
    rng: np.random.Generator, first_day: np.ndarray, last_day: np.ndarray, p: P.SynthParameters
) -> Spells:
    """Some people receive a non-work-related benefit (disability, carer's) for a long spell."""
    person = np.flatnonzero((rng.random(len(first_day)) < p.other_benefit_share) & (first_day <= last_day))
    span = last_day[person] - first_day[person] + 1
    start = first_day[person] + np.floor(rng.random(len(person)) * span).astype(np.int64)
    end = start + _lognormal_days(rng, np.full(len(person), 3 * 365.0), 0.8)
    end = np.where(end >= P.day_number(p.extraction_date), ONGOING, np.minimum(end, last_day[person]))
    return Spells(person, start, end, np.full(len(person), OTHER, dtype=np.int8))


def employed_in_year_after(jobs: Spells, person: np.ndarray, index_date: np.ndarray) -> np.ndarray:
    """Days each person worked in (index date, index date + 1 year], overlapping jobs counted once."""
    return days_covered(jobs, person, index_date + 1, P.add_months(index_date, 12))


def days_covered(spells: Spells, person: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Days of each [first, last] (one per listed person) covered by at least one of their spells."""
    slot = np.full(int(max(person.max(initial=-1), spells.person.max(initial=-1))) + 1, -1, dtype=np.int64)
    slot[person] = np.arange(len(person))
    owner = slot[spells.person] if len(spells) else np.zeros(0, dtype=np.int64)
    rows = np.flatnonzero(owner >= 0)
    owner = owner[rows]
    start = np.maximum(spells.start[rows], first[owner])
    end = np.minimum(spells.end[rows], last[owner])
    inside = start <= end
    owner, start, end = owner[inside], start[inside], end[inside]
    order = np.lexsort((start, owner))
    owner, start, end = owner[order], start[order], end[order]
    counted = np.zeros(len(person), dtype=np.int64)
    reach = np.full(len(person), np.iinfo(np.int64).min)
    # spells per person are few: loop over each person's k-th spell, not over people
    rank = np.arange(len(owner)) - np.searchsorted(owner, owner, side="left")
    for k in range(int(rank.max(initial=-1)) + 1):
        at = rank == k
        who = owner[at]
        fresh_from = np.maximum(start[at], reach[who] + 1)
        counted[who] += np.clip(end[at] - fresh_from + 1, 0, None)
        reach[who] = np.maximum(reach[who], end[at])
    return counted


def _programme_jobs(
    rng: np.random.Generator, jobs: Spells, participants: PlantedParticipants, p: P.SynthParameters
) -> Spells:
    """Y(1): participants out of work all year after their index date find a job with the planted share."""
    person, index_date = participants.person, participants.index_date
    draw = rng.random(len(person))  # common random numbers: drawn for every participant
    when = rng.random(len(person))
    length = _lognormal_days(rng, np.full(len(person), float(p.employment_job_median_days)),
                             p.employment_duration_sigma)
    window_end = P.add_months(index_date, 12)
    idle = employed_in_year_after(jobs, person, index_date) == 0
    found = idle & (draw < p.employment_effect_share)
    start = index_date + 1 + np.floor(when * (window_end - index_date)).astype(np.int64)
    # the job lasts until its own end or the day before the person's next job in Y(0)
    width = np.int64(1) << 32
    keys = jobs.person * width + jobs.start
    following = np.searchsorted(keys, person * width + start, side="right")
    has_next = (following < len(keys)) & (jobs.person[np.minimum(following, max(len(keys) - 1, 0))] == person) \
        if len(keys) else np.zeros(len(person), dtype=bool)
    next_start = jobs.start[np.minimum(following, max(len(keys) - 1, 0))] if len(keys) else start
    end = np.where(has_next, np.minimum(start + length - 1, next_start - 1), start + length - 1)
    extraction = P.day_number(p.extraction_date)
    end = np.where(end >= extraction, ONGOING, end)
    chosen = found & (start <= np.minimum(end, extraction))
    return Spells(person[chosen], start[chosen], end[chosen], np.zeros(int(chosen.sum()), dtype=np.int8))


def _cut_by_new_jobs(benefits: Spells, new_jobs: Spells) -> Spells:
    """Out-of-work benefit spells covering a new job stop the day before it and resume after it."""
    if not len(new_jobs):
        return benefits
    slot = np.full(int(max(benefits.person.max(initial=-1), new_jobs.person.max())) + 1, -1, dtype=np.int64)
    slot[new_jobs.person] = np.arange(len(new_jobs))  # at most one new job per person
    job = slot[benefits.person]
    has_job = job >= 0
    job_c = np.maximum(job, 0)
    covers = (has_job & (benefits.kind == OUT_OF_WORK) & (benefits.start <= new_jobs.end[job_c])
              & (benefits.end >= new_jobs.start[job_c]))
    untouched = benefits.take(np.flatnonzero(~covers))
    hit = np.flatnonzero(covers)
    jobs_hit = job[hit]
    before = Spells(benefits.person[hit], benefits.start[hit], new_jobs.start[jobs_hit] - 1, benefits.kind[hit])
    resumes = (new_jobs.end[jobs_hit] < ONGOING) & (benefits.end[hit] > new_jobs.end[jobs_hit])
    after = Spells(benefits.person[hit], new_jobs.end[jobs_hit] + 1, benefits.end[hit], benefits.kind[hit]).take(
        np.flatnonzero(resumes))
    before = before.take(np.flatnonzero(before.start <= before.end))
    return Spells.concatenate([untouched, before, after])


__all__ = [
    "BENEFIT_TYPES",
    "ONGOING",
    "EmploymentRecords",
    "PlantedParticipants",
    "Spells",
    "days_covered",
    "employed_in_year_after",
    "simulate_employment",
]
