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
from threadpoolctl import threadpool_limits

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


def _linear_predictor_with_intercept(covariates: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """r_linear_predictor of [1, covariates]: the intercept's 1.0 * b0 is b0 exactly."""
    total = np.zeros(covariates.shape[0])
    total += coefficients[0]
    for j, coefficient in enumerate(coefficients[1:]):
        total += covariates[:, j] * coefficient
    return total


def r_logit_inverse(eta: np.ndarray) -> np.ndarray:
    """R's binomial()$linkinv: exp(eta) / (1 + exp(eta)), eta clamped at +-30 as R does."""
    eps = np.finfo(float).eps
    tmp = np.exp(np.clip(eta, -30, 30))
    tmp[eta < -30] = eps
    tmp[eta > 30] = 1 / eps
    return tmp / (1 + tmp)


def _is_zero_one(y: np.ndarray) -> bool:
    return bool(((y == 0.0) | (y == 1.0)).all())


DEVIANCE_TOLERANCE = 1e-12
# ... and no standardised coefficient moved by more than this in the last step: with Newton's
# quadratic convergence the coefficients are then within about its square of the maximum
COEFFICIENT_TOLERANCE = 1e-7
MAX_ITERATIONS = 50


def _binomial_deviance(y: np.ndarray, mu: np.ndarray, *, zero_one: bool | None = None) -> float:
    """Twice the binomial log-likelihood ratio; `zero_one` says y is 0/1 (None: look)."""
    if zero_one is None:
        zero_one = y.dtype == np.float64 and _is_zero_one(y)
    if zero_one:
        # y is 0 or 1: y * log(y / mu) is log(1 / mu) for y = 1 and (1 - y) * log((1 - y) / (1 - mu)) is
        # log(1 / (1 - mu)) for y = 0, bit for bit (multiplying by 1.0 and 1.0 - 0.0 are exact)
        with np.errstate(divide="ignore"):
            terms = np.log(1.0 / np.where(y > 0, mu, 1.0 - mu))
        return float(2 * terms.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(y > 0, y * np.log(y / mu), 0.0) + np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
    return float(2 * terms.sum())


# X'WX and X'Wz are summed over blocks of rows small enough to stay in cache, in BANDS fixed
# bands of rows (one thread each, BLAS on one thread): the sums are added in the same order
# whatever the number of cores or BLAS threads, so the fit is the same bit for bit everywhere.
BLOCK_ROWS = 8192
BANDS = 2
# From twice this many rows, a fit on every k-th row (WARM_START_ROWS to twice as many of them)
# starts the full-data iterations near the maximum: at 1.7M rows 5 passes over all rows
# instead of 10.
WARM_START_ROWS = 200_000
WARM_START_TOLERANCE = 1e-8


class _Irls:
    """Newton (IRLS) steps of a logistic regression on a standardised design with an intercept."""

    def __init__(self, standard: np.ndarray, y: np.ndarray, pool: ThreadPoolExecutor) -> None:
        self.standard = standard
        self.y = y
        self.zero_one = y.dtype == np.float64 and _is_zero_one(y)
        self.pool = pool
        rows = standard.shape[0]
        self.bounds = [rows * band // BANDS for band in range(BANDS + 1)]

    def deviance(self, mu: np.ndarray) -> float:
        return _binomial_deviance(self.y, mu, zero_one=self.zero_one)

    def _band(self, start: int, stop: int, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        columns = self.standard.shape[1]
        gram = np.zeros((columns, columns))
        rhs = np.zeros(columns)
        scaled = np.empty((BLOCK_ROWS, columns))
        for first in range(start, stop, BLOCK_ROWS):
            last = min(first + BLOCK_ROWS, stop)
            block_mu = mu[first:last]
            variance = block_mu * (1 - block_mu)
            working = eta[first:last] + (self.y[first:last] - block_mu) / variance
            root = np.sqrt(variance)
            block = scaled[: last - first]
            np.multiply(self.standard[first:last], root[:, None], out=block)
            gram += block.T @ block  # numpy computes a product with its own transpose by syrk
            rhs += block.T @ (root * working)
        return gram, rhs

    def step(self, eta: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """The next coefficients: solve (X'WX) b = X'Wz by Cholesky."""
        bands = [self.pool.submit(self._band, self.bounds[i], self.bounds[i + 1], eta, mu) for i in range(BANDS)]
        parts = [band.result() for band in bands]
        gram, rhs = parts[0]
        for part_gram, part_rhs in parts[1:]:
            gram = gram + part_gram
            rhs = rhs + part_rhs
        factor = scipy.linalg.cho_factor(gram, check_finite=False)
        return scipy.linalg.cho_solve(factor, rhs, check_finite=False)

    def fit(self, beta: np.ndarray | None, tolerance: float) -> tuple[np.ndarray, int, bool]:
        """Iterate from `beta` (None: R's starting values) until the deviance changes by less
        than `tolerance` relative, as R's glm.fit does (with its 1e-8), and the coefficients
        by less than COEFFICIENT_TOLERANCE."""
        if beta is None:
            mu = (self.y + 0.5) / 2.0  # R's binomial mustart with unit weights
            eta = np.log(mu / (1 - mu))
            beta = np.zeros(self.standard.shape[1])
        else:
            eta = self.standard @ beta
            mu = r_logit_inverse(eta)
        deviance_old = self.deviance(mu)
        iterations = 0
        while iterations < MAX_ITERATIONS:
            iterations += 1
            beta_old, beta = beta, self.step(eta, mu)
            eta = self.standard @ beta
            mu = r_logit_inverse(eta)
            deviance = self.deviance(mu)
            if (abs(deviance - deviance_old) / (abs(deviance) + 0.1) < tolerance
                    and float(np.max(np.abs(beta - beta_old))) < COEFFICIENT_TOLERANCE):
                return beta, iterations, True
            deviance_old = deviance
        return beta, iterations, False


def _warm_start(standard: np.ndarray, y: np.ndarray, pool: ThreadPoolExecutor) -> np.ndarray | None:
    """Coefficients fitted on every k-th row, or None when the rows are few or the subsample
    cannot be fitted (one group only, a constant column)."""
    rows = standard.shape[0]
    stride = rows // WARM_START_ROWS
    if stride < 2:
        return None
    sub_y = y[::stride]
    if sub_y.min() == sub_y.max():
        return None
    try:
        beta, _, converged = _Irls(np.ascontiguousarray(standard[::stride]), sub_y, pool).fit(
            None, WARM_START_TOLERANCE
        )
    except np.linalg.LinAlgError:
        return None
    return beta if converged and np.isfinite(beta).all() else None


def _column_moments(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and (population) SD, with the arithmetic of numpy's mean(axis=0) and
    std(axis=0) on a column-major matrix (pairwise sums down each column), one column at a
    time: no rows x columns temporary, and the same numbers whatever the matrix's layout."""
    rows, count = columns.shape
    centre, scale = np.empty(count), np.empty(count)
    deviations = np.empty(rows)
    for j in range(count):
        column = columns[:, j]
        centre[j] = np.add.reduce(column) / rows
        np.subtract(column, centre[j], out=deviations)
        np.multiply(deviations, deviations, out=deviations)
        scale[j] = np.sqrt(np.add.reduce(deviations) / rows)
    return centre, scale


def irls_logistic(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """Maximum-likelihood logistic coefficients by IRLS, as R's glm.fit, on normal equations.

    R solves each weighted least-squares step by QR; solving the normal equations
    (X'WX) b = X'Wz by Cholesky reaches the same maximum, and costs one pass over
    the rows per iteration, which matters for comparison pools of millions. The
    columns are centred and scaled first so that X'WX stays well conditioned.
    Iterations stop when the deviance changes by less than 1e-12 relative (R's
    glm stops at 1e-8), so the coefficients agree with R to its own precision.
    With many rows the iterations start from a fit on a systematic subsample.
    `design` has the intercept's column of ones first.
    Returns the coefficients, the number of passes over all rows and whether they converged.
    """
    return _irls_with_intercept(design[:, 1:], y, order=_layout(design))


def _layout(matrix: np.ndarray) -> str:
    """The memory order np.column_stack / np.empty_like give a matrix built from this one."""
    return "F" if matrix.flags.f_contiguous and not matrix.flags.c_contiguous else "C"


def _irls_with_intercept(covariates: np.ndarray, y: np.ndarray, *, order: str) -> tuple[np.ndarray, int, bool]:
    """irls_logistic of [1, covariates], without making that matrix; `order`: the layout of the
    standardised copy (the layout of [1, covariates])."""
    centre, scale = _column_moments(covariates)
    scale[scale == 0] = 1.0
    standard = np.empty((covariates.shape[0], covariates.shape[1] + 1), order=order)  # type: ignore[call-overload]
    standard[:, 0] = 1.0
    # in place: the same subtraction and division per element, without two n x p temporaries
    np.subtract(covariates, centre, out=standard[:, 1:])
    np.divide(standard[:, 1:], scale, out=standard[:, 1:])
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(max_workers=BANDS) as pool:
        start = _warm_start(standard, y, pool)
        beta, iterations, converged = _Irls(standard, y, pool).fit(start, DEVIANCE_TOLERANCE)
        if start is not None and not converged:
            beta, iterations, converged = _Irls(standard, y, pool).fit(None, DEVIANCE_TOLERANCE)
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
    covariates = X.to_numpy(dtype=float)
    names = [INTERCEPT, *map(str, X.columns)]
    try:
        # laid out as np.column_stack would make [1, X] (column-major from a frame's float block)
        coefficients, iterations, converged = _irls_with_intercept(covariates, y, order=_layout(covariates))
    except np.linalg.LinAlgError:
        raise JdlUserError.single(
            "matching.propensity", "the propensity model cannot be fitted: some covariates are collinear",
            hint="remove a covariate that is a combination of others (e.g. a dummy of every level)",
        ) from None
    linear_predictor = _linear_predictor_with_intercept(covariates, coefficients)
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
            "warm_start_rows": WARM_START_ROWS,
            "tolerance": DEVIANCE_TOLERANCE,
            "coefficient_tolerance": COEFFICIENT_TOLERANCE,
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
