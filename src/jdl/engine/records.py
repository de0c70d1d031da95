"""Record mode: an organisation's cohort linked to national records.

The order of the stages lives here: cohort file, linkage, one pass over the
national events (index events, covariates and outcomes of everyone with an
index event in the period), the participants' index events, eligibility.
The pass runs block by block on Dask (see `jdl.engine.pool`): when the Parquet
statistics show people and events laid out in matching person_id ranges, each
block is read and computed where it lies; otherwise the events are
repartitioned by person_id first. Its result, the comparison pool's
per-person table, is kept in the feature cache, so a later run on the same
records and definitions reads it instead of the events.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import importlib
import inspect
import math
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
from dask.base import tokenize
from dask.delayed import Delayed

import jdl
from jdl import cohort as cohort_stage
from jdl import linkage as linkage_stage
from jdl import measures as measures_stage
from jdl.audit import fingerprint_files
from jdl.audit.fingerprints import FingerprintCache
from jdl.engine import link_read, progress
from jdl.engine import pool as pool_pass
from jdl.engine.evaluation import Evaluation, attrition_table
from jdl.errors import EvaluationCannotComplete, JdlUserError
from jdl.sources import national, spells
from jdl.sources.cache import (
    FINGERPRINTS_FOLDER,
    CachedEntry,
    FeatureCache,
    cache_key,
    frame_from_arrow,
    frame_to_arrow,
)
from jdl.sources.cohort_file import read_cohort
from jdl.sources.layout import plan_blocks
from jdl.spec import Spec

PEOPLE_LINK_COLUMNS = link_read.PEOPLE_LINK_COLUMNS
PEOPLE_STATIC_COLUMNS = pool_pass.PEOPLE_STATIC_COLUMNS
EVENT_COLUMNS = pool_pass.EVENT_COLUMNS
HISTORY_COLUMNS = pool_pass.HISTORY_COLUMNS
PROVEN = pool_pass.PROVEN
# what eligibility reads of the pool's rows
POOL_FACT_COLUMNS = ["person_id", "index_date", "date_of_birth", "region"]
# Events rows per block: big enough to amortise a task, small enough for a worker's memory.
BLOCK_TARGET_ROWS = 1_500_000
# A block of overlapping person_id ranges larger than this is not read whole: shuffle instead.
BLOCK_MAX_ROWS = 6_000_000
# Bump when what the cached per-person table holds, or how it is computed, changes.
FEATURES_FORMAT = 1
# Modules whose code decides the cached values; their source is part of the cache key.
FEATURE_MODULES = (
    "jdl.sources.national",
    "jdl.cohort.index_events",
    "jdl.cohort.selection",
    "jdl.measures.covariates",
    "jdl.measures.kernels",
    "jdl.measures.outcomes",
    "jdl.measures.windows",
    "jdl.engine.pool",
    "jdl.sources.spells",
)
LINKAGE_MODULES = (
    "jdl.engine.link_read",
    "jdl.linkage.candidates",
    "jdl.linkage.link",
    "jdl.linkage.normalise",
    "jdl.linkage.rules",
    "jdl.sources.cohort_file",
)
TRACKED_LIBRARIES = ("pandas", "numpy", "pyarrow", "rapidfuzz")
CACHED_TABLES = ("pool", "event_rejects")
PARTICIPANT_TABLES = ("links", "unlinked", "linked_events", "linked_people")
# cached alongside when the definitions read the optional spell tables (employment, benefits)
SPELL_REJECTS_TABLE = "spell_rejects"
# (links, unlinked rows, counts per rule): what linking the cohort gives
LinkOutcome = tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]
LINKED_SPELLS_PREFIX = "linked_"


class RecordsEvaluation(Evaluation):
    mode = "records"
    id_column = "person_id"
    # Set by the runner: the feature cache (None: off) and whether to draw progress bars.
    feature_cache: FeatureCache | None = None
    show_progress: bool = False
    cache_status: str = "off"
    participants_cache: str = "off"
    layout: str = ""
    # link the cohort inside the pass's Dask graph when the people table is Parquet (False: before it)
    link_in_pass: bool = True
    # the optional spell tables the definitions read, by table name; what the pass handed back of them
    spell_sources: dict[str, national.TableSource]
    pass_linked_spells: dict[str, pd.DataFrame]
    spell_reject_rows: pd.DataFrame | None

    def run(self) -> dict[str, Any]:
        try:
            return super().run()
        finally:
            self._finish_cache_writes()

    def prepare(self) -> tuple[pd.DataFrame, list[str], list[measures_stage.OutcomeColumn]]:
        spec = self.spec
        records = spec.data.national_records
        assert records is not None and spec.data.cohort is not None and spec.cohort.period is not None
        period = spec.cohort.period
        self.spell_sources, self.pass_linked_spells, self.spell_reject_rows = {}, {}, None
        self._cache_writes: list[tuple[Future[bool], Callable[[bool], None] | None]] = []

        with self.clock.stage("read_cohort"):
            cohort_file = read_cohort(spec.data.cohort)
            self.inputs["cohort"] = fingerprint_files([str(cohort_file.path)], cache=self._fingerprints())
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
            self.inputs["people"] = fingerprint_files(people_src.files, cache=self._fingerprints())
            self.inputs["events"] = fingerprint_files(events_src.files, cache=self._fingerprints())
            self._check_records_reach(events_src)
            given_spells = self._open_spell_tables()

        matched_on = [(c.name, c.window) for c in spec.covariates]
        # a registered pre-index measure named as the placebo outcome is computed with the covariates
        # but not matched on
        placebo = spec.estimator.sensitivity.placebo_outcome
        extra = [(placebo, None)] if placebo and (placebo, None) not in matched_on else []
        definitions = pool_pass.FeatureDefinitions(
            period_from=period.from_, period_to=period.to,
            covariates=tuple(matched_on + extra),
            measures=tuple(m.name for m in spec.outcomes.measures),
            follow_up=spec.outcomes.primary_window, waiting_period=spec.outcomes.waiting_period,
            extra_windows=spec.outcomes.windows[1:],
        )
        used = measures_stage.tables_needed(definitions.covariates, definitions.measures)
        self.spell_sources = {table: given_spells[table] for table in used}
        participants_key = self._participants_key(definitions)
        participants = (self.feature_cache.get(participants_key, self._participant_tables())
                        if self.feature_cache is not None else None)
        pool_entry = self._pool_entry(definitions)
        # the stage "linkage" times the linkage done before the pass; when the cohort is linked
        # inside the pass's Dask graph (Parquet people), its reads and rules count in "features"
        with self.clock.stage("linkage"):
            pending: Delayed | None = None
            if participants is not None:
                links = frame_from_arrow(participants.tables["links"])
                unlinked = frame_from_arrow(participants.tables["unlinked"])
                linkage_counts = {k: int(v) for k, v in participants.meta["linkage_counts"].items()}
            elif people_src.fmt == "parquet" and self.link_in_pass and pool_entry is None:
                pending = self._link_graph(cohort_file.rows, people_src)
            else:
                links, unlinked, linkage_counts = self._link(cohort_file.rows, people_src)
            if pending is None:
                linked_ids = self._linked(links, unlinked, linkage_counts)

        with self.clock.stage("features"):
            pool_table, event_rejects, records_end, linked_rows, outcome = self._national_pass(
                people_src, events_src, definitions, linked_ids if pending is None else pending, pool_entry
            )
            if outcome is not None:
                links, unlinked, linkage_counts = outcome
                linked_ids = self._linked(links, unlinked, linkage_counts)
            if participants is not None:
                linked_events = frame_from_arrow(participants.tables["linked_events"])
                linked_people = frame_from_arrow(participants.tables["linked_people"])
                linked_spells = {table: frame_from_arrow(participants.tables[LINKED_SPELLS_PREFIX + table])
                                 for table in self.spell_sources}
            else:
                if linked_rows is None:
                    linked_rows = self._linked_rows(people_src, events_src, linked_ids)
                    self.pass_linked_spells = self._linked_spells(linked_ids)
                tables = {"links": frame_to_arrow(links), "unlinked": frame_to_arrow(unlinked),
                          "linked_events": frame_to_arrow(linked_rows[0]),
                          "linked_people": frame_to_arrow(linked_rows[1]),
                          **{LINKED_SPELLS_PREFIX + table: frame_to_arrow(frame)
                             for table, frame in self.pass_linked_spells.items()}}
                linked_events = frame_from_arrow(tables["linked_events"])
                linked_people = frame_from_arrow(tables["linked_people"])
                linked_spells = {table: frame_from_arrow(tables[LINKED_SPELLS_PREFIX + table])
                                 for table in self.spell_sources}
                if self.feature_cache is not None:
                    self._store(participants_key, tables, {"linkage_counts": linkage_counts})
            self.participants_cache = "hit" if participants is not None else (
                "off" if self.feature_cache is None else "miss, stored")
            self.reject("events", event_rejects)
            if len(event_rejects):
                self.warnings.append(
                    f"{len(event_rejects)} rows of the events table break the data contract and were "
                    "left out (see rejects.csv)"
                )
            self._reject_spells()
            self.records_end = records_end
            self._check_period(records_end)

        with self.clock.stage("index_events"):
            linked_starts = links.merge(
                cohort_file.rows[["row_number", "intervention_start"]], on="row_number", how="left"
            )
            occasions = cohort_stage.resolve_occasions(
                cohort_stage.candidate_index_rows(linked_events, period.from_, period.to)
            )
            treatment = cohort_stage.choose_treatment_index(
                linked_starts, occasions, rule_name=spec.cohort.index, window=spec.cohort.index_window,
                period_from=period.from_, period_to=period.to,
            )
            self.reject("index_event", treatment.not_found)
            # the pool's rows are taken once, after eligibility: here only the columns it needs, of
            # every row (each row's reasons are its own; a linked person's are not used)
            not_linked = ~pool_table["person_id"].isin(linked_ids).to_numpy(dtype=bool)
            pool_facts = pool_table[POOL_FACT_COLUMNS].reset_index(drop=True)
            self.counts["index_event_found"] = len(treatment.chosen)

        with self.clock.stage("eligibility"):
            regions = spec.comparison_pool.regions
            region_list = None if regions == "national" else list(regions)
            treated_reasons = cohort_stage.eligibility_reasons(
                treatment.chosen, linked_people, min_age=spec.cohort.min_age, regions=None,
                apply_regions=False,
            )
            ineligible = treatment.chosen.loc[treated_reasons.notna(), ["row_number"]].assign(
                reason=treated_reasons[treated_reasons.notna()].to_numpy()
            )
            self.reject("eligibility", ineligible)
            treated_index = treatment.chosen.loc[treated_reasons.isna()]
            pool_reasons = cohort_stage.eligibility_reasons(
                pool_facts[["person_id", "index_date"]], pool_facts[["person_id", "date_of_birth", "region"]],
                min_age=spec.cohort.min_age, regions=region_list, apply_regions=True,
            )
            eligible = not_linked & pool_reasons.isna().to_numpy()
            feature_columns = definitions.covariate_columns + [c.name for c in definitions.outcome_columns]
            pool_rows = np.flatnonzero(eligible)
            del pool_facts
            self.counts["eligible"] = len(treated_index)
            self.counts["comparison_pool"] = len(pool_rows)
            if len(treated_index) == 0:
                raise EvaluationCannotComplete(
                    "cohort", "no participant has an eligible index event in the period",
                    hint="check cohort.period and intervention_start dates; see rejects.csv",
                )
            self.treated_rows = treated_index[["row_number", "person_id"]]

        with self.clock.stage("participants"):
            treated_table = (
                treated_index.drop(columns=["row_number", "intervention_start"])
                .sort_values("person_id", kind="mergesort").reset_index(drop=True)
            )
            history = linked_events.loc[linked_events["person_id"].isin(treated_table["person_id"])]
            treated_spells = {table: pool_pass.rows_of(frame, treated_table["person_id"].to_numpy())
                              for table, frame in linked_spells.items()}
            treated_features = pool_pass.person_features(treated_table, linked_people, history, definitions,
                                                         treated_spells)
            self.reoffender_ids = {
                str(window): measures_stage.proven_reoffences(
                    treated_table, history, window, spec.outcomes.waiting_period
                )["person_id"].unique()
                for window in spec.outcomes.windows
            }
            covariate_columns = [measures_stage.covariate_column(name, window) for name, window in matched_on]
            treated_part = pd.concat(
                [treated_table[["person_id", "index_date"]].assign(treated=True),
                 treated_features[feature_columns]], axis=1,
            )
            frame = units_frame(treated_part, pool_table, pool_rows, feature_columns)
            frame = self._with_cohort_columns(frame, cohort_file.rows)
            # the pool's tables are copies of what `frame` holds: free them before matching
            self._finish_cache_writes()  # the entries' tables are freed with the frames below
            del pool_table, treated_part, linked_events, linked_rows, linked_spells
            self.pass_linked_spells = {}
            _release_memory()

        # calendar windows differ in length (leap years): the longest bounds days to first reoffence
        index_dates = frame["index_date"]
        longest = spec.outcomes.longest_window
        # over the distinct index dates (a few thousand days, not millions of units): the same maximum
        distinct_dates = pd.Series(index_dates.unique())
        self._longest_window = float((longest.add_to(distinct_dates) - distinct_dates).dt.days.max())
        if len(spec.outcomes.windows) > 1:
            self.outcome_windows = {
                measures_stage.window_column_name(column.name, window, spec.outcomes.primary_window):
                    (str(window), column.name)
                for window in spec.outcomes.windows
                for name in definitions.measures for column in measures_stage.MEASURES[name].columns
            }
        return frame, covariate_columns, definitions.outcome_columns

    def _fingerprints(self) -> FingerprintCache | None:
        """Input fingerprints are cached next to the feature tables (the audit default otherwise)."""
        if self.feature_cache is None:
            return None
        return FingerprintCache(self.feature_cache.root / FINGERPRINTS_FOLDER)

    # -- the pass over the national records

    def _linked(self, links: pd.DataFrame, unlinked: pd.DataFrame, linkage_counts: dict[str, int]) -> np.ndarray:
        """Records the linkage's outcome; the linked person_ids, sorted and distinct."""
        self.reject("linkage", unlinked)
        self.counts["linked"] = len(links)
        self.linkage_counts = linkage_counts
        return np.unique(links["person_id"].to_numpy(dtype=np.int64))

    def _national_pass(
        self,
        people_src: national.TableSource,
        events_src: national.TableSource,
        definitions: pool_pass.FeatureDefinitions,
        linked: np.ndarray | Delayed,
        cached: CachedEntry | None,
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp, tuple[pd.DataFrame, pd.DataFrame] | None,
               LinkOutcome | None]:
        """(pool table, event rejects, records end, when the events were read: the linked
        people's proven events and people rows, and when `linked` is the linkage's graph
        (`_link_graph`) rather than the linked ids: its outcome). `cached`: the pool's cache
        entry (`_pool_entry`), when there is one."""
        key = self._cache_key(definitions)
        if cached is not None:
            assert not isinstance(linked, Delayed)  # a cached pool: the cohort was linked before
            self.cache_status = "hit"
            pool = frame_from_arrow(cached.tables["pool"])
            rejects = frame_from_arrow(cached.tables["event_rejects"])
            if self.spell_sources:
                self.spell_reject_rows = frame_from_arrow(cached.tables[SPELL_REJECTS_TABLE])
            return pool, rejects, pd.Timestamp(cached.meta["records_end"]), None, None

        result, outcome = self._compute_pass(people_src, events_src, definitions, linked)
        if result.records_end is None:
            raise JdlUserError.single(
                "spec data.national_records.events", "the events table has no usable rows",
                hint="see rejects.csv of this run for the reasons rows were left out",
            )
        # the pool as a cached entry reads back; converted for the cache on the writer's thread
        pool = as_read_back(result.pool)
        rejects_arrow = frame_to_arrow(
            result.event_rejects.assign(reason="events table: " + result.event_rejects["reason"].astype("string"))
        )
        meta = {"records_end": result.records_end.isoformat(), "jdl_version": jdl.__version__,
                "definitions": definitions.as_key(), "rows": len(pool), "layout": self.layout}
        stored_tables: dict[str, Any] = {"pool": pool, "event_rejects": rejects_arrow}
        if self.spell_sources:
            spell_arrow = frame_to_arrow(self._spell_rejects_of(result))
            stored_tables[SPELL_REJECTS_TABLE] = spell_arrow
            self.spell_reject_rows = frame_from_arrow(spell_arrow)
            self.pass_linked_spells = dict(result.linked_spells)
        if self.feature_cache is not None:
            self._store(key, stored_tables, meta, on_done=self._pool_stored)
        return (pool, frame_from_arrow(rejects_arrow), result.records_end,
                (result.linked_events, result.linked_people), outcome)

    def _pool_entry(self, definitions: pool_pass.FeatureDefinitions) -> CachedEntry | None:
        """The pool's feature cache entry (its tables read), or None: a miss, or no cache."""
        if self.feature_cache is None:
            return None
        names = CACHED_TABLES + ((SPELL_REJECTS_TABLE,) if self.spell_sources else ())
        return self.feature_cache.get(self._cache_key(definitions), names)

    def _pool_stored(self, stored: bool) -> None:
        self.cache_status = "miss, stored" if stored else "miss, not writable"

    def _store(self, key: str, tables: dict[str, Any], meta: dict[str, Any],
               on_done: Callable[[bool], None] | None = None) -> None:
        """Write a feature cache entry on a background thread, in the order asked.

        Converting frames of `tables` to Arrow, encoding and writing Parquet release the GIL
        mostly, so the write overlaps the serial stages that follow the pass;
        `_finish_cache_writes` waits for it (before matching, and before the run ends whatever
        happens) and hands `on_done` whether the entry was stored.
        """
        assert self.feature_cache is not None
        cache = self.feature_cache
        writer = getattr(self, "_cache_writer", None)
        if writer is None:
            writer = self._cache_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jdl-cache")

        def put() -> bool:
            return cache.put(key, {name: frame_to_arrow(table) if isinstance(table, pd.DataFrame) else table
                                   for name, table in tables.items()}, meta)

        self._cache_writes.append((writer.submit(put), on_done))

    def _finish_cache_writes(self) -> None:
        writes, self._cache_writes = getattr(self, "_cache_writes", []), []
        writer, self._cache_writer = getattr(self, "_cache_writer", None), None
        try:
            for future, on_done in writes:
                stored = future.result()
                if on_done is not None:
                    on_done(stored)
        finally:
            if writer is not None:
                writer.shutdown(wait=True)

    def _compute_pass(
        self,
        people_src: national.TableSource,
        events_src: national.TableSource,
        definitions: pool_pass.FeatureDefinitions,
        linked: np.ndarray | Delayed,
    ) -> tuple[pool_pass.BlockResult, LinkOutcome | None]:
        """The pass's combined result, and the linkage's outcome when `linked` is its graph."""
        blocks = None
        if people_src.fmt == "parquet" and events_src.fmt == "parquet":
            blocks = plan_blocks(people_src.fragments(), events_src.fragments(),
                                 target_rows=BLOCK_TARGET_ROWS, max_rows=BLOCK_MAX_ROWS)
        if not blocks:
            outcome = None
            if isinstance(linked, Delayed):
                (outcome,) = progress.compute("linkage", linked, show=self.show_progress)
                linked = _linked_ids(outcome)
            return self._shuffled_pass(people_src, events_src, definitions, linked), outcome
        self.layout = f"aligned: {len(blocks)} person_id blocks, no shuffle"
        task = pool_pass.BlockTask(people_src, events_src, definitions,
                                   spell_sources=tuple(self.spell_sources.items()))
        # keys carry a content token: runs sharing a cluster must never share a block's result
        token = tokenize(task, blocks, linked)
        # the spell tables have no blocks of their own: each block reads its person_id range of
        # them, and the ranges tile every id so no spell row (and no reject) is missed
        ranges = spells.block_ranges([(b.person_min, b.person_max) for b in blocks])
        if not isinstance(linked, Delayed):
            ids = dask.delayed(linked)
            parts = [dask.delayed(task, pure=True)(block, ids, person_range,
                                                   dask_key_name=f"features-block-{i}-{token}")
                     for i, (block, person_range) in enumerate(zip(blocks, ranges, strict=True))]
            results = progress.compute("features", *parts, show=self.show_progress)
            return pool_pass.combine(list(results)), None
        # One graph: each block's read and pool features need nothing of the linkage, so they run
        # while the cohort is linked; only choosing the block's linked rows waits for the ids.
        ids = dask.delayed(_linked_ids, pure=True)(linked, dask_key_name=f"linked-ids-{token}")
        parts = []
        for i, (block, person_range) in enumerate(zip(blocks, ranges, strict=True)):
            prepared = dask.delayed(task.prepare, pure=True)(
                block, person_range, dask_key_name=f"features-block-{i}-{token}")
            parts.append(dask.delayed(pool_pass.with_linked_rows, pure=True)(
                prepared, ids, dask_key_name=f"features-linked-rows-{i}-{token}"))
        outcome, *results = progress.compute("features", linked, *parts, show=self.show_progress)
        return pool_pass.combine(list(results)), outcome

    def _shuffled_pass(
        self,
        people_src: national.TableSource,
        events_src: national.TableSource,
        definitions: pool_pass.FeatureDefinitions,
        linked_ids: np.ndarray,
    ) -> pool_pass.BlockResult:
        """People and events repartitioned into the same person_id ranges, then the block pass."""
        events = events_src.read(EVENT_COLUMNS)
        people = people_src.read(PEOPLE_STATIC_COLUMNS)
        good = events[national.REJECT_COLUMN].isna()
        rejects_dd = events.loc[~good, ["person_id", national.REJECT_COLUMN]]
        valid = events.loc[good]
        proven = valid.loc[valid["outcome_type"].isin(list(PROVEN))]
        people_valid = people.loc[people[national.REJECT_COLUMN].isna()]
        low, high, records_end, rows, event_rejects = progress.compute(
            "scan", proven["person_id"].min(), proven["person_id"].max(), valid["outcome_date"].max(),
            proven.map_partitions(len).sum(), rejects_dd, show=self.show_progress,
        )
        event_rejects = event_rejects.rename(columns={national.REJECT_COLUMN: "reason"})
        event_rejects = event_rejects.sort_values(["person_id", "reason"], kind="mergesort").reset_index(drop=True)
        parts = max(1, math.ceil(int(rows) / BLOCK_TARGET_ROWS))
        self.layout = f"not aligned: repartitioned by person_id into {parts} ranges"
        if pd.isna(low):
            low = high = 0
        edges = np.unique(np.linspace(int(low), int(high), parts + 1).round().astype(np.int64))
        divisions = tuple(int(v) for v in edges) if len(edges) > 1 else (int(low), int(low) + 1)
        events_by_person = proven.set_index("person_id", divisions=divisions)
        people_by_person = people_valid.set_index("person_id", divisions=divisions)
        spell_parts, spell_rejects = self._shuffled_spells(divisions)
        ids = dask.delayed(linked_ids)
        tasks = [
            dask.delayed(pool_pass.frames_task, pure=True)(
                e, p, definitions, ids, {table: parts[i] for table, parts in spell_parts.items()} or None)
            for i, (e, p) in enumerate(zip(events_by_person.to_delayed(), people_by_person.to_delayed(),
                                           strict=True))
        ]
        results = list(progress.compute("features", *tasks, show=self.show_progress))
        combined = pool_pass.combine(results)
        end = None if pd.isna(records_end) else pd.Timestamp(records_end)
        return pool_pass.BlockResult(combined.pool, combined.linked_events, combined.linked_people,
                                     event_rejects, end, linked_spells=combined.linked_spells,
                                     spell_rejects=spell_rejects)

    def _shuffled_spells(self, divisions: tuple[int, ...]) -> tuple[dict[str, list[Any]], pd.DataFrame | None]:
        """The spell tables' valid rows in the pass's person_id ranges, and their rejects (a full scan)."""
        parts: dict[str, list[Any]] = {}
        rejects = []
        for table, source in self.spell_sources.items():
            frame = spells.read_lazily(source)
            good = frame[national.REJECT_COLUMN].isna()
            (rejected,) = progress.compute(f"scan {table}", frame.loc[~good], show=self.show_progress)
            rejects.append(spells.spell_rejects(rejected, table))
            parts[table] = list(frame.loc[good].set_index("person_id", divisions=divisions).to_delayed())
        if not rejects:
            return parts, None
        return parts, spells.sorted_rejects(pd.concat(rejects, ignore_index=True))

    def _linked_rows(
        self, people_src: national.TableSource, events_src: national.TableSource, linked_ids: np.ndarray
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The linked people's proven events and people rows, read with a pushed-down person_id filter."""
        ids = dask.delayed(linked_ids)
        event_parts = [dask.delayed(pool_pass.linked_events_of)(events_src, f, ids) for f in events_src.fragments()]
        people_parts = [dask.delayed(pool_pass.people_of)(people_src, f, ids) for f in people_src.fragments()]
        results = progress.compute("participants", *event_parts, *people_parts, show=self.show_progress)
        events = pd.concat([r for r in results[: len(event_parts)] if len(r)] or [results[0]], ignore_index=True)
        people = pd.concat([r for r in results[len(event_parts):] if len(r)] or [results[len(event_parts)]],
                           ignore_index=True)
        events = events.sort_values(["person_id", "offence_date", "outcome_date"], kind="mergesort")
        people = pool_pass.people_rows(people)
        return events.reset_index(drop=True), people

    # -- the optional spell tables (employment, benefits)

    def _open_spell_tables(self) -> dict[str, national.TableSource]:
        """The spell tables the spec gives, opened and fingerprinted (used by the pass or not)."""
        records = self.spec.data.national_records
        assert records is not None
        given: dict[str, national.TableSource] = {}
        for table in spells.SPELL_CONTRACTS:
            location = getattr(records, table)
            if location is not None:
                given[table] = spells.open_spell_table(table, location)
                self.inputs[table] = fingerprint_files(given[table].files, cache=self._fingerprints())
        return given

    def _participant_tables(self) -> tuple[str, ...]:
        return PARTICIPANT_TABLES + tuple(LINKED_SPELLS_PREFIX + table for table in self.spell_sources)

    def _linked_spells(self, linked_ids: np.ndarray) -> dict[str, pd.DataFrame]:
        """The linked people's valid spells, read with a pushed-down person_id filter."""
        return {table: spells.valid_spells(spells.read_spells(source, person_ids=linked_ids))
                for table, source in self.spell_sources.items()}

    @staticmethod
    def _spell_rejects_of(result: pool_pass.BlockResult) -> pd.DataFrame:
        if result.spell_rejects is not None:
            return result.spell_rejects
        return pd.DataFrame({"table": pd.array([], dtype="string"), "person_id": pd.array([], dtype="Int64"),
                             "reason": pd.array([], dtype="string")})

    def _reject_spells(self) -> None:
        rejects = self.spell_reject_rows
        if rejects is None:
            return
        for table in self.spell_sources:
            rows = rejects.loc[(rejects["table"] == table).to_numpy(dtype=bool)]
            self.reject(table, rows)
            if len(rows):
                self.warnings.append(f"{len(rows)} rows of the {table} table break the data contract and were "
                                     "left out (see rejects.csv)")

    def _link(self, rows: pd.DataFrame, people_src: national.TableSource) -> LinkOutcome:
        """(links, unlinked rows, counts per rule) of the cohort's rows against the people table."""
        tasks, empty = self._candidate_tasks(rows, people_src)
        parts = progress.compute("linkage", *tasks, show=self.show_progress)
        return link_outcome(rows, list(parts), empty, list(self.spec.linkage.rules),
                            self.spec.linkage.fuzzy_threshold)

    def _link_graph(self, rows: pd.DataFrame, people_src: national.TableSource) -> Delayed:
        """`_link` as one Dask graph (the candidates' reads, then the rules in one task), to be
        computed with the pass's."""
        tasks, empty = self._candidate_tasks(rows, people_src)
        return dask.delayed(link_outcome, pure=True)(
            rows, tasks, empty, list(self.spec.linkage.rules), self.spec.linkage.fuzzy_threshold)

    def _candidate_tasks(self, rows: pd.DataFrame, people_src: national.TableSource) -> tuple[list[Any], pd.DataFrame]:
        """Dask tasks giving the comparison keys of the people table's linkage candidates, and the
        empty frame of those keys."""
        keys = linkage_stage.candidate_keys(rows)
        if people_src.fmt == "parquet":
            # candidates chosen in Arrow; names converted, and comparison keys computed, for them alone
            fragments = [f for f in people_src.fragments() if f.rows] or people_src.fragments()[:1]
            tasks = [dask.delayed(link_read.candidate_keys_of)(people_src, f, keys) for f in fragments]
            empty = linkage_stage.people_keys(people_src.empty(PEOPLE_LINK_COLUMNS))
        else:
            people = people_src.read(PEOPLE_LINK_COLUMNS)
            empty = linkage_stage.people_keys(people._meta)
            tasks = list(people.map_partitions(_candidate_keys, keys, meta=empty).to_delayed())
        return tasks, empty

    def _participants_key(self, definitions: pool_pass.FeatureDefinitions) -> str:
        """The participants' entry: the pool's key plus the cohort file and the linkage method."""
        return cache_key({
            "participants": self._cache_key(definitions),
            "cohort": self.inputs["cohort"]["sha256"],
            "linkage": {"rules": list(self.spec.linkage.rules), "fuzzy_threshold": self.spec.linkage.fuzzy_threshold},
            "linkage_code": _source_digest(LINKAGE_MODULES),
        })

    def _cache_key(self, definitions: pool_pass.FeatureDefinitions) -> str:
        return cache_key({
            "features_format": FEATURES_FORMAT,
            "jdl_version": jdl.__version__,
            "code": _code_fingerprint(definitions),
            "libraries": {name: _version(name) for name in TRACKED_LIBRARIES},
            "people": self.inputs["people"]["sha256"],
            "events": self.inputs["events"]["sha256"],
            "definitions": definitions.as_key(),
            # only when read: a run without employment measures keeps its entry whatever the table holds
            **({"spells": {table: self.inputs[table]["sha256"] for table in sorted(self.spell_sources)}}
               if self.spell_sources else {}),
        })

    def _check_records_reach(self, events_src: national.TableSource) -> None:
        """Fail before the pass when the Parquet statistics already show the records end too early."""
        latest = self.spec.outcomes.waiting_period.add_to(
            self.spec.outcomes.longest_window.add_to(pd.Timestamp(self.spec.cohort.period.to))  # type: ignore[union-attr]
        )
        try:
            stat = events_src.max_from_statistics("outcome_date")
        except (OSError, ValueError):
            return
        if stat is not None and pd.Timestamp(stat) < latest:
            self._check_period(pd.Timestamp(stat))

    def _check_period(self, records_end: pd.Timestamp) -> None:
        spec = self.spec
        period = spec.cohort.period
        assert period is not None
        longest = spec.outcomes.longest_window
        latest_needed = spec.outcomes.waiting_period.add_to(longest.add_to(pd.Timestamp(period.to)))
        if latest_needed > records_end:
            window = f"follow-up {longest}" if len(spec.outcomes.windows) == 1 else (
                f"the longest follow-up window {longest} of outcomes.follow_up")
            raise JdlUserError([self.loaded.problem(
                ("cohort", "period", "to"),
                f"an index date of {period.to} needs records until {latest_needed.date()} "
                f"({window} + waiting period {spec.outcomes.waiting_period}), "
                f"but the events end at {records_end.date()}",
                value=str(period.to),
                allowed=f"a period ending by {_latest_allowed(records_end, spec).date()}",
            )])

    def _with_cohort_columns(self, frame: pd.DataFrame, cohort_rows: pd.DataFrame) -> pd.DataFrame:
        """Participants' own cohort-file columns that subgroups split by (blank for the pool)."""
        wanted = [g.by for g in self.spec.subgroups if g.by not in frame.columns and g.by in cohort_rows.columns]
        if not wanted:
            return frame
        self._participant_only = set(wanted)
        own = self.treated_rows.merge(cohort_rows[["row_number", *wanted]], on="row_number", how="left")
        columns = own.drop(columns="row_number").drop_duplicates("person_id").set_index("person_id")
        extra = columns.reindex(frame["person_id"].to_numpy())
        return pd.concat([frame, extra.set_index(frame.index)], axis=1)

    def participant_columns(self) -> set[str]:
        return set(getattr(self, "_participant_only", set()))

    def follow_up_days(self) -> float | None:
        return self._longest_window

    def survival_outcome(self) -> tuple[str, str | None]:
        # the curves run over the longest window: it shows the most of each person's time
        outcomes = self.spec.outcomes
        if len(outcomes.windows) == 1:
            return "days_to_first_reoffence", None
        column = measures_stage.window_column_name("days_to_first_reoffence", outcomes.longest_window,
                                                   outcomes.primary_window)
        return column, str(outcomes.longest_window)

    def exact_columns(self) -> list[str]:
        return [
            measures_stage.covariate_column(c.name, c.window)
            for c in self.spec.covariates if c.name in self.spec.matching.exact
        ]

    def treated_reoffenders(
        self, frame: pd.DataFrame, in_matched_treatment: np.ndarray, follow_up: str | None = None
    ) -> int | None:
        ids = self.reoffender_ids[follow_up or str(self.spec.outcomes.primary_window)]
        return int(frame.loc[in_matched_treatment, "person_id"].isin(ids).sum())

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
            "follow_up": str(spec.outcomes.primary_window),
            **({"follow_up_windows": [str(w) for w in spec.outcomes.windows]}
               if len(spec.outcomes.windows) > 1 else {}),
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


def units_frame(treated_part: pd.DataFrame, pool_table: pd.DataFrame, pool_rows: np.ndarray,
                feature_columns: list[str]) -> pd.DataFrame:
    """The matching frame: person_id, treated, index_date, unit_id and the features, sorted by person_id.

    What concatenating the treated rows and the eligible pool rows (`pool_table` at `pool_rows`,
    treated False) and sorting by person_id (stably) gives; a numpy column of the pool is gathered
    once into its place instead of being copied by each of those steps.
    """
    columns = ["person_id", "index_date", *feature_columns]
    pool_part = pool_table.iloc[pool_rows] if not len(treated_part) or not len(pool_rows) else None
    if pool_part is not None:  # one side empty: nothing to interleave
        pool_part = pool_part[columns].assign(treated=False)
        units = pd.concat([part for part in (treated_part, pool_part) if len(part)] or [treated_part],
                          ignore_index=True)
        units = units.sort_values("person_id", kind="mergesort").reset_index(drop=True)
        return pd.concat([units[["person_id", "treated", "index_date"]].assign(unit_id=units["person_id"]),
                          units[feature_columns]], axis=1)
    n_treated = len(treated_part)
    ids = np.concatenate([treated_part["person_id"].to_numpy(dtype=np.int64),
                          pool_table["person_id"].to_numpy(dtype=np.int64)[pool_rows]])
    order = np.argsort(ids, kind="stable")  # the order a stable sort of the concatenation gives
    from_treated = order < n_treated
    treated_at = np.flatnonzero(from_treated)
    treated_from = order[treated_at]
    # each unit's pool row (the first pool row stands in at treated places, overwritten below)
    pool_from = pool_rows[np.where(from_treated, 0, order - n_treated)]
    out: dict[str, pd.Series] = {}
    for column in columns:
        treated_values, pool_values = treated_part[column], pool_table[column]
        if isinstance(treated_values.dtype, np.dtype) and treated_values.dtype == pool_values.dtype:
            values = pool_values.to_numpy().take(pool_from)
            values[treated_at] = treated_values.to_numpy()[treated_from]
            out[column] = pd.Series(values, copy=False)
        else:  # text (Arrow chunks are concatenated without a copy), or dtypes concatenation reconciles
            joined = pd.concat([treated_values, pool_values], ignore_index=True)
            out[column] = joined.take(np.where(from_treated, order, n_treated + pool_from)).reset_index(drop=True)
    frame = {"person_id": out["person_id"], "treated": pd.Series(from_treated, copy=False),
             "index_date": out["index_date"], "unit_id": out["person_id"].copy(),
             **{column: out[column] for column in feature_columns}}
    return pd.DataFrame(frame, copy=False)


def link_outcome(rows: pd.DataFrame, parts: list[pd.DataFrame], empty: pd.DataFrame, rules: list[str],
                 fuzzy_threshold: float) -> LinkOutcome:
    """(links, unlinked rows, counts per rule) of the cohort's rows against the candidates' keys
    (`parts`, in the people table's order)."""
    candidates = pd.concat([p for p in parts if len(p)] or [empty], ignore_index=True)
    linked = linkage_stage.link_prepared(rows, candidates, rules=rules, fuzzy_threshold=fuzzy_threshold)
    # the same Arrow round trip as a cached entry, so cold and warm runs see the same frames
    links = frame_from_arrow(frame_to_arrow(linked.links.reset_index(drop=True)))
    unlinked = frame_from_arrow(frame_to_arrow(linked.unlinked.reset_index(drop=True)))
    return links, unlinked, {k: int(v) for k, v in linked.counts.items()}


def as_read_back(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as `frame_from_arrow(frame_to_arrow(frame))` gives it (what a warm run reads back).

    When the frame's dtypes are already the ones that round trip gives, the values are too (Arrow
    keeps int64, float64, datetime64 and string values, nulls as NaN / NaT / <NA>): the frame
    itself, without converting millions of rows twice on the driver.
    """
    arrow = pa.Schema.from_pandas(frame, preserve_index=False)
    if frame.columns.is_unique and frame_from_arrow(arrow.empty_table()).dtypes.equals(frame.dtypes):
        return frame.reset_index(drop=True)
    return frame_from_arrow(frame_to_arrow(frame))


def _linked_ids(outcome: LinkOutcome) -> np.ndarray:
    return np.unique(outcome[0]["person_id"].to_numpy(dtype=np.int64))


def _candidate_keys(part: pd.DataFrame, keys: linkage_stage.CandidateKeys) -> pd.DataFrame:
    """The comparison keys of a people partition's linkage candidates (valid rows only)."""
    valid = part.loc[part[national.REJECT_COLUMN].isna()]
    return linkage_stage.people_keys(linkage_stage.select_candidates(valid, keys))


def _code_fingerprint(definitions: pool_pass.FeatureDefinitions) -> str:
    """SHA-256 over the source of the modules that compute the cached values (plug-ins included)."""
    modules = set(FEATURE_MODULES)
    for name, _ in definitions.covariates:
        modules.add(measures_stage.COVARIATES[name].compute.__module__)
    for name in definitions.measures:
        modules.add(measures_stage.MEASURES[name].compute.__module__)
    return _source_digest(tuple(modules))


def _source_digest(modules: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for module_name in sorted(modules):
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
        try:
            source = inspect.getsource(module)
        except (OSError, TypeError):
            source = module_name
        digest.update(module_name.encode() + b"\0" + source.encode() + b"\0")
    return digest.hexdigest()


def _release_memory() -> None:
    """Hand the pass's freed memory back to the system before matching needs its own (peak RSS)."""
    gc.collect()
    with contextlib.suppress(Exception):
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    with contextlib.suppress(Exception):  # glibc only
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _version(name: str) -> str:
    module = sys.modules.get(name) or importlib.import_module(name)
    return str(getattr(module, "__version__", "unknown"))


def _latest_allowed(records_end: pd.Timestamp, spec: Spec) -> pd.Timestamp:
    """The last period end whose follow-up fits in the records (calendar arithmetic, searched by day)."""
    step = pd.Timedelta(days=1)
    longest = spec.outcomes.longest_window
    span = longest.approx_days() + spec.outcomes.waiting_period.approx_days()
    candidate = records_end - pd.Timedelta(days=int(span) + 5)
    while spec.outcomes.waiting_period.add_to(longest.add_to(candidate + step)) <= records_end:
        candidate += step
    return candidate
