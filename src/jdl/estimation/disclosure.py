"""Statistical disclosure control of one measure (DESIGN.md §1), as a pure function.

Rules:
- a proportion (binary sub-measure) is suppressed when n×p < 10 or n×(1-p) < 10
  in either group (n: people with the outcome and weight > 0; p: the group's
  rate), i.e. when fewer than 10 people, or all but fewer than 10, had it;
- a measure defined on reoffenders only (days to first reoffence, and the
  time-to-first-reoffence curve) is hidden when fewer than 30 treated people
  reoffended.
Values are never rounded or removed here: the measure comes back with
`suppressed`, `suppression_reason` and `suppression_rules` set and its unrounded
numbers intact (results.json keeps them; the report publishes rounded values
of unsuppressed measures only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MIN_EXPECTED_COUNT = 10
MIN_TREATED_REOFFENDERS = 30
REOFFENDER_MEASURES = ("days_to_first_reoffence",)


def _counts_too_small(n: float, p: float) -> bool:
    return n * p < MIN_EXPECTED_COUNT or n * (1 - p) < MIN_EXPECTED_COUNT


def reoffender_measures_publishable(treated_reoffenders: int) -> bool:
    """Whether measures of reoffenders only (and the survival curve) may be published."""
    return treated_reoffenders >= MIN_TREATED_REOFFENDERS


def apply_disclosure(
    measure: Mapping[str, Any],
    *,
    treated_reoffenders: int | None,
    name: str | None = None,
) -> dict[str, Any]:
    """A copy of `measure` with suppression marked.

    `measure` needs kind, treatment, comparison, n_treatment, n_comparison and
    either population ("reoffenders" for measures of reoffenders only) or a
    measure `name` starting with one of REOFFENDER_MEASURES.
    """
    out = dict(measure)
    reasons: list[str] = []
    on_reoffenders = measure.get("population") == "reoffenders" or (
        name is not None and name.startswith(REOFFENDER_MEASURES)
    )
    # None: no notion of reoffenders (table mode), so only the n×p rule applies
    if on_reoffenders and treated_reoffenders is not None and not reoffender_measures_publishable(
        treated_reoffenders
    ):
        reasons.append(
            f"fewer than {MIN_TREATED_REOFFENDERS} people in the treatment group reoffended "
            f"({treated_reoffenders})"
        )
    if measure.get("kind") == "binary":
        small = [
            group for group, n_key in (("treatment", "n_treatment"), ("comparison", "n_comparison"))
            if _counts_too_small(float(measure[n_key]), float(measure[group]))
        ]
        if small:
            reasons.append(
                f"too few people (n×p < {MIN_EXPECTED_COUNT}) in the {' and '.join(small)} group"
                + ("s" if len(small) > 1 else "")
                + " to publish this measure"
            )
    out["suppressed"] = bool(reasons)
    out["suppression_reason"] = "; ".join(reasons) if reasons else None
    out["suppression_rules"] = {
        "min_expected_count": MIN_EXPECTED_COUNT,
        "min_treated_reoffenders": MIN_TREATED_REOFFENDERS,
    }
    return out
