"""Table mode: a study that already has one row per unit (e.g. Lalonde / NSW).

Covariates and outcomes are plain columns. Rows are kept in the table's
order, because matching breaks ties by input order as MatchIt does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jdl.audit import fingerprint_files
from jdl.engine.evaluation import Evaluation, attrition_table
from jdl.errors import JdlUserError, Problem
from jdl.measures import OutcomeColumn
from jdl.sources.table import read_unit_table

TRUE_VALUES = {"1", "1.0", "true", "t", "yes", "y"}
FALSE_VALUES = {"0", "0.0", "false", "f", "no", "n"}


def _treatment_flags(values: pd.Series, column: str, where: str) -> pd.Series:
    """0/1 (or true/false) as booleans; anything else is an error naming the rows."""
    text = values.astype("string").str.strip().str.lower()
    flags = pd.Series(pd.NA, index=values.index, dtype="boolean")
    flags[text.isin(TRUE_VALUES).fillna(False).to_numpy()] = True
    flags[text.isin(FALSE_VALUES).fillna(False).to_numpy()] = False
    bad = flags.isna() & values.notna()
    if bad.any():
        examples = sorted({str(v) for v in values[bad].head(20)})[:5]
        raise JdlUserError.single(
            where,
            f"treatment column {column!r} is not binary: {int(bad.sum())} row(s) hold other values "
            f"(e.g. {', '.join(examples)})",
            allowed="0/1 or true/false",
            hint="recode the treatment as 1 for participants and 0 for everyone else",
        )
    return flags


def _outcome_column(name: str, values: pd.Series, label: str | None, lower_is_better: bool | None) -> OutcomeColumn:
    observed = set(pd.unique(values.dropna()))
    binary = observed <= {0, 1} and len(observed) > 0
    return OutcomeColumn(
        name=name,
        label=label or name,
        kind="binary" if binary else "continuous",
        display="percent" if binary else "value",
        population="all",
        lower_is_better=True if lower_is_better is None else lower_is_better,
    )


class TableEvaluation(Evaluation):
    mode = "table"

    def prepare(self) -> tuple[pd.DataFrame, list[str], list[OutcomeColumn]]:
        spec = self.spec
        data = spec.data
        assert data.table is not None and data.id is not None and data.treatment is not None
        self.id_column = data.id
        with self.clock.stage("read_table"):
            table = read_unit_table(data.table)
            self.inputs["table"] = fingerprint_files([data.table])
        covariates = spec.covariate_names
        outcomes = [m.name for m in spec.outcomes.measures]
        score_column = spec.matching.propensity.column
        placebo = spec.estimator.sensitivity.placebo_outcome
        wanted = {
            "data.id": [data.id],
            "data.treatment": [data.treatment],
            "covariates": covariates,
            "outcomes.measures": outcomes,
            "matching.propensity.column": [score_column] if score_column else [],
            "estimator.sensitivity.placebo_outcome": [placebo] if placebo else [],
        }
        problems = [
            Problem(f"{data.table} (spec {key})", f"column {column!r} is not in the table",
                    allowed=", ".join(c for c in table.columns if c != "row_number"))
            for key, columns in wanted.items() for column in columns if column not in table.columns
        ]
        if problems:
            raise JdlUserError(problems)
        duplicated = table[data.id].duplicated(keep=False)
        if duplicated.any():
            rows = table.loc[duplicated, "row_number"].head(5).tolist()
            raise JdlUserError.single(
                f"{data.table} (spec data.id)",
                f"id column {data.id!r} repeats for {int(duplicated.sum())} rows (e.g. rows {rows})",
                hint="table mode needs one row per unit",
            )
        treated = _treatment_flags(table[data.treatment], data.treatment, f"{data.table} (spec data.treatment)")
        needed = [data.treatment, *covariates, *outcomes] + ([score_column] if score_column else [])
        missing = table[needed].isna() | treated.isna().to_frame(data.treatment).reindex(
            columns=needed, fill_value=False
        )
        incomplete = missing.any(axis=1).to_numpy()
        if incomplete.any():
            reasons = missing.loc[incomplete].apply(
                lambda row: "missing value in " + ", ".join(c for c in needed if row[c]), axis=1
            )
            self.reject("table", pd.DataFrame({"row_number": table.loc[incomplete, "row_number"],
                                               "reason": reasons.astype("string")}))
            self.warnings.append(f"{int(incomplete.sum())} rows with missing values were left out (see rejects.csv)")
        complete = table.loc[~incomplete].reset_index(drop=True)
        flags = treated[~incomplete].to_numpy(dtype=bool)
        self.counts["submitted"] = int(treated.fillna(False).sum())
        self.counts["eligible"] = int(flags.sum())
        self.counts["comparison_pool"] = int((~flags).sum())
        if self.counts["eligible"] == 0 or self.counts["comparison_pool"] == 0:
            raise JdlUserError.single(
                f"{data.table} (spec data.treatment)",
                f"the complete rows hold {self.counts['eligible']} treated and "
                f"{self.counts['comparison_pool']} untreated units; both groups are needed",
            )
        frame = pd.DataFrame({"unit_id": complete[data.id].to_numpy(), "treated": flags})
        split_by = [g.by for g in spec.subgroups if g.by in complete.columns and g.by not in covariates]
        if placebo and placebo not in covariates + split_by:
            split_by.append(placebo)
        for column in covariates + ([score_column] if score_column else []) + split_by:
            frame[column] = complete[column].to_numpy()
        outcome_columns = []
        for measure in spec.outcomes.measures:
            values = pd.to_numeric(complete[measure.name], errors="coerce")
            if values.isna().any():
                raise JdlUserError.single(
                    f"{data.table} (spec outcomes.measures)",
                    f"outcome column {measure.name!r} is not numeric in {int(values.isna().sum())} rows",
                    allowed="numbers (0/1 for binary outcomes)",
                )
            frame[measure.name] = values.astype("float64").to_numpy()
            outcome_columns.append(_outcome_column(measure.name, values, measure.label, measure.lower_is_better))
        return frame, covariates, outcome_columns

    def matched_extra_columns(self, frame: pd.DataFrame) -> dict[str, pd.Series]:
        return {}

    def treated_reoffenders(
        self, frame: pd.DataFrame, in_matched_treatment: np.ndarray, follow_up: str | None = None
    ) -> int | None:
        return None

    def method_details(self) -> dict[str, Any]:
        return {"table": self.spec.data.table, "id": self.spec.data.id, "treatment": self.spec.data.treatment}

    def attrition(self) -> list[dict[str, Any]]:
        stages = [("submitted", "Treated units in the table"), ("eligible", "Complete data"),
                  ("matched", "Matched")]
        return attrition_table([(s, label, self.counts[s]) for s, label in stages if s in self.counts])
