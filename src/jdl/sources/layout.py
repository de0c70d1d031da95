"""How the national tables are laid out by person_id, and the blocks a pass works on.

Covariates and outcomes are window aggregates of one person's events, so a
partition can compute them on its own as long as it holds all of each of its
people's rows. Parquet statistics tell, without reading data, which person_id
range each file (or row group) covers. Overlapping ranges of people and events
fragments are merged into connected components; when every component is
small, the layout is *aligned*: blocks of whole components are read and
processed independently, with no shuffle. Otherwise (files cut by date, rows
in no particular order, CSV without statistics) the caller falls back to a
shuffle on person_id.
"""

from __future__ import annotations

from dataclasses import dataclass

import fsspec
import pyarrow.parquet as pq

PERSON_ID = "person_id"
# A file with more rows than this is split into fragments of whole row groups.
SPLIT_FILE_ROWS = 2_000_000


@dataclass(frozen=True)
class Fragment:
    """A file, or some of its row groups, and the person_id range its statistics give."""

    path: str
    fmt: str
    rows: int
    row_groups: tuple[int, ...] | None = None  # None: the whole file
    person_min: int | None = None
    person_max: int | None = None

    @property
    def has_range(self) -> bool:
        return self.person_min is not None and self.person_max is not None


@dataclass(frozen=True)
class Block:
    """People and events fragments that together hold every row of a person_id range."""

    people: tuple[Fragment, ...]
    events: tuple[Fragment, ...]
    person_min: int
    person_max: int

    @property
    def event_rows(self) -> int:
        return sum(f.rows for f in self.events)


def parquet_fragments(path: str) -> list[Fragment]:
    """A Parquet file's fragments: the file, or groups of row groups of a large file."""
    with fsspec.open(path, "rb") as handle:
        metadata = pq.ParquetFile(handle).metadata
    names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
    column = names.index(PERSON_ID) if PERSON_ID in names else None
    groups: list[tuple[int, int, int | None, int | None]] = []
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        low = high = None
        if column is not None:
            stats = group.column(column).statistics
            if (stats is not None and stats.has_min_max and stats.null_count == 0
                    and isinstance(stats.min, int) and isinstance(stats.max, int)):
                low, high = int(stats.min), int(stats.max)
        groups.append((index, group.num_rows, low, high))
    if metadata.num_rows <= SPLIT_FILE_ROWS or len(groups) == 1:
        return [_merged(path, groups, whole_file=True)]
    fragments: list[Fragment] = []
    pending: list[tuple[int, int, int | None, int | None]] = []
    for group in groups:
        pending.append(group)
        if sum(g[1] for g in pending) >= SPLIT_FILE_ROWS // 2:
            fragments.append(_merged(path, pending, whole_file=False))
            pending = []
    if pending:
        fragments.append(_merged(path, pending, whole_file=False))
    return fragments


def _merged(path: str, groups: list[tuple[int, int, int | None, int | None]], *, whole_file: bool) -> Fragment:
    rows = sum(g[1] for g in groups)
    lows = [g[2] for g in groups if g[1] > 0]
    highs = [g[3] for g in groups if g[1] > 0]
    known = all(v is not None for v in lows + highs)
    low = min(v for v in lows if v is not None) if known and lows else None
    high = max(v for v in highs if v is not None) if known and highs else None
    if rows == 0:
        low = high = None
    return Fragment(path, "parquet", rows, None if whole_file else tuple(g[0] for g in groups), low, high)


def plan_blocks(
    people: list[Fragment], events: list[Fragment], *, target_rows: int, max_rows: int
) -> list[Block] | None:
    """Person-aligned blocks of about `target_rows` events rows, or None when the layout is not aligned.

    Empty fragments are dropped. Not aligned: a non-empty fragment without a
    person_id range, or a connected component of overlapping ranges holding
    more than `max_rows` events rows (reading it as one partition would defeat
    the purpose).
    """
    tagged = [(f, "people") for f in people if f.rows] + [(f, "events") for f in events if f.rows]
    if not tagged or any(not f.has_range for f, _ in tagged):
        return None
    tagged.sort(key=lambda item: (item[0].person_min, item[0].person_max, item[1], item[0].path))
    components: list[list[tuple[Fragment, str]]] = []
    reach: int | None = None
    for fragment, kind in tagged:
        assert fragment.person_min is not None and fragment.person_max is not None
        if reach is None or fragment.person_min > reach:
            components.append([])
            reach = fragment.person_max
        components[-1].append((fragment, kind))
        reach = max(reach, fragment.person_max)
    blocks: list[Block] = []
    current: list[tuple[Fragment, str]] = []
    for component in components:
        rows = sum(f.rows for f, kind in component if kind == "events")
        if rows > max_rows:
            return None
        current_rows = sum(f.rows for f, kind in current if kind == "events")
        if current and current_rows + rows > target_rows:
            blocks.append(_block(current))
            current = []
        current.extend(component)
    if current:
        blocks.append(_block(current))
    return blocks


def _block(members: list[tuple[Fragment, str]]) -> Block:
    lows = [f.person_min for f, _ in members if f.person_min is not None]
    highs = [f.person_max for f, _ in members if f.person_max is not None]
    return Block(
        people=tuple(f for f, kind in members if kind == "people"),
        events=tuple(f for f, kind in members if kind == "events"),
        person_min=min(lows),
        person_max=max(highs),
    )


__all__ = ["Block", "Fragment", "parquet_fragments", "plan_blocks"]
