"""Writing the synthetic records in the data contract's exact schema (DESIGN §2)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jdl.synth import names
from jdl.synth import params as P
from jdl.synth.careers import Events
from jdl.synth.employment import BENEFIT_TYPES, ONGOING, Spells
from jdl.synth.population import FORENAMES, PNC_CHECK_LETTERS, People, pnc_check_letter

PEOPLE_SCHEMA = pa.schema(
    [
        ("person_id", pa.int64()),
        ("pnc_id", pa.string()),
        ("forename", pa.string()),
        ("surname", pa.string()),
        ("date_of_birth", pa.date32()),
        ("sex", pa.string()),
        ("ethnicity", pa.string()),
        ("region", pa.string()),
    ]
)
EVENTS_SCHEMA = pa.schema(
    [
        ("person_id", pa.int64()),
        ("offence_date", pa.date32()),
        ("outcome_date", pa.date32()),
        ("outcome_type", pa.string()),
        ("offence_group", pa.string()),
        ("severity", pa.string()),
        ("disposal", pa.string()),
        ("sentence_days", pa.int32()),
        ("release_date", pa.date32()),
    ]
)

EMPLOYMENT_SCHEMA = pa.schema(
    [("person_id", pa.int64()), ("start_date", pa.date32()), ("end_date", pa.date32())]
)
BENEFITS_SCHEMA = pa.schema(
    [
        ("person_id", pa.int64()),
        ("benefit_type", pa.string()),
        ("start_date", pa.date32()),
        ("end_date", pa.date32()),
    ]
)


def _decode(codes: np.ndarray, labels: tuple[str, ...]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32)), pa.array(labels, pa.string())
    ).cast(pa.string())


def _dates(days: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.int32(), mask=missing).cast(pa.date32())


def people_table(people: People, rows: slice) -> pa.Table:
    year = people.pnc_year[rows]
    number = people.pnc_number[rows]
    letter = pnc_check_letter(year, number)
    pnc = pc.binary_join_element_wise(
        pa.array(year).cast(pa.string()),
        pc.utf8_lpad(pa.array(number).cast(pa.string()), width=7, padding="0"),
        _decode(letter, tuple(PNC_CHECK_LETTERS)),
        "",
    )
    pnc = pc.utf8_replace_slice(pnc, start=4, stop=4, replacement="/")
    pnc = pc.if_else(pa.array(people.has_pnc[rows]), pnc, pa.nulls(len(year), pa.string()))
    return pa.Table.from_arrays(
        [
            pa.array(people.person_id[rows]),
            pnc,
            _decode(people.forename[rows], FORENAMES),
            _decode(people.surname[rows], names.SURNAMES),
            _dates(people.date_of_birth[rows]),
            _decode((~people.male[rows]).astype(np.int8), P.SEXES),
            _decode(people.ethnicity[rows], P.ETHNICITIES),
            _decode(people.region[rows], P.REGIONS),
        ],
        schema=PEOPLE_SCHEMA,
    )


def events_table(events: Events) -> pa.Table:
    not_custody = ~events.custody
    return pa.Table.from_arrays(
        [
            pa.array(events.person + 1),
            _dates(events.offence),
            _dates(events.outcome),
            _decode(events.outcome_type, P.OUTCOME_TYPES),
            _decode(events.offence_group, P.OFFENCE_GROUPS),
            _decode(events.severity, P.SEVERITIES),
            _decode(events.disposal, P.DISPOSALS),
            pa.array(events.sentence_days, pa.int32(), mask=not_custody),
            _dates(events.release, not_custody),
        ],
        schema=EVENTS_SCHEMA,
    )


def write_partitions(
    out_dir: pathlib.Path, people: People, events: Events, people_per_file: int
) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """Parquet parts holding contiguous person_id ranges; events in the same ranges, sorted."""
    people_dir = out_dir / "national" / "people"
    events_dir = out_dir / "national" / "events"
    for folder in (people_dir, events_dir):
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("part-*.parquet"):
            stale.unlink()
    people_paths: list[pathlib.Path] = []
    events_paths: list[pathlib.Path] = []
    for part, first in enumerate(range(0, len(people), people_per_file)):
        last = min(first + people_per_file, len(people))
        lo, hi = np.searchsorted(events.person, [first, last], side="left")
        name = f"part-{part:05d}.parquet"
        pq.write_table(people_table(people, slice(first, last)), people_dir / name)
        pq.write_table(events_table(events.take(np.arange(lo, hi))), events_dir / name)
        people_paths.append(people_dir / name)
        events_paths.append(events_dir / name)
    return people_paths, events_paths


def spells_table(spells: Spells, benefits: bool) -> pa.Table:
    """Spells in the employment or benefits contract; an open spell has a blank end_date."""
    columns = [pa.array(spells.person + 1)]
    if benefits:
        columns.append(_decode(spells.kind, BENEFIT_TYPES))
    ongoing = spells.end == ONGOING
    columns += [_dates(spells.start), _dates(np.where(ongoing, 0, spells.end), ongoing)]
    return pa.Table.from_arrays(columns, schema=BENEFITS_SCHEMA if benefits else EMPLOYMENT_SCHEMA)


def write_spell_partitions(
    out_dir: pathlib.Path, table: str, spells: Spells, people: int, people_per_file: int
) -> list[pathlib.Path]:
    """Parquet parts in the people table's person_id ranges (so the block pass reads them aligned)."""
    folder = out_dir / "national" / table
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("part-*.parquet"):
        stale.unlink()
    paths: list[pathlib.Path] = []
    for part, first in enumerate(range(0, people, people_per_file)):
        lo, hi = np.searchsorted(spells.person, [first, min(first + people_per_file, people)], side="left")
        path = folder / f"part-{part:05d}.parquet"
        pq.write_table(spells_table(spells.take(np.arange(lo, hi)), benefits=table == "benefits"), path)
        paths.append(path)
    return paths


def write_json(path: pathlib.Path, payload: dict[str, object]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
