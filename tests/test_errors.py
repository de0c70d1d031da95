"""How a user-facing problem is rendered."""

from __future__ import annotations

import numpy as np

from jdl.errors import Problem


def test_numpy_scalars_are_shown_as_plain_values() -> None:
    rendered = Problem("covariate 'x'", "all rows have the same value", value=np.float64(0.0)).render()
    assert rendered == "covariate 'x': all rows have the same value; got 0.0"
    assert "np." not in Problem("row 3", "bad count", value=np.int64(7)).render()
    assert Problem("key", "bad", value="text").render() == "key: bad; got 'text'"
