"""Durations written in specs as `<n><unit>` (e.g. `1y`, `6m`, `2w`, `30d`).

Years and months are calendar offsets, so "one year after 29 Feb" is 28 Feb the
next year, as a person counting on a calendar would say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jdl.compiled import NAT, helper, kernel

_PATTERN = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$")
UNITS = {"d": "days", "w": "weeks", "m": "months", "y": "years"}


@dataclass(frozen=True, order=True)
class Duration:
    amount: int
    unit: str  # one of d, w, m, y

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _PATTERN.match(str(text))
        if not match:
            raise ValueError(
                f"{text!r} is not a duration; write a whole number and a unit "
                "d (days), w (weeks), m (months) or y (years), e.g. 1y or 6m"
            )
        return cls(int(match.group(1)), match.group(2))

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    def offset(self) -> pd.DateOffset:
        return pd.DateOffset(**{UNITS[self.unit]: self.amount})

    def add_to(self, dates: pd.Series | pd.Timestamp) -> pd.Series | pd.Timestamp:
        """Add this duration to dates (calendar-aware for months and years)."""
        if self.unit == "d":
            return dates + pd.Timedelta(days=self.amount)
        if self.unit == "w":
            return dates + pd.Timedelta(weeks=self.amount)
        if isinstance(dates, pd.Series):
            return _add_months(dates, self.amount * (12 if self.unit == "y" else 1))
        return dates + self.offset()

    def approx_days(self) -> float:
        per_unit = {"d": 1.0, "w": 7.0, "m": 365.25 / 12, "y": 365.25}
        return self.amount * per_unit[self.unit]


def _add_months(dates: pd.Series, months: int) -> pd.Series:
    """Vectorised calendar month addition, clipping to the month's last day (a time of day is dropped)."""
    values = dates.to_numpy(dtype="datetime64[ns]").view(np.int64)
    present = values[values != NAT]
    # the compiled loop's int64 nanoseconds hold years 1678-2262; near those ends numpy's calendar decides
    if len(present) and (present.min() < _SAFE_LOW or present.max() > _SAFE_HIGH or abs(months) > 12 * 100):
        return _add_months_numpy(dates, months)
    result = _add_months_ns(values, months)
    return pd.Series(result.view("datetime64[ns]"), index=dates.index, name=dates.name)


_SAFE_LOW = int(np.datetime64("1800-01-01", "ns").view(np.int64))
_SAFE_HIGH = int(np.datetime64("2150-01-01", "ns").view(np.int64))
_DAY_NS = 86_400_000_000_000


@helper
def civil_from_days(days: int) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """(year, month, day) of a day number (days since 1970-01-01), proleptic Gregorian (H. Hinnant's
    civil_from_days; `//` floors, so the era needs no correction for negative day numbers)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


@helper
def _month_step(days: int, months: int) -> int:  # pragma: no cover - compiled
    """A day number (days since 1970-01-01) `months` calendar months on, clipped to the month's last day,
    in the proleptic Gregorian calendar (H. Hinnant's civil_from_days and days_from_civil)."""
    year, month, day = civil_from_days(days)
    total = year * 12 + (month - 1) + months
    year = total // 12
    month = total - year * 12 + 1
    leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
    if month == 2:
        length = 29 if leap else 28
    elif month == 4 or month == 6 or month == 9 or month == 11:
        length = 30
    else:
        length = 31
    day = min(day, length)
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    mp = month - 3 if month > 2 else month + 9
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@kernel
def _add_months_ns(values: np.ndarray, months: int) -> np.ndarray:  # pragma: no cover - compiled
    """`_add_months_numpy` on int64 nanoseconds (NaT stays NaT); dates of a table span few days, so each
    day of their range is stepped once and looked up."""
    out = np.empty(len(values), dtype=np.int64)
    days = np.empty(len(values), dtype=np.int64)
    low = high = NAT
    for i in range(len(values)):
        if values[i] != NAT:
            days[i] = values[i] // _DAY_NS
            if low == NAT or days[i] < low:
                low = days[i]
            if high == NAT or days[i] > high:
                high = days[i]
    if low == NAT:
        out[:] = NAT
        return out
    span = high - low + 1
    if span <= len(values):
        stepped = np.empty(span, dtype=np.int64)
        for d in range(span):
            stepped[d] = _month_step(low + d, months) * _DAY_NS
        for i in range(len(values)):
            out[i] = NAT if values[i] == NAT else stepped[days[i] - low]
    else:
        for i in range(len(values)):
            out[i] = NAT if values[i] == NAT else _month_step(days[i], months) * _DAY_NS
    return out


def _add_months_numpy(dates: pd.Series, months: int) -> pd.Series:
    """Vectorised calendar month addition, clipping to the month's last day (numpy's calendar)."""
    values = dates.to_numpy(dtype="datetime64[D]")
    month_index = values.astype("datetime64[M]")
    day_offset = (values - month_index.astype("datetime64[D]")).astype(np.int64)
    target_month = month_index + np.timedelta64(months, "M")
    next_month = target_month + np.timedelta64(1, "M")
    month_length = (next_month.astype("datetime64[D]") - target_month.astype("datetime64[D]")).astype(
        np.int64
    )
    clipped = np.minimum(day_offset, month_length - 1)
    result = target_month.astype("datetime64[D]") + clipped.astype("timedelta64[D]")
    out = pd.Series(result.astype("datetime64[ns]"), index=dates.index, name=dates.name)
    return out.where(dates.notna())
