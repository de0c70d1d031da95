"""combine: the blocks' pool tables as one, sorted by person_id, whatever order the blocks come in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jdl.engine import pool as pool_pass


def _result(ids: list[int], seed: int) -> pool_pass.BlockResult:
    rng = np.random.default_rng(seed)
    pool = pd.DataFrame({"person_id": np.array(ids, dtype=np.int64), "value": rng.random(len(ids)),
                         "group": pd.array([f"g{i % 3}" for i in ids], dtype="string")})
    empty = pd.DataFrame({"person_id": pd.array([], dtype="int64")})
    return pool_pass.BlockResult(
        pool=pool, linked_events=empty.assign(offence_date=pd.Series([], dtype="datetime64[ns]"),
                                              outcome_date=pd.Series([], dtype="datetime64[ns]")),
        linked_people=empty, event_rejects=empty.assign(reason=pd.Series([], dtype="string")), records_end=None,
    )


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1]])
def test_combined_pool_is_the_sorted_stack_of_the_blocks(order: list[int]) -> None:
    blocks = [_result([1, 4, 9], 1), _result([10, 12], 2), _result([20, 21, 30, 31], 3)]
    combined = pool_pass.combine([blocks[i] for i in order])
    expected = pd.concat([b.pool for b in blocks], ignore_index=True)
    pd.testing.assert_frame_equal(combined.pool, expected, check_exact=True)
    assert combined.pool["person_id"].tolist() == [1, 4, 9, 10, 12, 20, 21, 30, 31]
    assert isinstance(combined.pool.index, pd.RangeIndex)
