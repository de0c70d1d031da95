"""Matching weights and subclasses with MatchIt's conventions."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _make_sum_to_count(weights: np.ndarray, members: np.ndarray) -> None:
    """Rescale weights[members] so they sum to the number of members with weight > 0."""
    total = weights[members].sum()
    if total > 0:
        weights[members] *= np.count_nonzero(weights[members] > 0) / total


def weights_from_pairs(
    n_rows: int, focal: np.ndarray, pair_focal: np.ndarray, pair_control: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """MatchIt's weights from a match matrix, and each pair's weight 1/k.

    A matched focal unit gets 1; a control gets the sum over the focal units it
    was matched to of 1/k (k = that focal unit's number of matches); control
    weights are then rescaled to sum to the number of distinct matched controls.
    """
    matches_per_focal = np.bincount(pair_focal, minlength=n_rows)
    pair_weight = 1.0 / matches_per_focal[pair_focal] if len(pair_focal) else np.empty(0)
    return weights_from_pair_weights(n_rows, focal, pair_focal, pair_control, pair_weight), pair_weight


def weights_from_pair_weights(
    n_rows: int,
    focal: np.ndarray,
    pair_focal: np.ndarray,
    pair_control: np.ndarray,
    pair_weight: np.ndarray,
) -> np.ndarray:
    """Unit weights from pairs whose weights sum to 1 per focal unit (1/k, or kernel shares).

    Matched focal units get 1; a control gets the sum of its pair weights, and
    the controls' weights are rescaled to sum to the number of distinct matched
    controls (MatchIt's convention).
    """
    weights = np.zeros(n_rows)
    np.add.at(weights, pair_control, pair_weight)
    _make_sum_to_count(weights, ~focal)
    weights[np.unique(pair_focal)] = 1.0
    return weights


def subclass_from_pairs(n_rows: int, pair_focal: np.ndarray, pair_control: np.ndarray,
                        *, replace: bool) -> tuple[pd.arrays.IntegerArray, np.ndarray]:
    """Subclass per unit and per pair: matched focal units numbered 1.. in row order.

    Without replacement a control shares its focal unit's subclass (MatchIt's
    mm2subclass). With replacement a control may sit in several subclasses, so,
    as in MatchIt, controls get no subclass; the pairs keep the grouping.
    """
    matched_focal = np.unique(pair_focal)
    number = np.zeros(n_rows, dtype=np.int64)
    number[matched_focal] = np.arange(1, len(matched_focal) + 1)
    pair_subclass = number[pair_focal]
    unit_number = np.zeros(n_rows, dtype=np.int64)
    unit_number[matched_focal] = number[matched_focal]
    if not replace and len(pair_control):
        unit_number[pair_control] = pair_subclass
    return int64_with_missing(unit_number), pair_subclass


def int64_with_missing(values: np.ndarray) -> pd.arrays.IntegerArray:
    """A pandas Int64 array with <NA> where values == 0."""
    return pd.arrays.IntegerArray(values.astype(np.int64), values == 0)


def weights_from_subclass(
    subclass: np.ndarray, treated: np.ndarray, estimand: str
) -> np.ndarray:
    """MatchIt's get_weights_from_subclass; subclass is an int array with 0 for 'none'."""
    weights = np.zeros(len(subclass))
    in_sub = subclass > 0
    i1 = treated & in_sub
    i0 = ~treated & in_sub
    size = int(subclass.max()) + 1 if len(subclass) else 1
    n1 = np.bincount(subclass[i1], minlength=size).astype(float)
    n0 = np.bincount(subclass[i0], minlength=size).astype(float)
    total = n1 + n0
    with np.errstate(divide="ignore", invalid="ignore"):
        if estimand == "ATT":
            weights[i1] = 1.0
            weights[i0] = (n1 / n0)[subclass[i0]]
            _make_sum_to_count(weights, i0)
        elif estimand == "ATC":
            weights[i1] = (n0 / n1)[subclass[i1]]
            weights[i0] = 1.0
            _make_sum_to_count(weights, i1)
        else:
            weights[i1] = (total / n1)[subclass[i1]]
            weights[i0] = (total / n0)[subclass[i0]]
            _make_sum_to_count(weights, i1)
            _make_sum_to_count(weights, i0)
    return np.nan_to_num(weights, nan=0.0, posinf=0.0)


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2 of the units with weight > 0."""
    total = weights.sum()
    squares = np.square(weights).sum()
    return float(total * total / squares) if squares > 0 else 0.0


def unit_effective_sample_size(n: int) -> float:
    """effective_sample_size(np.ones(n)), bit for bit: both sums are n exactly, and n * n / n is
    exact while n * n is below 2**53."""
    if n * n <= 2**53:
        return float(n)
    return effective_sample_size(np.ones(n))


def sample_sizes(treated: np.ndarray, weights: np.ndarray, discarded: np.ndarray) -> pd.DataFrame:
    """MatchIt's sample-size table: All, All (ESS), Matched (ESS), Matched, Unmatched, Discarded."""
    rows = []
    for name, group in (("treatment", treated), ("comparison", ~treated)):
        w = weights[group]
        matched = w > 0
        rows.append({
            "group": name,
            "all": int(group.sum()),
            "all_effective": float(group.sum()),
            "matched_effective": effective_sample_size(w[matched]),
            "matched": int(matched.sum()),
            "unmatched": int((~matched & ~discarded[group]).sum()),
            "discarded": int(discarded[group].sum()),
        })
    return pd.DataFrame(rows)
