"""The result of matching: per-unit weights and subclasses, the pairs, and balance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from jdl.matching.propensity import PropensityResult

UNIT_COLUMNS = ["treated", "propensity_score", "distance", "weight", "subclass", "matched", "discarded"]
PAIR_COLUMNS = ["treated_row", "control_row", "subclass", "treated_weight", "control_weight"]


@dataclass(frozen=True)
class DiscardCounts:
    """Units lost before or during matching, by reason.

    The focal group is the one that chooses matches: the treated for the ATT,
    the controls for the ATC.
    """

    treated_outside_support: int = 0  # discard = "treated" / "both"
    control_outside_support: int = 0  # discard = "control" / "both"
    focal_no_exact_stratum: int = 0  # no eligible comparison unit shares its exact-matching values
    focal_no_match: int = 0  # no available comparison unit within the caliper (or pool used up)


@dataclass(frozen=True)
class MatchingResult:
    """Matched sample with MatchIt's conventions.

    units: same index as the input frame; columns treated (bool), propensity_score, distance,
      weight (0 when unmatched), subclass (Int64, <NA> when unmatched, and for
      controls when matching with replacement), matched, discarded.
    pairs: one row per matched (focal, match) pair, as MatchIt's get_matches():
      treated_row and control_row are row positions in the input frame; the
      non-focal unit's weight is 1/k for a focal unit with k matches (the focal
      unit's is 1). Empty for stratification methods (exact, subclass).
    balance: see jdl.matching.balance.balance_table.
    """

    units: pd.DataFrame = field(repr=False)
    pairs: pd.DataFrame = field(repr=False)
    balance: pd.DataFrame = field(repr=False)
    method: str
    estimand: str
    parameters: dict[str, Any]
    propensity: PropensityResult = field(repr=False)
    caliper_absolute: float | None
    n_treated: int
    n_treated_matched: int
    n_control: int
    n_control_matched: int
    effective_sample_size_control: float
    discarded: DiscardCounts
    replace: bool = False  # comparison units may serve several focal units (pairs carry the weights)
    sample_sizes: pd.DataFrame | None = field(default=None, repr=False)  # see weights.sample_sizes
