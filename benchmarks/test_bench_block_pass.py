"""The block pass alone: reading a block of whole people and computing their features.

Run with `make bench`. `read` is the Parquet scan plus normalisation of one
block's events and people (as the pass reads them: text of few values as
Categoricals), `compute` is `block_features` on what was read, so a change
to either shows up on its own. Times are per block of the records' first
blocks; the national pass runs one such task per ~1.5M events.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from jdl.durations import Duration
from jdl.engine import pool as pool_pass
from jdl.engine.records import BLOCK_MAX_ROWS, BLOCK_TARGET_ROWS
from jdl.sources import national
from jdl.sources.layout import Block, plan_blocks
from jdl.synth import generate

PEOPLE = 200_000
DEFINITIONS = pool_pass.FeatureDefinitions(
    period_from=dt.date(2016, 1, 1), period_to=dt.date(2018, 12, 31),
    covariates=(("age_at_index", None), ("sex", None), ("ethnicity", None), ("index_offence_group", None),
                ("index_disposal", None), ("prior_proven_offences", None), ("prior_custodial_sentences", None),
                ("years_since_first_offence", None), ("copas_rate", None)),
    measures=("reoffending_rate", "reoffending_frequency", "days_to_first_reoffence", "custody_rate",
              "custody_frequency", "first_reoffence_severity"),
    follow_up=Duration(1, "y"), waiting_period=Duration(6, "m"),
)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[national.TableSource, national.TableSource, Block]:
    out: Path = tmp_path_factory.mktemp("bench_block_pass")
    generate(PEOPLE, out, seed=5)
    people = national.open_table(str(out / "national" / "people"), national.PEOPLE, "people")
    events = national.open_table(str(out / "national" / "events"), national.EVENTS, "events")
    blocks = plan_blocks(people.fragments(), events.fragments(), target_rows=BLOCK_TARGET_ROWS,
                         max_rows=BLOCK_MAX_ROWS)
    assert blocks, "synthetic records are laid out in person_id blocks"
    return people, events, blocks[0]


def _read(people: national.TableSource, events: national.TableSource, block: Block) -> tuple:
    frames = [events.read_fragment(f, pool_pass.EVENT_COLUMNS, categorical=True) for f in block.events]
    persons = [people.read_fragment(f, pool_pass.PEOPLE_STATIC_COLUMNS, categorical=True) for f in block.people]
    return pool_pass._concat(frames), pool_pass._concat(persons)


def test_block_read(benchmark, sources) -> None:  # type: ignore[no-untyped-def]
    people, events, block = sources
    benchmark.pedantic(lambda: _read(people, events, block), rounds=5, iterations=1)


def test_block_compute(benchmark, sources) -> None:  # type: ignore[no-untyped-def]
    people, events, block = sources
    event_frame, people_frame = _read(people, events, block)
    linked = np.arange(0, PEOPLE, 97, dtype=np.int64)
    result = benchmark.pedantic(
        lambda: pool_pass.block_features(event_frame, people_frame, DEFINITIONS, linked), rounds=5, iterations=1
    )
    assert len(result.pool) > 0
