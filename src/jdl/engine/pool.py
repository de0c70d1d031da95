"""The one pass over the national events, block by block, and what it hands back.

For every person with an index event in the period, the pass finds their
first index event (the comparison pool's index) and computes their covariates
and outcomes there. All of it is per person, so each block of whole people
is done on its own (a Dask task) and the small per-person tables are put
together at the end; nothing brings a national table into one frame. The
comparison pool's table does not depend on the cohort, which is why it is
what the feature cache keeps. Alongside, each block hands back the few rows
of the linked participants (their index events depend on their
intervention_start, so they are chosen afterwards) and the rows that break
the data contract.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from jdl import cohort as cohort_stage
from jdl import linkage as linkage_stage
from jdl import measures as measures_stage
from jdl.compiled import NAT, kernel
from jdl.durations import Duration
from jdl.sources import national, spells
from jdl.sources.layout import Block

PROVEN = ("court_conviction", "caution")
EVENT_COLUMNS = list(national.EVENTS.required)
HISTORY_COLUMNS = ["person_id", "offence_date", "outcome_date", "outcome_type", "offence_group",
                   "severity", "disposal", "sentence_days", "release_date"]
PEOPLE_STATIC_COLUMNS = ["person_id", "date_of_birth", "sex", "ethnicity", "region"]
POOL_KEY_COLUMNS = ["person_id", "index_date", "date_of_birth", "region"]


@dataclass(frozen=True)
class FeatureDefinitions:
    """What the per-person table holds: the spec's covariates, measures and windows."""

    period_from: dt.date
    period_to: dt.date
    covariates: tuple[tuple[str, Duration | None], ...]
    measures: tuple[str, ...]
    follow_up: Duration  # the primary window
    waiting_period: Duration
    # further follow-up windows, longer than the primary; their outcome columns carry the window
    extra_windows: tuple[Duration, ...] = ()

    @property
    def windows(self) -> tuple[Duration, ...]:
        return (self.follow_up, *self.extra_windows)

    @property
    def covariate_columns(self) -> list[str]:
        return [measures_stage.covariate_column(name, window) for name, window in self.covariates]

    @property
    def outcome_columns(self) -> list[measures_stage.OutcomeColumn]:
        columns = [column for name in self.measures for column in measures_stage.MEASURES[name].columns]
        return [renamed for window in self.windows
                for renamed in measures_stage.windowed_columns(columns, window, self.follow_up)]

    def as_key(self) -> dict[str, object]:
        return {
            "period": [self.period_from.isoformat(), self.period_to.isoformat()],
            "pool_index": "first index event in the period",
            "covariates": [[name, None if window is None else str(window)] for name, window in self.covariates],
            "measures": list(self.measures),
            "follow_up": str(self.follow_up),
            "waiting_period": str(self.waiting_period),
            # only with several windows, so that one window keeps the key it always had
            **({"extra_windows": [str(w) for w in self.extra_windows]} if self.extra_windows else {}),
        }


@dataclass(frozen=True)
class BlockResult:
    """What one block hands back; every frame is sorted by person_id."""

    pool: pd.DataFrame  # POOL_KEY_COLUMNS, covariate and outcome columns
    linked_events: pd.DataFrame  # proven, valid events of linked people (HISTORY_COLUMNS)
    linked_people: pd.DataFrame  # valid people rows of linked people (PEOPLE_STATIC_COLUMNS)
    event_rejects: pd.DataFrame  # person_id, reason
    records_end: pd.Timestamp | None  # last outcome date of a valid event
    # the optional spell tables (employment, benefits) the definitions read, by table name
    linked_spells: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # valid rows of linked people
    spell_rejects: pd.DataFrame | None = None  # table, person_id (Int64), reason (prefixed by the table)


