"""Durations written in specs as `<n><unit>` (e.g. `1y`, `6m`, `2w`, `30d`).

Years and months are calendar offsets, so "one year after 29 Feb" is 28 Feb the
next year, as a person counting on a calendar would say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

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
    """Vectorised calendar month addition, clipping to the month's last day."""
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
