"""`jdl synth`: national records, three example cohorts and the planted truth, in one call."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jdl.errors import JdlUserError
from jdl.synth import params as P
from jdl.synth.cohort_files import UNUSABLE_KINDS, build_cohort_file
from jdl.synth.employment import PlantedParticipants, simulate_employment
from jdl.synth.outcomes import first_index_in_period
from jdl.synth.participants import choose_participants, treated_keep_mask
from jdl.synth.population import simulate_records
from jdl.synth.truth import (
    cohort_effects,
    employment_effects,
    participants_frame,
    pool_base_rates,
    potential_reoffences,
)
from jdl.synth.writer import write_json, write_partitions, write_spell_partitions

MIN_PEOPLE = 2_000


@dataclass(frozen=True)
class CohortSummary:
    name: str
    path: pathlib.Path
    rows: int
    planted_participants: int


@dataclass(frozen=True)
class SynthSummary:
    """What `generate` wrote: counts, cohort sizes and paths."""

    people: int
    events: int
    seed: int
    out_dir: pathlib.Path
    people_files: tuple[pathlib.Path, ...]
    events_files: tuple[pathlib.Path, ...]
    cohorts: tuple[CohortSummary, ...]
    truth_path: pathlib.Path
    participants_path: pathlib.Path
    seconds: float
    employment_files: tuple[pathlib.Path, ...] = ()
    benefits_files: tuple[pathlib.Path, ...] = ()
    employment_rows: int = 0
    benefits_rows: int = 0

    @property
    def cohort_rows(self) -> dict[str, int]:
        return {cohort.name: cohort.rows for cohort in self.cohorts}


def generate(
    people: int,
    out_dir: pathlib.Path,
    seed: int = 2013,
    *,
    on_progress: Callable[[str], None] | None = None,
    parameters: P.SynthParameters | None = None,
    employment: bool = True,
) -> SynthSummary:
    """Write synthetic national records, example cohorts and truth.json under `out_dir`.

    `employment` also writes the optional employment and benefits tables (national/employment,
    national/benefits) with a planted effect on the one-year employment rate; they come from a
    random stream of their own, so the other files are the same with or without them.
    """
    if people < MIN_PEOPLE:
        raise JdlUserError.single(
            "jdl synth --people",
            "too few people to build a comparison pool and example cohorts",
            value=people,
            allowed=f"a whole number of at least {MIN_PEOPLE:,}",
            hint="1,000,000 people resemble one region's records; 300,000 generate in seconds",
        )
    p = parameters or P.SynthParameters()
    _check_parameters(p)
    report = on_progress or (lambda _message: None)
    started = time.perf_counter()
    out_dir = pathlib.Path(out_dir)
    rng = np.random.default_rng(seed)
    population, y0 = simulate_records(rng, people, p, report)
    thinning_draw = rng.random(len(y0))

    period_from, period_to = P.day_number(p.period_from), P.day_number(p.period_to)
    index = first_index_in_period(y0, period_from, period_to)
    layout = cohort_layout(len(index.person), p)
    sizes = {name: planted for name, (planted, _fabricated) in layout.items()}
    groups = choose_participants(rng, y0, population, index, sizes, p)
    keep = treated_keep_mask(y0, people, groups, index, thinning_draw, p)
    recorded = y0.take(np.flatnonzero(keep))
    report(f"planted {sum(sizes.values()):,} participants; {len(recorded):,} events recorded")

    people_files, events_files = write_partitions(out_dir, population, recorded, p.people_per_file)
    report(f"wrote {len(people_files)} people and events partitions")
    spells = None
    employment_files: list[pathlib.Path] = []
    benefits_files: list[pathlib.Path] = []
    if employment:
        planted = PlantedParticipants(
            person=np.concatenate([group.person for group in groups]),
            index_date=np.concatenate([index.index_date[group.index_position] for group in groups]),
        )
        spells = simulate_employment(np.random.default_rng([seed, 1]), population.date_of_birth, y0, planted, p)
        employment_files = write_spell_partitions(out_dir, "employment", spells.employment, people,
                                                  p.people_per_file)
        benefits_files = write_spell_partitions(out_dir, "benefits", spells.benefits, people, p.people_per_file)
        report(f"wrote {len(spells.employment):,} employment and {len(spells.benefits):,} benefit spells")

    cohort_dir = out_dir / "cohorts"
    cohort_dir.mkdir(parents=True, exist_ok=True)
    recorded_index = first_index_in_period(recorded, period_from, period_to)
    cohort_truth: dict[str, object] = {}
    summaries: list[CohortSummary] = []
    answer_key: list[pd.DataFrame] = []
    all_participants = np.concatenate([group.person for group in groups])
    for plan, group in zip(p.cohorts, groups, strict=True):
        cohort = build_cohort_file(
            rng,
            population,
            group.person,
            group.intervention_start,
            layout[plan.name][1],
            plan.strands,
            p,
        )
        path = cohort_dir / f"{plan.name}.csv"
        cohort.frame.to_csv(path, index=False)
        summaries.append(CohortSummary(plan.name, path, len(cohort.frame), cohort.planted_rows))
        untreated, treated = potential_reoffences(y0, keep, index, group, people)
        answer_key.append(participants_frame(group, index, y0, untreated, treated))
        cohort_truth[plan.name] = {
            "file": f"cohorts/{plan.name}.csv",
            "organisation_strands": list(plan.strands),
            "rows_submitted": len(cohort.frame),
            "planted_participants": cohort.planted_rows,
            "rows_missing_pnc_id": cohort.missing_pnc_rows,
            "rows_with_name_typo": cohort.typo_rows,
            "rows_with_name_formatting": cohort.formatting_rows,
            "rows_not_in_records": cohort.fabricated_rows,
            "rows_unusable": cohort.unusable_rows,
            "rows_duplicated": cohort.duplicate_rows,
            **cohort_effects(
                untreated, treated, recorded, recorded_index, group, all_participants, people
            ),
        }
        if spells is not None:
            cohort_truth[plan.name]["employment"] = employment_effects(
                spells, group.person, index.index_date[group.index_position]
            )
        report(f"wrote cohort {plan.name}: {len(cohort.frame)} rows")
    participants_path = out_dir / "truth_participants.csv"
    pd.concat(answer_key, ignore_index=True).to_csv(participants_path, index=False)

    truth_path = out_dir / "truth.json"
    write_json(
        truth_path,
        {
            "generator": "jdl.synth",
            "seed": seed,
            "people": people,
            "events": len(recorded),
            "record_span": {
                "first_offence_date": _iso(int(recorded.offence.min())),
                "last_outcome_date": _iso(int(recorded.outcome.max())),
                "records_from": p.records_from.isoformat(),
                "extraction_date": p.extraction_date.isoformat(),
            },
            "cohort_period": {"from": p.period_from.isoformat(), "to": p.period_to.isoformat()},
            "definitions": {
                "index_event": "first court_conviction or caution with index date in the period "
                "(release date for custody, outcome date otherwise); participants: the first index "
                "event on or after intervention_start",
                "proven_reoffence": "court_conviction or caution with index < offence_date <= "
                "index + 1y and outcome_date <= index + 1y + 6m",
                "true_effect": "sample ATT over planted participants: Y(1) minus Y(0) from the same "
                "event stream (common random numbers); Y(1) keeps each offence after the index date "
                "with probability effect_multiplier",
                "employment": "employment_rate: any employment spell overlapping index < day <= "
                "index + 1y (a blank end_date is ongoing); benefit_rate: the same for out-of-work "
                "benefit spells; true_effect_*: sample ATT over planted participants, Y(1) minus Y(0) "
                "with common random numbers: a participant out of work all that year in Y(0) finds a "
                "job in it in Y(1) with probability employment_effect_share",
                "naive_difference": "participants' recorded rate minus the rate of everyone else "
                "with an index event in the period (first such event); the pool includes the other "
                "cohorts' participants (treated in the records), as the pipeline's would; see "
                "pool_other_cohorts_participants",
            },
            "participants_file": participants_path.name,
            "pool": {
                **pool_base_rates(recorded, recorded_index, people),
                "participants": sum(sizes.values()),
            },
            "cohorts": cohort_truth,
            "parameters": p.as_json(),
        },
    )
    seconds = time.perf_counter() - started
    report(f"done in {seconds:.1f} s")
    return SynthSummary(
        people=people,
        events=len(recorded),
        seed=seed,
        out_dir=out_dir,
        people_files=tuple(people_files),
        events_files=tuple(events_files),
        cohorts=tuple(summaries),
        truth_path=truth_path,
        participants_path=participants_path,
        seconds=seconds,
        employment_files=tuple(employment_files),
        benefits_files=tuple(benefits_files),
        employment_rows=0 if spells is None else len(spells.employment),
        benefits_rows=0 if spells is None else len(spells.benefits),
    )


def _check_parameters(p: P.SynthParameters) -> None:
    """The truth is only exact when every follow-up and waiting period fits before extraction."""
    if p.people_per_file < 1:
        raise JdlUserError.single(
            "people_per_file", "must be positive", value=p.people_per_file, allowed=">= 1"
        )
    last_proof = P.add_months(np.array([P.day_number(p.period_to)]), 18)[0]
    if not p.records_from < p.period_from <= p.period_to or last_proof > P.day_number(
        p.extraction_date
    ):
        raise JdlUserError.single(
            "synth parameters period_from/period_to",
            "the cohort period must lie inside the record span with 1 year + 6 months to spare",
            value=f"{p.period_from} to {p.period_to}",
            allowed=f"after {p.records_from}, ending 18 months before {p.extraction_date}",
        )
    if len({plan.name for plan in p.cohorts}) != len(p.cohorts):
        raise JdlUserError.single(
            "synth parameters cohorts", "cohort names must be unique", value=p.cohorts
        )


def cohort_layout(pool: int, p: P.SynthParameters) -> dict[str, tuple[int, int]]:
    """(planted participants, fabricated rows) per cohort.

    At full scale each file has exactly the planned number of rows (planted, fabricated,
    the unusable rows and one duplicate); when the pool of people with an index event is
    too small, all cohorts shrink so participants stay at most `max_participant_share` of it.
    """
    extra_rows = len(UNUSABLE_KINDS) + 1
    fabricated = {plan.name: max(1, round(p.fabricated_share * plan.rows)) for plan in p.cohorts}
    wanted = {plan.name: plan.rows - fabricated[plan.name] - extra_rows for plan in p.cohorts}
    scale = min(1.0, p.max_participant_share * pool / sum(wanted.values()))
    if scale == 1.0:
        return {name: (wanted[name], fabricated[name]) for name in wanted}
    layout = {}
    for name, size in wanted.items():
        planted = max(1, int(size * scale))
        layout[name] = (planted, max(1, round(p.fabricated_share * planted)))
    return layout


def _iso(day: int) -> str:
    return str(np.datetime64(day, "D"))


__all__ = ["CohortSummary", "SynthSummary", "cohort_layout", "generate"]