def person_features(
    index_table: pd.DataFrame,
    people: pd.DataFrame,
    history: pd.DataFrame,
    definitions: FeatureDefinitions,
    spell_rows: measures_stage.Spells | None = None,
) -> pd.DataFrame:
    """Covariate and outcome columns, aligned with `index_table` (one row per person).

    Employment and benefit features come from `spell_rows` (valid spells by table name).
    """
    spell_covariates, spell_measures = measures_stage.spell_feature_names(
        definitions.covariates, definitions.measures)
    if not spell_covariates and not spell_measures:
        return _offending_features(index_table, people, history, definitions)
    offending = dataclasses.replace(
        definitions,
        covariates=tuple(c for c in definitions.covariates if c not in spell_covariates),
        measures=tuple(m for m in definitions.measures if m not in spell_measures),
    )
    primary = definitions.windows[0]
    spell_frames = []
    for window in definitions.windows:
        computed = measures_stage.compute_spell_features(
            index_table, spell_rows or {}, covariates=spell_covariates if window == primary else (),
            measures=spell_measures, follow_up=window,
        )
        outcome_names = {column.name for name in spell_measures
                         for column in measures_stage.MEASURES[name].columns}
        spell_frames.append(computed.rename(columns={
            name: measures_stage.window_column_name(name, window, primary)
            for name in computed.columns if name in outcome_names
        }))
    features = pd.concat([_offending_features(index_table, people, history, offending), *spell_frames], axis=1)
    return features[definitions.covariate_columns + [c.name for c in definitions.outcome_columns]]


def _offending_features(
    index_table: pd.DataFrame, people: pd.DataFrame, history: pd.DataFrame, definitions: FeatureDefinitions
) -> pd.DataFrame:
    context = measures_stage.CovariateContext(index_table, people, history)
    covariates = measures_stage.compute_covariates(context, list(definitions.covariates))
    outcomes, _ = measures_stage.windowed_outcomes(
        index_table, history, measure_names=list(definitions.measures),
        windows=definitions.windows, waiting_period=definitions.waiting_period,
    )
    return pd.concat([covariates, outcomes], axis=1)


def pool_index(events: pd.DataFrame, period_from: dt.date, period_to: dt.date) -> pd.DataFrame:
    """Each person's first index event in the period (the comparison pool's index table)."""
    first = cohort_stage.first_index_events(events, period_from, period_to)
    if first is not None:
        return first
    # no one has an index event: the three steps give the empty table with its dtypes
    return cohort_stage.choose_pool_index(
        cohort_stage.resolve_occasions(cohort_stage.candidate_index_rows(events, period_from, period_to)),
        exclude_person_ids=pd.Series([], dtype="int64"), period_from=period_from, period_to=period_to,
    )


def proven_history(events: pd.DataFrame, person_ids: np.ndarray) -> pd.DataFrame:
    """Proven events of these people, in the order window aggregates expect."""
    keep = _ids_in(events["person_id"].to_numpy(dtype=np.int64), person_ids) & cohort_stage.text_in(
        events["outcome_type"], PROVEN)
    history = events.loc[keep, HISTORY_COLUMNS]
    # a stable sort by person, offence date, outcome date (missing dates last); records usually come in order
    if _in_history_order(history["person_id"].to_numpy(dtype=np.int64), _nanoseconds(history["offence_date"]),
                         _nanoseconds(history["outcome_date"])):
        return history.reset_index(drop=True)
    order = cohort_stage.stable_order([cohort_stage.sort_key(history["outcome_date"]),
                                       cohort_stage.sort_key(history["offence_date"]),
                                       history["person_id"].to_numpy(dtype=np.int64)])
    if len(order) and (order != np.arange(len(order))).any():
        history = history.iloc[order]
    return history.reset_index(drop=True)


def _nanoseconds(dates: pd.Series) -> np.ndarray:
    return dates.to_numpy(dtype="datetime64[ns]").view(np.int64)


@kernel
def _in_history_order(person: np.ndarray, offence: np.ndarray, outcome: np.ndarray) -> bool:  # pragma: no cover
    """Whether rows are sorted by person, offence date, outcome date, missing dates (NaT) last."""
    latest = np.iinfo(np.int64).max
    for i in range(1, len(person)):
        if person[i] != person[i - 1]:
            if person[i] < person[i - 1]:
                return False
            continue
        before = latest if offence[i - 1] == NAT else offence[i - 1]
        after = latest if offence[i] == NAT else offence[i]
        if before != after:
            if after < before:
                return False
            continue
        before = latest if outcome[i - 1] == NAT else outcome[i - 1]
        after = latest if outcome[i] == NAT else outcome[i]
        if after < before:
            return False
    return True


