"""The matching frame assembled in one gather per column equals concatenating and sorting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jdl.engine.records import units_frame


def _reference(treated_part: pd.DataFrame, pool_table: pd.DataFrame, eligible: np.ndarray,
               feature_columns: list[str]) -> pd.DataFrame:
    # the steps units_frame replaces (records.py before it)
    pool = pool_table.loc[eligible, ["person_id", "index_date", *feature_columns]].reset_index(drop=True)
    pool_part = pool.assign(treated=False)
    units = pd.concat([part for part in (treated_part, pool_part) if len(part)] or [treated_part],
                      ignore_index=True)
    units = units.sort_values("person_id", kind="mergesort").reset_index(drop=True)
    return pd.concat([units[["person_id", "treated", "index_date"]].assign(unit_id=units["person_id"]),
                      units[feature_columns]], axis=1)


def _tables(rng: np.random.Generator, treated_rows: int, pool_rows: int,
            count_dtype: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    ids = rng.permutation(np.arange(1, 10 * (treated_rows + pool_rows) + 2))[: treated_rows + pool_rows]
    treated_ids, pool_ids = np.sort(ids[:treated_rows]), np.sort(ids[treated_rows:])

    def features(n: int, counts: str) -> dict[str, object]:
        return {
            "age": rng.normal(30, 5, n),
            "sex": pd.array(rng.choice(["M", "F", None], n), dtype="string"),
            "prior": rng.integers(0, 9, n).astype(counts),
            "rate": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
        }

    pool_table = pd.DataFrame({
        "person_id": pool_ids,
        "index_date": pd.to_datetime("2017-01-01") + pd.to_timedelta(rng.integers(0, 900, pool_rows), unit="D"),
        "date_of_birth": pd.to_datetime("1980-01-01") + pd.to_timedelta(rng.integers(0, 9000, pool_rows), unit="D"),
        "region": pd.array(rng.choice(["Wales", "London"], pool_rows), dtype="string"),
        **features(pool_rows, "float64"),
    })
    treated_part = pd.DataFrame({
        "person_id": treated_ids,
        "index_date": pd.to_datetime("2017-01-01") + pd.to_timedelta(rng.integers(0, 900, treated_rows), unit="D"),
        "treated": True,
        **features(treated_rows, count_dtype),
    })
    return treated_part, pool_table, ["age", "sex", "prior", "rate"]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("count_dtype", ["float64", "int64"])  # int64: a dtype the concatenation reconciles
@pytest.mark.parametrize(("treated_rows", "pool_rows"), [(40, 500), (0, 50), (7, 0), (3, 4)])
def test_units_frame_equals_concatenating_and_sorting(seed: int, count_dtype: str, treated_rows: int,
                                                      pool_rows: int) -> None:
    rng = np.random.default_rng(seed)
    treated_part, pool_table, features = _tables(rng, treated_rows, pool_rows, count_dtype)
    eligible = rng.random(len(pool_table)) < 0.7
    got = units_frame(treated_part, pool_table, np.flatnonzero(eligible), features)
    expected = _reference(treated_part, pool_table, eligible, features)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got["person_id"].is_monotonic_increasing
    assert int(got["treated"].sum()) == treated_rows
