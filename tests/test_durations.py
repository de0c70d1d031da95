import numpy as np
import pandas as pd
import pytest

from jdl.durations import Duration, _add_months, _add_months_numpy


def test_parse_and_render() -> None:
    assert Duration.parse("1y") == Duration(1, "y")
    assert str(Duration.parse(" 6 m ")) == "6m"
    with pytest.raises(ValueError, match="not a duration"):
        Duration.parse("one year")


def test_calendar_addition_clips_to_month_end() -> None:
    dates = pd.Series(pd.to_datetime(["2016-02-29", "2017-01-31", "2017-08-31", None]))
    years = Duration(1, "y").add_to(dates)
    months = Duration(6, "m").add_to(dates)
    assert list(years[:3]) == list(pd.to_datetime(["2017-02-28", "2018-01-31", "2018-08-31"]))
    assert list(months[:3]) == list(pd.to_datetime(["2016-08-29", "2017-07-31", "2018-02-28"]))
    assert pd.isna(years[3])


def test_scalar_and_series_agree() -> None:
    dates = pd.Series(pd.date_range("2015-01-01", "2017-12-31", freq="7D"))
    for duration in (Duration(1, "y"), Duration(6, "m"), Duration(18, "m"), Duration(30, "d")):
        vectorised = duration.add_to(dates)
        one_by_one = [duration.add_to(d) for d in dates]
        assert list(vectorised) == one_by_one


def test_compiled_month_addition_equals_numpy_calendar_on_every_day() -> None:
    """Every day from 1850 to 2120 (leap days, month ends, centuries) with times of day and NaT, for
    month steps forwards and back, against the numpy formulation."""
    days = pd.date_range("1850-01-01", "2120-12-31", freq="D").as_unit("ns")
    times = pd.to_timedelta(np.resize([0, 1, 43_200_000_000_000, 86_399_999_999_999], len(days)))
    dates = pd.Series(days + times, name="when").mask(np.arange(len(days)) % 997 == 0)
    for months in (-1199, -25, -13, -12, -1, 0, 1, 2, 6, 11, 12, 13, 18, 24, 48, 1200):
        pd.testing.assert_series_equal(_add_months(dates, months), _add_months_numpy(dates, months))
    assert _add_months(pd.Series(pd.to_datetime(["2016-02-29", "2015-01-31"])), 12).tolist() == [
        pd.Timestamp("2017-02-28"), pd.Timestamp("2016-01-31")]


def test_month_addition_near_the_nanosecond_range_takes_numpy_calendar() -> None:
    dates = pd.Series(pd.to_datetime(["1700-03-31", "2016-01-31", None, "2200-12-31"]))
    for months in (-1, 1, 12):
        pd.testing.assert_series_equal(_add_months(dates, months), _add_months_numpy(dates, months))
    # dates far apart: each stepped on its own rather than through a table of the days between
    sparse = pd.Series(pd.to_datetime(["1900-01-31", "2000-02-29", None, "2100-02-28", "1999-12-31 13:00"], format="ISO8601"))
    for months in (-1, 1, 12, 13):
        pd.testing.assert_series_equal(_add_months(sparse, months), _add_months_numpy(sparse, months))
    empty = pd.Series(pd.to_datetime([None, None]))
    pd.testing.assert_series_equal(_add_months(empty, 6), _add_months_numpy(empty, 6))