def _ids_in(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Whether each value is one of `ids`."""
    wanted = np.asarray(ids, dtype=np.int64)
    if len(wanted) == 0 or len(values) == 0:
        return np.zeros(len(values), dtype=bool)
    # ids outside the values' range match nothing: a block's share of national ids spans little
    low, high = int(values.min()), int(values.max())
    wanted = wanted[(wanted >= low) & (wanted <= high)]
    if len(wanted) == 0:
        return np.zeros(len(values), dtype=bool)
    if int(wanted.max()) - int(wanted.min()) <= 4 * len(values) + 1_000_000:
        # a block's ids span a small range: a lookup table over it
        return _in_table(values, wanted, int(wanted.min()), int(wanted.max()))
    wanted = np.unique(wanted)
    at = np.minimum(np.searchsorted(wanted, values), len(wanted) - 1)
    return wanted[at] == values


@kernel
def _in_table(values: np.ndarray, wanted: np.ndarray, low: int, high: int) -> np.ndarray:  # pragma: no cover
    """Whether each value is one of `wanted` (whose values lie in low..high), by a lookup table over that range."""
    table = np.zeros(high - low + 1, dtype=np.bool_)
    for value in wanted:
        table[value - low] = True
    found = np.zeros(len(values), dtype=np.bool_)
    for i in range(len(values)):
        value = values[i]
        if low <= value <= high:
            found[i] = table[value - low]
    return found


def people_rows(people: pd.DataFrame) -> pd.DataFrame:
    """Valid people rows, one per person (the first, in file order), sorted by person_id."""
    rejected = people[national.REJECT_COLUMN].notna().to_numpy()
    valid = people.loc[~rejected, PEOPLE_STATIC_COLUMNS] if rejected.any() else people[PEOPLE_STATIC_COLUMNS]
    ids = valid["person_id"].to_numpy()
    if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):
        return valid.reset_index(drop=True)  # already one row per person, in order (how blocks are read)
    return valid.drop_duplicates("person_id").sort_values("person_id", kind="mergesort").reset_index(drop=True)


def block_features(
    events: pd.DataFrame,
    people: pd.DataFrame,
    definitions: FeatureDefinitions,
    linked_ids: np.ndarray,
    spell_frames: Mapping[str, pd.DataFrame] | None = None,
) -> BlockResult:
    """The pool's per-person table of one block of whole people, and the linked people's rows.

    `spell_frames` holds the block's rows of each spell table the definitions read, as
    read (normalised, with the reject column).
    """
    return with_linked_rows(block_pool(events, people, definitions, spell_frames), linked_ids)


@dataclass(frozen=True)
class PreparedBlock:
    """A block's pool table and rejects, and the valid rows its linked people's rows are chosen from.

    The pool does not depend on the cohort, so a block can be prepared while the cohort is
    still being linked; `with_linked_rows` finishes it once the linked ids are known.
    """

    result: BlockResult  # linked frames empty
    valid: pd.DataFrame  # valid events (EVENT_COLUMNS)
    persons: pd.DataFrame  # valid people rows, one per person (`people_rows`)
    spell_rows: Mapping[str, pd.DataFrame]  # valid spells by table name


def block_pool(
    events: pd.DataFrame,
    people: pd.DataFrame,
    definitions: FeatureDefinitions,
    spell_frames: Mapping[str, pd.DataFrame] | None = None,
) -> PreparedBlock:
    """What `block_features` computes before it needs the linked ids."""
    spell_rows = {table: spells.valid_spells(frame) for table, frame in (spell_frames or {}).items()}
    rejected = events[national.REJECT_COLUMN].notna().to_numpy()
    event_rejects = events.loc[rejected, ["person_id", national.REJECT_COLUMN]].rename(
        columns={national.REJECT_COLUMN: "reason"}
    )
    valid = events.loc[~rejected, EVENT_COLUMNS] if rejected.any() else events[EVENT_COLUMNS]
    records_end = valid["outcome_date"].max() if len(valid) else None
    first = pool_index(valid, definitions.period_from, definitions.period_to)
    pool_ids = first["person_id"].to_numpy()
    persons = people_rows(people)
    history = proven_history(valid, pool_ids)
    features = person_features(first, persons, history, definitions, spell_rows)
    facts = _with_person_facts(first, persons)
    pool = pd.concat([facts.reset_index(drop=True), features.reset_index(drop=True)], axis=1)
    result = BlockResult(
        pool=_as_text(pool),
        linked_events=pd.DataFrame(),
        linked_people=pd.DataFrame(),
        event_rejects=event_rejects.sort_values(["person_id", "reason"], kind="mergesort").reset_index(drop=True),
        records_end=None if records_end is None or pd.isna(records_end) else pd.Timestamp(records_end),
        linked_spells={table: frame.iloc[:0] for table, frame in spell_rows.items()},
        spell_rejects=_spell_rejects(spell_frames or {}),
    )
    return PreparedBlock(result, valid, persons, spell_rows)


def with_linked_rows(prepared: PreparedBlock, linked_ids: np.ndarray) -> BlockResult:
    """The prepared block's result with its linked people's proven events, people rows and spells."""
    persons = prepared.persons
    return dataclasses.replace(
        prepared.result,
        linked_events=_as_text(proven_history(prepared.valid, linked_ids)),
        linked_people=_as_text(persons.loc[persons["person_id"].isin(linked_ids)].reset_index(drop=True)),
        linked_spells={table: rows_of(frame, linked_ids) for table, frame in prepared.spell_rows.items()},
    )


def _with_person_facts(first: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    """person_id, index_date of `first` with date_of_birth and region of `persons` (one row per person,
    in person_id order, as `people_rows` gives): what a left merge on person_id gives, by position."""
    ids = persons["person_id"].to_numpy(dtype=np.int64)
    wanted = first["person_id"].to_numpy(dtype=np.int64)
    if len(ids) == 0:
        rows = np.full(len(wanted), -1, dtype=np.int64)
    else:
        at = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
        rows = np.where(ids[at] == wanted, at, -1)
    return pd.DataFrame({
        "person_id": first["person_id"].array,
        "index_date": first["index_date"].array,
        "date_of_birth": persons["date_of_birth"].array.take(rows, allow_fill=True),
        "region": persons["region"].array.take(rows, allow_fill=True),
    })


def rows_of(frame: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """The rows of these people (the frame's order kept)."""
    return frame.loc[frame["person_id"].isin(ids)].reset_index(drop=True)


def _spell_rejects(spell_frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame | None:
    if not spell_frames:
        return None
    frames = [spells.spell_rejects(frame, table) for table, frame in spell_frames.items()]
    return spells.sorted_rejects(pd.concat(frames, ignore_index=True))


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns (how a block reads text of few values) back to the string dtype results use."""
    categorical = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not categorical:
        return frame
    return frame.assign(**{c: cohort_stage.as_text(frame[c]) for c in categorical})


@dataclass(frozen=True)
class BlockTask:
    """Reads one aligned block and computes its features (a picklable Dask task)."""

    people_source: national.TableSource
    events_source: national.TableSource
    definitions: FeatureDefinitions
    # the spell tables the definitions read, each read for the block's person_id range
    spell_sources: tuple[tuple[str, national.TableSource], ...] = ()

    def __call__(
        self, block: Block, linked_ids: np.ndarray, person_range: spells.PersonRange | None = None
    ) -> BlockResult:
        return with_linked_rows(self.prepare(block, person_range), linked_ids)

    def prepare(self, block: Block, person_range: spells.PersonRange | None = None) -> PreparedBlock:
        """The block read and its pool computed (`block_pool`): all but the linked people's rows."""
        # text columns of few values arrive as categoricals: cheap to filter and reorder
        events = _concat([self.events_source.read_fragment(f, EVENT_COLUMNS, categorical=True)
                          for f in _file_order(block.events)])
        people = _concat([self.people_source.read_fragment(f, PEOPLE_STATIC_COLUMNS, categorical=True)
                          for f in _file_order(block.people)])
        return block_pool(
            self.events_source.empty(EVENT_COLUMNS) if events is None else events,
            self.people_source.empty(PEOPLE_STATIC_COLUMNS) if people is None else people,
            self.definitions,
            self._spell_frames(block, person_range),
        )

    def _spell_frames(self, block: Block, person_range: spells.PersonRange | None) -> dict[str, pd.DataFrame]:
        wanted = person_range or spells.PersonRange(block.person_min, block.person_max)
        return {table: spells.read_spells(source, person_range=wanted) for table, source in self.spell_sources}


def frames_task(
    events: pd.DataFrame,
    people: pd.DataFrame,
    definitions: FeatureDefinitions,
    linked_ids: np.ndarray,
    spell_frames: Mapping[str, pd.DataFrame] | None = None,
) -> BlockResult:
    """`block_features` on partitions that a shuffle on person_id has aligned (index = person_id)."""
    aligned = {table: _from_index(frame) for table, frame in (spell_frames or {}).items()}
    return block_features(_from_index(events), _from_index(people), definitions, linked_ids, aligned or None)


def _from_index(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.index.name == "person_id":
        frame = frame.reset_index()
    return frame.reset_index(drop=True)


def _file_order(fragments: tuple) -> list:
    return sorted(fragments, key=lambda f: (f.path, f.row_groups or ()))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame | None:
    if not frames:
        return None
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)




def link_candidates(part: pd.DataFrame, keys: Any) -> pd.DataFrame:
    """The valid rows of a people partition that could link to a cohort row."""
    return linkage_stage.select_candidates(part.loc[part[national.REJECT_COLUMN].isna()], keys)


def linked_events_of(source: national.TableSource, fragment: Any, ids: np.ndarray) -> pd.DataFrame:
    """Valid proven events of these people in one fragment (the filter is pushed into the scan)."""
    events = source.read_fragment(fragment, EVENT_COLUMNS, person_ids=ids)
    valid = events.loc[events[national.REJECT_COLUMN].isna()]
    return proven_history(valid, ids)


def people_of(source: national.TableSource, fragment: Any, ids: np.ndarray) -> pd.DataFrame:
    """These people's rows in one fragment (the filter is pushed into the scan)."""
    return source.read_fragment(fragment, PEOPLE_STATIC_COLUMNS, person_ids=ids)


def combine(results: list[BlockResult]) -> BlockResult:
    """The blocks' results as one, sorted by person_id (blocks never share a person)."""
    def stacked(frames: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
        # empty frames may carry looser dtypes (object), which must not decide the result's
        filled = [f for f in frames if len(f)] or frames[:1]
        frame = pd.concat(filled, ignore_index=True)
        if keys == ["person_id"] and frame["person_id"].is_monotonic_increasing:
            return frame  # blocks of increasing person_id ranges: a stable sort would keep this order
        return frame.sort_values(keys, kind="mergesort").reset_index(drop=True)

    ends = [r.records_end for r in results if r.records_end is not None]
    spell_tables = [table for table in results[0].linked_spells] if results else []
    spell_rejects = [r.spell_rejects for r in results if r.spell_rejects is not None]
    return BlockResult(
        pool=stacked([r.pool for r in results], ["person_id"]),
        linked_events=stacked([r.linked_events for r in results], ["person_id", "offence_date", "outcome_date"]),
        linked_people=stacked([r.linked_people for r in results], ["person_id"]),
        event_rejects=stacked([r.event_rejects for r in results], ["person_id", "reason"]),
        records_end=max(ends) if ends else None,
        linked_spells={table: spells.sorted_spells(pd.concat(
            [r.linked_spells[table] for r in results if len(r.linked_spells[table])]
            or [results[0].linked_spells[table]], ignore_index=True)) for table in spell_tables},
        spell_rejects=spells.sorted_rejects(pd.concat(spell_rejects, ignore_index=True)) if spell_rejects else None,
    )


__all__ = [
    "EVENT_COLUMNS",
    "HISTORY_COLUMNS",
    "PEOPLE_STATIC_COLUMNS",
    "BlockResult",
    "BlockTask",
    "FeatureDefinitions",
    "PreparedBlock",
    "block_features",
    "block_pool",
    "combine",
    "frames_task",
    "link_candidates",
    "linked_events_of",
    "people_of",
    "people_rows",
    "person_features",
    "pool_index",
    "proven_history",
    "rows_of",
    "with_linked_rows",
]
