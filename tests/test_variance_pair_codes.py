"""Two-way cluster codes without tuples: the numbering of a MultiIndex's factorize."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jdl.estimation.variance import pair_codes, weighted_regression


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pair_codes_number_pairs_as_a_multiindex_does(seed: int) -> None:
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 50, 5_000)
    second = rng.integers(1_000, 1_030, 5_000).astype(float)
    expected = pd.MultiIndex.from_arrays([first, second]).factorize()[0]
    np.testing.assert_array_equal(pair_codes(first, second), expected)


def test_two_way_clustered_regression_is_unchanged_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    import jdl.estimation.variance as variance

    rng = np.random.default_rng(7)
    n = 2_000
    X = np.column_stack([np.ones(n), rng.random(n) < 0.3, rng.normal(size=n)])
    y = (rng.random(n) < 0.4).astype(float)
    w = rng.uniform(0.5, 2.0, n)
    clusters = [rng.integers(0, 300, n), rng.integers(0, 200, n)]
    fit = weighted_regression(y, X, w, clusters)
    monkeypatch.setattr(variance, "pair_codes",
                        lambda a, b: pd.MultiIndex.from_arrays([a, b]).factorize()[0])
    before = weighted_regression(y, X, w, clusters)
    assert fit.vcov.tobytes() == before.vcov.tobytes()
    assert fit.clusters == (len(np.unique(clusters[0])), len(np.unique(clusters[1])))
