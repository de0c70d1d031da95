import pandas as pd
import pytest

from jdl.durations import Duration


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
