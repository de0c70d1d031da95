"""Completed years between dates (age at the index date) by the compiled pass: birthday arithmetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jdl.cohort import whole_years_between


def _dates(values: list[str | None], unit: str) -> pd.Series:
    return pd.Series(pd.to_datetime(values, format="ISO8601")).astype(f"datetime64[{unit}]")


@pytest.mark.parametrize(("earlier_unit", "later_unit"), [("ns", "ns"), ("s", "ns"), ("us", "s")])
def test_known_ages(earlier_unit: str, later_unit: str) -> None:
    born = _dates(["2000-02-29", "2000-02-29", "2000-02-29", "1960-12-31", "1969-12-31 23:00",
                   "1950-06-15", None, "1990-01-01"], earlier_unit)
    on = _dates(["2001-02-28", "2001-03-01", "2004-02-29", "2000-12-30", "1970-12-31",
                 "1950-06-15", "2000-01-01", None], later_unit)
    ages = whole_years_between(born, on)
    assert str(ages.dtype) == "Float64"
    # a leap-day birthday counts on 1 March in common years; the day before a birthday does not
    assert ages.tolist()[:6] == [0.0, 1.0, 4.0, 39.0, 1.0, 0.0]
    assert ages.isna().tolist() == [False] * 6 + [True, True]


def test_agrees_with_the_calendar_fields_over_many_dates() -> None:
    rng = np.random.default_rng(7)
    n = 50_000
    born = pd.Series(pd.Timestamp("1700-01-01") + pd.to_timedelta(rng.integers(0, 150_000, n), "D")
                     + pd.to_timedelta(rng.integers(0, 86_400, n), "s")).astype("datetime64[ns]")
    on = pd.Series(pd.Timestamp("1750-01-01") + pd.to_timedelta(rng.integers(0, 150_000, n), "D"),
                   index=born.index).astype("datetime64[ns]")
    born[rng.random(n) < 0.02] = pd.NaT
    fields = (on.dt.year - born.dt.year) - (
        (on.dt.month < born.dt.month) | ((on.dt.month == born.dt.month) & (on.dt.day < born.dt.day))
    ).astype("Int64")
    pd.testing.assert_series_equal(whole_years_between(born, on), fields.astype("Float64"), check_exact=True)
    assert whole_years_between(born.iloc[:0], on.iloc[:0]).empty
