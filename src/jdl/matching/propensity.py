"""Propensity score models: P(treated | covariates)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
from scipy.special import logit

from jdl.errors import JdlUserError
from jdl.registry import Registry
from jdl.spec.models import PropensitySpec

INTERCEPT = "(Intercept)"


@dataclass(frozen=True)
class PropensityResult:
    """A fitted (or given) propensity score for every unit, in the order of the input rows."""

    score: np.ndarray = field(repr=False)
    linear_predictor: np.ndarray = field(repr=False)
    model: str
    parameters: dict[str, Any]
    coefficients: dict[str, float]
    converged: bool


PropensityModel = Callable[[pd.DataFrame, np.ndarray, PropensitySpec, int], PropensityResult]

PROPENSITY_MODELS: Registry[PropensityModel] = Registry(
    "propensity model", "matching.propensity.model"
)


def _as_treated_array(treated: np.ndarray | pd.Series) -> np.ndarray:
    values = np.asarray(treated)
    if values.dtype == bool:
        return values
    if not np.isin(values, [0, 1]).all():
        raise JdlUserError.single(
            "treatment",
            "the treatment indicator must be boolean or 0/1",
            value=sorted(set(np.unique(values).tolist()) - {0, 1})[:5],
            allowed="True/False or 0/1",
        )
    return values.astype(bool)


def r_linear_predictor(design: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """X @ beta accumulated column by column, as R's reference BLAS does for glm.

    The same order of additions as R keeps tied rows tied and near-ties in the
    same order, which nearest-neighbour tie-breaking depends on.
    """
    total = np.zeros(design.shape[0])
    for j, coefficient in enumerate(coefficients):
        total += design[:, j] * coefficient
    return total


def r_logit_inverse(eta: np.ndarray) -> np.ndarray:
    """R's binomial()$linkinv: exp(eta) / (1 + exp(eta)), eta clamped at +-30 as R does."""
    eps = np.finfo(float).eps
    tmp = np.where(eta < -30, eps, np.where(eta > 30, 1 / eps, np.exp(np.clip(eta, -30, 30))))
    return tmp / (1 + tmp)


def _is_zero_one(y: np.ndarray) -> bool:
    return bool(((y == 0.0) | (y == 1.0)).all())


DEVIANCE_TOLERANCE = 1e-12
MAX_ITERATIONS = 50


def _binomial_deviance(y: np.ndarray, mu: np.ndarray) -> float:
    if y.dtype == np.float64 and _is_zero_one(y):
        # y is 0 or 1: y * log(y / mu) is log(1 / mu) for y = 1 and (1 - y) * log((1 - y) / (1 - mu)) is
        # log(1 / (1 - mu)) for y = 0, bit for bit (multiplying by 1.0 and 1.0 - 0.0 are exact)
        with np.errstate(divide="ignore"):
            terms = np.where(y > 0, np.log(1.0 / mu), np.log(1.0 / (1.0 - mu)))
        return float(2 * terms.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(y > 0, y * np.log(y / mu), 0.0) + np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
    return float(2 * terms.sum())


ROWS_PER_THREAD = 250_000


def _scale_rows(matrix: np.ndarray, factors: np.ndarray, out: np.ndarray) -> None:
    """out = matrix * factors[:, None], in row bands on two threads (numpy releases the GIL).

    Each element is one multiplication either way, so the result is the same bit for bit.
    """
    rows = matrix.shape[0]
    if rows < 2 * ROWS_PER_THREAD:
        np.multiply(matrix, factors[:, None], out=out)
        return
    half = rows // 2

    def band(start: int, stop: int) -> None:
        np.multiply(matrix[start:stop], factors[start:stop, None], out=out[start:stop])

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(band, 0, half), pool.submit(band, half, rows)]:
            future.result()


