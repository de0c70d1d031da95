"""jdl against R's MatchIt on the Lalonde data (reference CSVs under tests/reference/matchit/).

The CSVs come from scripts/matchit_reference.R (MatchIt 4.5.1; its nearest-neighbour
matching runs through MatchIt's own general routine nn_matchC because 4.5.1's fast
routine has two upstream-confirmed defects, kosukeimai/MatchIt#159 and #163; see the
script). R is not needed here. Each variant must give the same weights unit by unit,
the same subclass partition, the same effect and the same cluster-robust SE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from jdl.estimation import estimate
from jdl.matching import match
from jdl.matching.result import MatchingResult
from jdl.spec.models import EstimatorSpec, MatchingSpec

REFERENCE = Path(__file__).parent / "reference" / "matchit"
COVARIATES = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]
SCORE = {"link": "logit"}  # MatchIt's default distance: the score itself
LINEAR = {"link": "linear_logit"}  # MatchIt's link = "linear.logit"
STD_CALIPER = {"width": 0.2, "scale": "sd"}  # caliper = 0.2 SDs of the distance (std.caliper)

VARIANTS: dict[str, dict[str, Any]] = {
    "nearest_1to1": {"propensity": SCORE},
    "nearest_replace": {"propensity": SCORE, "replace": True},
    "nearest_caliper": {"propensity": LINEAR, "caliper": STD_CALIPER},
    "nearest_3to1_replace": {"propensity": SCORE, "ratio": 3, "replace": True},
    "nearest_exact_married": {"propensity": SCORE, "exact": ["married"]},
    "nearest_smallest": {"propensity": SCORE, "order": "smallest"},
    "nearest_atc": {"propensity": SCORE, "estimand": "ATC"},
    "nearest_2to1": {"propensity": SCORE, "ratio": 2},
    "nearest_discard_both": {"propensity": SCORE, "discard": "both"},
    "nearest_mahalanobis_caliper": {
        "propensity": LINEAR, "caliper": STD_CALIPER, "mahalanobis": ["age", "educ", "re74", "re75"],
    },
    "nearest_covariate_caliper": {
        "propensity": SCORE,
        "caliper": {"width": 0.25, "scale": "sd"},
        "covariate_calipers": {"age": {"width": 5, "scale": "absolute"}},
    },
    "subclass_att": {"method": "subclass", "propensity": SCORE},
    "subclass_ate": {"method": "subclass", "propensity": SCORE, "estimand": "ATE", "subclasses": 5},
    "exact": {"method": "exact"},
    "cem": {"method": "coarsened_exact"},
    "cem_ate": {"method": "coarsened_exact", "estimand": "ATE"},
}
EXACT_COVARIATES = ["race", "married", "nodegree"]

# MatchIt 4.5.1 breaks one exact Mahalanobis tie by floating-point noise: NSW89 (age 21)
# is as far from PSID383 (age 19) as from PSID407 (age 23), all else equal; jdl takes the
# one first in the data (PSID383), R took PSID407.
MAHALANOBIS_TIE = {"focal": "NSW89", "jdl": "PSID383", "matchit": "PSID407"}


@pytest.fixture(scope="module")
def lalonde() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "lalonde.csv").set_index("id")


@pytest.fixture(scope="module")
def summary() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "summary.csv").set_index("variant")


def _run(lalonde: pd.DataFrame, name: str) -> MatchingResult:
    covariates = EXACT_COVARIATES if name == "exact" else COVARIATES
    return match(lalonde, treatment="treat", covariates=covariates, spec=MatchingSpec(**VARIANTS[name]))


def _reference(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / f"{name}.csv").set_index("id")


def test_lalonde_file_is_matchits_data(lalonde: pd.DataFrame) -> None:
    assert lalonde.shape == (614, 9)
    assert int(lalonde["treat"].sum()) == 185
    assert sorted(lalonde["race"].unique()) == ["black", "hispan", "white"]
    assert lalonde.index.is_unique


def test_logistic_score_agrees_with_glm(lalonde: pd.DataFrame) -> None:
    result = _run(lalonde, "nearest_1to1")
    glm = pd.read_csv(REFERENCE / "glm.csv").set_index("term")["estimate"]
    ours = pd.Series(result.propensity.coefficients)
    assert list(ours.index) == list(glm.index)  # race expanded as model.matrix does
    np.testing.assert_allclose(ours.to_numpy(), glm.to_numpy(), rtol=1e-6)
    reference = _reference("nearest_1to1")["distance"].to_numpy()
    np.testing.assert_allclose(result.units["distance"].to_numpy(), reference, rtol=1e-6, atol=1e-9)
    linear = _reference("nearest_caliper")["distance"].to_numpy()
    np.testing.assert_allclose(
        _run(lalonde, "nearest_caliper").units["distance"].to_numpy(), linear, rtol=1e-6
    )


def _same_partition(ours: pd.Series, theirs: pd.Series) -> bool:
    a = ours.to_numpy(dtype=float, na_value=np.nan)
    b = theirs.to_numpy(dtype=float)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    keep = ~np.isnan(a)
    pairs = pd.DataFrame({"a": a[keep], "b": b[keep]}).drop_duplicates()
    return bool(pairs["a"].is_unique and pairs["b"].is_unique)


@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "nearest_mahalanobis_caliper"])
def test_weights_and_subclasses_agree_unit_by_unit(lalonde: pd.DataFrame, name: str) -> None:
    result = _run(lalonde, name)
    reference = _reference(name)
    assert list(result.units.index) == list(reference.index)
    np.testing.assert_allclose(
        result.units["weight"].to_numpy(), reference["weight"].to_numpy(), rtol=0, atol=1e-9
    )
    if VARIANTS[name].get("replace"):
        assert reference["subclass"].isna().all()  # MatchIt gives no subclasses with replacement
        assert result.pairs.groupby("subclass")["control_row"].count().eq(
            VARIANTS[name].get("ratio", 1)
        ).all()
    else:
        assert _same_partition(result.units["subclass"], reference["subclass"])


@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "nearest_mahalanobis_caliper"])
def test_effect_and_standard_error_agree(
    lalonde: pd.DataFrame, summary: pd.DataFrame, name: str
) -> None:
    """SEs as MatchIt's "Estimating effects" vignette computes them: pair matching clusters by
    pair, matching with replacement by pair and unit (two-way, on get_matches()), and methods
    whose strata are not pairs (subclass, exact, CEM) use HC3 robust SEs."""
    result = _run(lalonde, name)
    fit = estimate(lalonde["re78"].astype(float), result, EstimatorSpec(), kind="continuous")
    row = summary.loc[name]
    assert fit.difference == pytest.approx(row["effect"], rel=1e-6)
    expected_se = row["se_hc3"] if row["stratified"] else row["se_cluster"]
    assert fit.se == pytest.approx(expected_se, rel=1e-6)
    assert int((result.units["weight"] > 0)[result.units["treated"]].sum()) == row["n_treated_matched"]
    assert int((result.units["weight"] > 0)[~result.units["treated"]].sum()) == row["n_control_matched"]


def test_mahalanobis_within_caliper_differs_only_by_an_exact_tie(lalonde: pd.DataFrame) -> None:
    result = _run(lalonde, "nearest_mahalanobis_caliper")
    reference = _reference("nearest_mahalanobis_caliper")
    differs = result.units.index[
        ~np.isclose(result.units["weight"].to_numpy(), reference["weight"].to_numpy(), atol=1e-9)
    ]
    assert sorted(differs) == sorted([MAHALANOBIS_TIE["jdl"], MAHALANOBIS_TIE["matchit"]])
    focal, ours, theirs = (lalonde.loc[MAHALANOBIS_TIE[k], ["age", "educ", "re74", "re75"]]
                           for k in ("focal", "jdl", "matchit"))
    # mirror images: the two candidates are exactly equally far in every covariate
    np.testing.assert_array_equal(np.abs(ours - focal).to_numpy(), np.abs(theirs - focal).to_numpy())
    assert _same_partition(
        result.units["subclass"].drop(list(differs)), reference["subclass"].drop(list(differs))
    )
