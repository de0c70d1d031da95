"""Reading the linkage candidates from the people table, one fragment at a time.

A people row is a candidate when it is valid and shares a PNC ID or a (date of
birth, sex) block with some cohort row. For typed Parquet both tests run in
Arrow on the fragment's key columns (a distinct value at a time for sex), so
only the candidates (about a fifth of the people at national scale) are
converted to pandas; their comparison keys are computed where they are read,
in parallel, rather than after all parts are brought together.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from jdl import linkage as linkage_stage
from jdl.linkage.candidates import wanted_block_codes
from jdl.linkage.normalise import (
    MISSING_DAYS,
    block_codes,
    needs_compacting,
    normalise_coded_names,
    pnc_text_in_keys,
    pnc_text_match_keys,
    sex_codes,
)
from jdl.sources import national
from jdl.sources.layout import Fragment

PEOPLE_LINK_COLUMNS = ["person_id", "pnc_id", "forename", "surname", "date_of_birth", "sex"]
# the columns that decide whether a row is a candidate, and its reject reason
LINK_KEY_COLUMNS = ["person_id", "pnc_id", "date_of_birth", "sex"]
# read as dictionaries: each distinct name is trimmed and normalised once
NAME_COLUMNS = ["forename", "surname"]


def candidate_keys_of(source: national.TableSource, fragment: Fragment,
                      keys: linkage_stage.CandidateKeys) -> pd.DataFrame:
    """The comparison keys (`linkage.people_keys`) of one people fragment's candidates, in file order."""
    if fragment.fmt == "parquet":
        table = source.read_arrow(fragment, PEOPLE_LINK_COLUMNS, [*NAME_COLUMNS, "sex"])
        if _keys_in_arrow(table):
            chosen = table.filter(pa.array(_candidate_rows(table.select(LINK_KEY_COLUMNS), keys)))
            return _arrow_keys(chosen)
    return linkage_stage.people_keys(candidates_of(source, fragment, keys))


def _keys_in_arrow(table: pa.Table) -> bool:
    """Whether the keys can be computed from the columns as stored (typed Parquet as jdl writes it)."""
    def text(kind: pa.DataType) -> bool:
        return pa.types.is_string(kind) or pa.types.is_large_string(kind)

    def coded_text(kind: pa.DataType) -> bool:
        return pa.types.is_dictionary(kind) and text(kind.value_type)

    schema = table.schema
    return (pa.types.is_integer(schema.field("person_id").type) and pa.types.is_date32(schema.field("date_of_birth").type)
            and text(schema.field("pnc_id").type) and (text(schema.field("sex").type) or coded_text(schema.field("sex").type))
            and all(coded_text(schema.field(name).type) for name in NAME_COLUMNS))


def _arrow_keys(chosen: pa.Table) -> pd.DataFrame:
    """`people_keys` of valid rows, from the columns as stored: what normalising them first gives."""
    births = chosen.column("date_of_birth")
    positions, values = national.category_lookup(chosen.column("sex"), national.PEOPLE, "sex")
    sexes = sex_codes(pd.Series([*values, None], dtype="string"))[positions]
    names = {}
    for column in NAME_COLUMNS:
        name_positions, distinct = national.text_lookup(chosen.column(column))
        names[column] = normalise_coded_names(name_positions, distinct)
    return linkage_stage.people_keys_of(
        pc.cast(chosen.column("person_id"), pa.int64()).to_numpy(),
        pnc_text_match_keys(national.trimmed_text(chosen.column("pnc_id"))),
        pc.cast(births, pa.int32()).to_numpy().astype(np.int64),
        sexes, names["forename"], names["surname"],
    )


def candidates_of(source: national.TableSource, fragment: Fragment,
                  keys: linkage_stage.CandidateKeys) -> pd.DataFrame:
    """The valid people rows of one fragment that could link (PEOPLE_LINK_COLUMNS, normalised)."""
    return source.read_fragment_selected(fragment, PEOPLE_LINK_COLUMNS, LINK_KEY_COLUMNS,
                                         lambda part: _candidate_rows(part, keys), arrow_select=True)


def _candidate_rows(part: pa.Table | pd.DataFrame, keys: linkage_stage.CandidateKeys) -> np.ndarray:
    """Valid rows sharing a PNC ID or a (date of birth, sex) block (an Arrow table, or a normalised frame)."""
    if isinstance(part, pd.DataFrame):
        return (part[national.REJECT_COLUMN].isna().to_numpy(dtype=bool)
                & linkage_stage.candidate_mask(part, keys))
    if not pa.types.is_date32(part.column("date_of_birth").type):
        normalised = national.normalise_table(part, national.PEOPLE, LINK_KEY_COLUMNS)
        return _candidate_rows(normalised, keys)
    keep = ~national.rejected_rows(part, national.PEOPLE, LINK_KEY_COLUMNS)
    found = np.zeros(part.num_rows, dtype=bool)
    if keys.pnc_ids:
        found |= _pnc_rows(part.column("pnc_id"), keys.pnc_ids)
    if keys.blocks:
        found |= np.isin(_block_codes(part), wanted_block_codes(keys))
    return keep & found


def _pnc_rows(column: pa.ChunkedArray, pnc_ids: frozenset[str]) -> np.ndarray:
    """Rows whose PNC ID, as the normalised frame has it (trimmed text), has a key in `pnc_ids`."""
    if column.type != pa.string():
        return pnc_text_in_keys(national.trimmed_text(column), pnc_ids)
    # trimming removes only characters that need compacting: rows without them are the same trimmed
    compacting = needs_compacting(column)
    where = np.flatnonzero(compacting)
    if not len(where):
        return pnc_text_in_keys(column, pnc_ids, compacting)
    text = national.trimmed_text(column)
    compacting[where] = needs_compacting(pc.take(text, pa.array(where)))
    return pnc_text_in_keys(text, pnc_ids, compacting)


def _block_codes(part: pa.Table) -> np.ndarray:
    """(date of birth, sex) block of each row, as `linkage.candidate_mask` computes it from the frame."""
    births = part.column("date_of_birth")
    days = pc.fill_null(births.cast(pa.int32()), 0).to_numpy().astype(np.int64)
    if births.null_count:
        days[births.is_null().to_numpy(zero_copy_only=False)] = MISSING_DAYS
    positions, values = national.category_lookup(part.column("sex"), national.PEOPLE, "sex")
    per_value = sex_codes(pd.Series([*values, None], dtype="string"))  # the last: missing cells
    return block_codes(days, per_value[positions])


__all__ = ["LINK_KEY_COLUMNS", "PEOPLE_LINK_COLUMNS", "candidate_keys_of", "candidates_of"]
