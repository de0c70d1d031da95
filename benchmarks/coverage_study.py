"""Coverage study: bias, RMSE and 95% CI coverage of every estimator on simulated matched evaluations.

Each replicate draws a fresh population (default 300 treated, 3,000 potential
comparisons) with confounded selection on four covariates (two continuous, sex
and region), a binary reoffending outcome whose risk depends on the same
covariates, and a planted constant effect of TRUE_ATT on the treated's risk
(so the population and sample ATT are both exactly TRUE_ATT). It then matches
with the JDL standard settings (nearest neighbour on the logit of a logistic
score, 1:5 with replacement, caliper 0.2 SD of the logit, exact on sex,
largest score first) and applies every estimator.

    python benchmarks/coverage_study.py --reps 200 [--meta-reps 100] [--workers 2]

Prints a markdown table. Replicates are seeded (seed + replicate number), so
the table is reproducible.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker process
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import pandas as pd

TRUE_ATT = -0.07
COVARIATES = ["age", "prior_offences", "sex", "region"]
REGIONS = np.array(["London", "North West", "Wales", "South East"])


@dataclass(frozen=True)
class Design:
    n_treated: int = 300
    n_control: int = 3000


@dataclass(frozen=True)
class Setting:
    label: str
    method: str
    variance: dict[str, object]
    meta: bool = False


SETTINGS = (
    Setting("weighted_difference, pair_cluster_robust (standard)", "weighted_difference",
            {"method": "pair_cluster_robust"}),
    Setting("weighted_difference, robust (HC1, ignores matched sets)", "weighted_difference",
            {"method": "robust"}),
    Setting("weighted_difference, cluster bootstrap percentile (499)", "weighted_difference",
            {"method": "bootstrap", "reps": 499, "seed": 1, "interval": "percentile"}),
    Setting("weighted_difference, cluster bootstrap BCa (499)", "weighted_difference",
            {"method": "bootstrap", "reps": 499, "seed": 1, "interval": "bca"}),
    Setting("regression_adjustment, pair_cluster_robust", "regression_adjustment",
            {"method": "pair_cluster_robust"}),
    Setting("ipw (M-estimation sandwich)", "ipw", {"method": "pair_cluster_robust"}),
    Setting("aipw (influence function)", "aipw", {"method": "pair_cluster_robust"}),
    Setting("s_learner (gradient boosting)", "s_learner", {"method": "pair_cluster_robust"}, True),
    Setting("t_learner (gradient boosting)", "t_learner", {"method": "pair_cluster_robust"}, True),
    Setting("x_learner (gradient boosting)", "x_learner", {"method": "pair_cluster_robust"}, True),
    Setting("dr_learner (gradient boosting)", "dr_learner", {"method": "pair_cluster_robust"}, True),
)


def simulate(seed: int, design: Design) -> pd.DataFrame:
    """Comparison pool and treated group with selection on the covariates."""
    rng = np.random.default_rng(seed)

    def people(n: int, treated: bool) -> pd.DataFrame:
        # the treated are younger, have more prior offences, are more often male and from London
        shift = 1.0 if treated else 0.0
        return pd.DataFrame(
            {
                "age": rng.normal(32 - 4 * shift, 9, n).clip(18, 80),
                "prior_offences": rng.poisson(3 + 2 * shift, n).astype(float),
                "sex": np.where(rng.random(n) < 0.8 + 0.08 * shift, "M", "F"),
                "region": REGIONS[
                    rng.choice(4, n, p=[0.4, 0.3, 0.1, 0.2] if treated else [0.25, 0.25, 0.25, 0.25])
                ],
                "treat": treated,
            }
        )

    frame = pd.concat(
        [people(design.n_treated, True), people(design.n_control, False)], ignore_index=True
    )
    risk = (
        0.08
        + 0.55
        / (
            1
            + np.exp(
                -(
                    -0.6
                    - 0.05 * (frame["age"] - 30)
                    + 0.25 * (frame["prior_offences"] - 3)
                    + 0.4 * (frame["sex"] == "M")
                    + 0.3 * (frame["region"] == "London")
                )
            )
        )
    )
    risk = risk + TRUE_ATT * frame["treat"]  # risk >= 0.08 > |TRUE_ATT|, so no clipping
    frame["reoffended"] = (rng.random(len(frame)) < risk).astype(float)
    return frame


def one_replicate(args: tuple[int, int, Design, bool]) -> list[tuple[str, float, float, float, float]]:
    """(setting label, estimate, se, ci_low, ci_high) for every setting on one simulated data set."""
    from jdl.estimation import estimate
    from jdl.matching import match
    from jdl.spec.models import EstimatorSpec, MatchingSpec

    replicate, seed, design, with_meta = args
    frame = simulate(seed + replicate, design)
    matching = match(
        frame,
        treatment="treat",
        covariates=COVARIATES,
        spec=MatchingSpec(
            method="nearest_neighbour",
            ratio=5,
            replace=True,
            caliper={"width": 0.2, "scale": "logit_sd"},
            exact=["sex"],
            order="largest",
        ),
    )
    covariates = frame[COVARIATES]
    rows = []
    for setting in SETTINGS:
        if setting.meta and not with_meta:
            continue
        spec = EstimatorSpec(method=setting.method, variance=setting.variance)
        result = estimate(frame["reoffended"], matching, spec, kind="binary", covariates=covariates)
        rows.append((setting.label, result.difference, result.se, result.ci_low, result.ci_high))
    return rows


def summarise(rows: list[tuple[str, float, float, float, float]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["estimator", "estimate", "se", "ci_low", "ci_high"])
    table["covered"] = (table["ci_low"] <= TRUE_ATT) & (table["ci_high"] >= TRUE_ATT)
    grouped = table.groupby("estimator", sort=False)
    summary = pd.DataFrame(
        {
            "reps": grouped.size(),
            "bias": grouped["estimate"].mean() - TRUE_ATT,
            "rmse": grouped["estimate"].apply(lambda e: float(np.sqrt(np.mean((e - TRUE_ATT) ** 2)))),
            "empirical_sd": grouped["estimate"].std(ddof=1),
            "mean_se": grouped["se"].mean(),
            "coverage": grouped["covered"].mean(),
        }
    )
    summary["se_over_sd"] = summary["mean_se"] / summary["empirical_sd"]
    summary["coverage_mc_se"] = np.sqrt(summary["coverage"] * (1 - summary["coverage"]) / summary["reps"])
    return summary


def markdown(summary: pd.DataFrame) -> str:
    lines = [
        "| estimator | reps | bias | RMSE | empirical SD | mean SE | SE/SD | 95% CI coverage |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in summary.iterrows():
        lines.append(
            f"| {name} | {int(row['reps'])} | {row['bias']:+.4f} | {row['rmse']:.4f} | "
            f"{row['empirical_sd']:.4f} | {row['mean_se']:.4f} | {row['se_over_sd']:.2f} | "
            f"{100 * row['coverage']:.1f}% (± {100 * row['coverage_mc_se']:.1f}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200, help="replicates (default 200)")
    parser.add_argument(
        "--meta-reps", type=int, default=None,
        help="replicates that also run the causalml meta-learners (default: 100; they take ~90%% of the time)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=20_130_000, help="seed of replicate 0")
    parser.add_argument("--treated", type=int, default=Design.n_treated)
    parser.add_argument("--controls", type=int, default=Design.n_control)
    args = parser.parse_args(argv)
    design = Design(args.treated, args.controls)
    meta_reps = min(100 if args.meta_reps is None else args.meta_reps, args.reps)
    jobs = [(r, args.seed, design, r < meta_reps) for r in range(args.reps)]
    started = time.perf_counter()
    rows: list[tuple[str, float, float, float, float]] = []
    if args.workers > 1:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for result in pool.map(one_replicate, jobs, chunksize=4):
                rows.extend(result)
    else:
        for job in jobs:
            rows.extend(one_replicate(job))
    elapsed = time.perf_counter() - started
    print(
        f"Coverage study: {args.reps} replicates ({meta_reps} with meta-learners), "
        f"{design.n_treated} treated x {design.n_control} potential comparisons, "
        f"true ATT {TRUE_ATT:+.2f}, JDL standard matching (1:5 NN with replacement, caliper 0.2 "
        f"logit SD, exact on sex); {elapsed:.0f} s on {args.workers} worker(s)\n"
    )
    print(markdown(summarise(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
