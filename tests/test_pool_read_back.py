"""The pool's table as a warm run reads it back, without the round trip when nothing would change."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jdl.engine.records import as_read_back
from jdl.sources.cache import frame_from_arrow, frame_to_arrow


def _round_trip(frame: pd.DataFrame) -> pd.DataFrame:
    return frame_from_arrow(frame_to_arrow(frame))


def test_a_frame_of_read_back_dtypes_is_kept_as_it_is() -> None:
    frame = pd.DataFrame({
        "person_id": np.array([3, 5, 9], dtype=np.int64),
        "index_date": pd.to_datetime(["2020-01-02", None, "2020-03-04"]).astype("datetime64[ns]"),
        "region": pd.array(["North", None, "South"], dtype="string"),
        "score": [0.5, np.nan, -0.0],
    }, index=[7, 8, 9])
    kept = as_read_back(frame)
    pd.testing.assert_frame_equal(kept, _round_trip(frame), check_exact=True)
    assert np.shares_memory(kept["score"].to_numpy(), frame["score"].to_numpy())  # not converted


def test_other_dtypes_take_the_round_trip() -> None:
    frame = pd.DataFrame({"person_id": np.array([1, 2], dtype=np.int32), "group": pd.Categorical(["a", "b"]),
                          "text": pd.Series(["x", None], dtype=object)})
    read_back = as_read_back(frame)
    pd.testing.assert_frame_equal(read_back, _round_trip(frame), check_exact=True)
    assert read_back.dtypes.equals(_round_trip(frame).dtypes)