def irls_logistic(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """Maximum-likelihood logistic coefficients by IRLS, as R's glm.fit, on normal equations.

    R solves each weighted least-squares step by QR; solving the normal equations
    (X'WX) b = X'Wz by Cholesky reaches the same maximum, and costs one pass over
    the rows per iteration, which matters for comparison pools of millions. The
    columns are centred and scaled first so that X'WX stays well conditioned.
    Iterations stop when the deviance changes by less than 1e-12 relative (R's
    glm stops at 1e-8), so the coefficients agree with R to its own precision.
    """
    centre = design[:, 1:].mean(axis=0)
    scale = design[:, 1:].std(axis=0)
    scale[scale == 0] = 1.0
    standard = np.empty_like(design)
    standard[:, 0] = 1.0
    # in place: the same subtraction and division per element, without two n x p temporaries
    np.subtract(design[:, 1:], centre, out=standard[:, 1:])
    np.divide(standard[:, 1:], scale, out=standard[:, 1:])
    mu = (y + 0.5) / 2.0  # R's binomial mustart with unit weights
    eta = np.log(mu / (1 - mu))
    deviance_old = _binomial_deviance(y, mu)
    beta = np.zeros(design.shape[1])
    converged = False
    iterations = 0
    weighted = np.empty_like(standard)  # reused: a fresh n x p array each iteration costs page faults
    while iterations < MAX_ITERATIONS:
        iterations += 1
        variance = mu * (1 - mu)
        working = eta + (y - mu) / variance
        _scale_rows(standard, variance, weighted)
        gram = standard.T @ weighted
        rhs = weighted.T @ working
        factor = scipy.linalg.cho_factor(gram, check_finite=False)
        beta = scipy.linalg.cho_solve(factor, rhs, check_finite=False)
        eta = standard @ beta
        mu = r_logit_inverse(eta)
        deviance = _binomial_deviance(y, mu)
        if abs(deviance - deviance_old) / (abs(deviance) + 0.1) < DEVIANCE_TOLERANCE:
            converged = True
            break
        deviance_old = deviance
    coefficients = np.empty_like(beta)
    coefficients[1:] = beta[1:] / scale
    coefficients[0] = beta[0] - float(np.dot(coefficients[1:], centre))
    return coefficients, iterations, converged


def fit_logistic(
    X: pd.DataFrame, treated: np.ndarray, spec: PropensitySpec, seed: int
) -> PropensityResult:
    """Unpenalised maximum-likelihood logistic regression with an intercept, fitted by IRLS.

    The same algorithm as R's glm(family = binomial), so coefficients and scores
    agree with MatchIt's default distance (tests compare with R's output).
    """
    del seed  # deterministic
    y = _as_treated_array(treated).astype(float)
    design = np.column_stack([np.ones(len(X)), X.to_numpy(dtype=float)])
    names = [INTERCEPT, *map(str, X.columns)]
    try:
        coefficients, iterations, converged = irls_logistic(design, y)
    except np.linalg.LinAlgError:
        raise JdlUserError.single(
            "matching.propensity", "the propensity model cannot be fitted: some covariates are collinear",
            hint="remove a covariate that is a combination of others (e.g. a dummy of every level)",
        ) from None
    linear_predictor = r_linear_predictor(design, coefficients)
    score = r_logit_inverse(linear_predictor)
    separation = bool(((score < 1e-8) | (score > 1 - 1e-8)).any())
    return PropensityResult(
        score=score,
        linear_predictor=linear_predictor,
        model="logistic",
        parameters={
            "family": "binomial",
            "link": "logit",
            "fit": "IRLS (normal equations, Cholesky)",
            "tolerance": DEVIANCE_TOLERANCE,
            "iterations": iterations,
            "perfect_separation_warning": separation,
        },
        coefficients=dict(zip(names, map(float, coefficients), strict=True)),
        converged=converged,
    )


PROPENSITY_MODELS.register("logistic", fit_logistic)


def _causalml_model(name: str, factory: Callable[[int], Any], X: pd.DataFrame, treated: np.ndarray,
                    seed: int, parameters: dict[str, Any]) -> PropensityResult:
    """Fit one of causalml's propensity models (isotonic-calibrated, clipped to [0.001, 0.999])."""
    model = factory(seed)
    features = X.to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = model.fit_predict(features, treated.astype(int))
    # XGBoost returns float32, whose clipped 0.999 is 0.99900001: clip again in float64
    score = np.clip(np.asarray(raw, dtype=float), 0.001, 0.999)
    return PropensityResult(
        score=score,
        linear_predictor=logit(score),
        model=name,
        parameters={**parameters, "clip_bounds": [0.001, 0.999], "calibrated": "isotonic",
                    "seed": seed, "library": "causalml.propensity"},
        coefficients={},
        converged=True,
    )


def fit_elastic_net(
    X: pd.DataFrame, treated: np.ndarray, spec: PropensitySpec, seed: int
) -> PropensityResult:
    """causalml's ElasticNetPropensityModel (cross-validated penalised logistic regression)."""
    from causalml.propensity import ElasticNetPropensityModel

    return _causalml_model(
        "elastic_net", lambda s: ElasticNetPropensityModel(random_state=s), X, treated, seed,
        {"class": "ElasticNetPropensityModel"},
    )


def fit_gradient_boosted(
    X: pd.DataFrame, treated: np.ndarray, spec: PropensitySpec, seed: int
) -> PropensityResult:
    """causalml's GradientBoostedPropensityModel (LightGBM/XGBoost-style boosted trees)."""
    from causalml.propensity import GradientBoostedPropensityModel

    return _causalml_model(
        "gradient_boosted", lambda s: GradientBoostedPropensityModel(random_state=s), X, treated, seed,
        {"class": "GradientBoostedPropensityModel"},
    )


PROPENSITY_MODELS.register("elastic_net", fit_elastic_net)
PROPENSITY_MODELS.register("gradient_boosted", fit_gradient_boosted)


def fit_propensity(
    X: pd.DataFrame, treated: np.ndarray, spec: PropensitySpec, seed: int
) -> PropensityResult:
    """Fit the propensity model the spec names (default logistic) on a design matrix."""
    if spec.column is not None:
        raise JdlUserError.single(
            "matching.propensity",
            "a score column is given, so there is no model to fit",
            value=spec.column,
            hint="pass the column's values to propensity_from_column",
        )
    treated_bool = _as_treated_array(treated)
    if treated_bool.all() or not treated_bool.any():
        raise JdlUserError.single(
            "treatment",
            "the data need both treated and comparison units to fit a propensity score",
            value=f"{int(treated_bool.sum())} treated of {len(treated_bool)}",
        )
    return PROPENSITY_MODELS[spec.model_name](X, treated_bool, spec, seed)


def propensity_from_column(
    scores: np.ndarray | pd.Series, *, column: str = "score"
) -> PropensityResult:
    """Use a score already in the data; it must be a probability strictly between 0 and 1."""
    values = np.asarray(scores, dtype=float)
    missing = int(np.isnan(values).sum())
    if missing:
        raise JdlUserError.single(
            f"matching.propensity.column {column!r}",
            f"{missing} of {len(values)} rows have no score",
        )
    outside = int(((values <= 0) | (values >= 1)).sum())
    if outside:
        raise JdlUserError.single(
            f"matching.propensity.column {column!r}",
            f"{outside} of {len(values)} scores are not strictly between 0 and 1",
            allowed="probabilities in (0, 1)",
        )
    return PropensityResult(
        score=values,
        linear_predictor=logit(values),
        model="column",
        parameters={"column": column},
        coefficients={},
        converged=True,
    )
