"""`jdl diff`: differences in method and in results between two recorded runs.

Method: a unified diff of the two resolved specs written as YAML, the changed
keys one per line, input files whose content differs, and software versions.
Results: every measure's treatment / comparison / difference / CI / p, the
counts n, and the balance after matching, side by side with the change.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from jdl.audit.canonical import canonical_json
from jdl.audit.compare import (
    MEASURE_FIELDS,
    MISSING,
    N_KEYS,
    PERCENT_FIELDS,
    FileChange,
    KeyChange,
    RecordedRun,
    input_changes,
    key_changes,
    read_run,
    software_changes,
    text_table,
)

BALANCE_FLAG_IMBALANCED = "imbalanced"
POINT_FIELDS = frozenset({"difference", "ci_low", "ci_high"})  # of a rate: percentage points


@dataclass(frozen=True)
class RunDiff:
    """What differs between run A and run B."""

    run_a: RecordedRun
    run_b: RecordedRun
    spec_diff: str
    spec_changes: tuple[KeyChange, ...]
    input_changes: tuple[FileChange, ...]
    software_changes: tuple[KeyChange, ...]
    results_identical: bool

    @property
    def differs(self) -> bool:
        return bool(self.spec_changes or self.input_changes or self.software_changes
                    or not self.results_identical)

    # -- results tables

    def measure_rows(self) -> list[dict[str, Any]]:
        """One row per measure and field: A, B and the change B − A."""
        a = _measures(self.run_a.results)
        b = _measures(self.run_b.results)
        primaries = [(r or {}).get("primary") for r in (self.run_a.results, self.run_b.results)]
        names = [n for n in primaries if n in a or n in b]
        names += [n for n in list(a) + list(b) if n not in names]
        rows = []
        for name in dict.fromkeys(names):
            measure_a, measure_b = a.get(name, {}), b.get(name, {})
            percent = "percent" in (measure_a.get("display"), measure_b.get("display"))
            for field_name in MEASURE_FIELDS:
                if field_name not in measure_a and field_name not in measure_b:
                    continue
                rows.append(_row(name, field_name, measure_a.get(field_name, MISSING),
                                 measure_b.get(field_name, MISSING), percent=percent
                                 and field_name in PERCENT_FIELDS,
                                 points=percent and field_name in POINT_FIELDS))
        return rows

    def n_rows(self) -> list[dict[str, Any]]:
        a = (self.run_a.results or {}).get("n") or {}
        b = (self.run_b.results or {}).get("n") or {}
        return [_row("n", key, a.get(key, MISSING), b.get(key, MISSING))
                for key in N_KEYS if key in a or key in b]

    def balance_rows(self) -> list[dict[str, Any]]:
        a = _balance(self.run_a.results)
        b = _balance(self.run_b.results)
        return [_row(covariate, "smd_after", a.get(covariate, MISSING), b.get(covariate, MISSING))
                for covariate in list(a) + [c for c in b if c not in a]]

    def balance_summary(self) -> dict[str, Any]:
        return {"a": _balance_summary(self.run_a.results), "b": _balance_summary(self.run_b.results)}

    # -- output

    def to_json(self) -> dict[str, Any]:
        return {
            "run_a": str(self.run_a.run_dir),
            "run_b": str(self.run_b.run_dir),
            "differs": self.differs,
            "method": {
                "spec_diff": self.spec_diff,
                "spec_changes": [_change_json(c) for c in self.spec_changes],
                "input_changes": [
                    {"table": c.table, "path": c.path, "a": c.before, "b": c.after}
                    for c in self.input_changes
                ],
                "software_changes": [_change_json(c) for c in self.software_changes],
            },
            "results": {
                "identical": self.results_identical,
                "n": [_renamed(row, "count") for row in self.n_rows()],
                "measures": self.measure_rows(),
                "balance": {"summary": self.balance_summary(),
                            "covariates": [_renamed(row, "covariate") for row in self.balance_rows()]},
            },
        }

    def render_json(self) -> str:
        return canonical_json(self.to_json())

    def render_text(self) -> str:
        lines = [f"A: {self.run_a.run_dir}  (spec {self.run_a.manifest.get('spec_path')}, "
                 f"run {self.run_a.manifest.get('run_id')})",
                 f"B: {self.run_b.run_dir}  (spec {self.run_b.manifest.get('spec_path')}, "
                 f"run {self.run_b.manifest.get('run_id')})", ""]
        lines.append("== Method ==")
        if self.spec_changes:
            lines.append(f"Spec keys that differ ({len(self.spec_changes)}):")
            lines += [f"  - {c.render()}" for c in self.spec_changes]
            lines += ["", self.spec_diff.rstrip()]
        else:
            lines.append("The resolved specs are identical.")
        if self.input_changes:
            lines.append(f"Input files that differ ({len(self.input_changes)}):")
            lines += [f"  - {c.render()}" for c in self.input_changes]
        else:
            lines.append("The input data are identical (same content hashes).")
        if self.software_changes:
            lines.append(f"Software that differs ({len(self.software_changes)}):")
            lines += [f"  - {c.render()}" for c in self.software_changes]
        else:
            lines.append("The software versions are identical.")
        lines += ["", "== Results =="]
        if self.results_identical:
            lines.append("results.json is byte-identical.")
        headers = ["measure", "field", "A", "B", "B - A"]
        lines += ["", text_table(headers, [_cells(r) for r in self.measure_rows()], align_left=2)]
        lines += ["", text_table(["count", "A", "B", "B - A"],
                                 [_cells(r)[1:] for r in self.n_rows()], align_left=1)]
        summary = self.balance_summary()
        lines += ["", "Balance after matching: "
                  f"A max |SMD| {_fmt(summary['a']['max_abs_smd_after'])}, "
                  f"{summary['a']['imbalanced']} imbalanced; "
                  f"B max |SMD| {_fmt(summary['b']['max_abs_smd_after'])}, "
                  f"{summary['b']['imbalanced']} imbalanced"]
        lines += [text_table(["covariate", "", "A", "B", "B - A"],
                             [_cells(r) for r in self.balance_rows()], align_left=2)]
        return "\n".join(lines) + "\n"


def diff_runs(run_a: Path, run_b: Path) -> RunDiff:
    a = read_run(run_a, need_results=False)
    b = read_run(run_b, need_results=False)
    spec_a, spec_b = a.manifest["resolved_spec"], b.manifest["resolved_spec"]
    return RunDiff(
        run_a=a,
        run_b=b,
        spec_diff=spec_yaml_diff(spec_a, spec_b, f"A {run_a}", f"B {run_b}"),
        spec_changes=tuple(key_changes(spec_a, spec_b)),
        input_changes=tuple(input_changes(a.manifest["inputs"], b.manifest["inputs"])),
        software_changes=tuple(software_changes(a.manifest, b.manifest)),
        results_identical=a.results_bytes is not None and a.results_bytes == b.results_bytes,
    )


def spec_as_yaml(resolved: dict[str, Any]) -> str:
    return yaml.safe_dump(resolved, sort_keys=True, allow_unicode=True, default_flow_style=False,
                          width=100)


def spec_yaml_diff(spec_a: dict[str, Any], spec_b: dict[str, Any], label_a: str, label_b: str) -> str:
    """A unified diff (3 lines of context) of two resolved specs as YAML; empty when equal."""
    lines = difflib.unified_diff(
        spec_as_yaml(spec_a).splitlines(keepends=True),
        spec_as_yaml(spec_b).splitlines(keepends=True),
        fromfile=f"{label_a} resolved spec",
        tofile=f"{label_b} resolved spec",
    )
    return "".join(lines)


def _measures(results: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return dict((results or {}).get("measures") or {})


def _balance(results: dict[str, Any] | None) -> dict[str, Any]:
    return {str(row.get("covariate")): row.get("smd_after") for row in (results or {}).get("balance") or []}


def _balance_summary(results: dict[str, Any] | None) -> dict[str, Any]:
    rows = (results or {}).get("balance") or []
    smds = [abs(r["smd_after"]) for r in rows
            if isinstance(r.get("smd_after"), int | float) and r.get("kind") != "distance"]
    return {
        "max_abs_smd_after": max(smds) if smds else None,
        "imbalanced": sum(1 for r in rows if r.get("flag") == BALANCE_FLAG_IMBALANCED),
        "covariates": len(rows),
    }


def _row(measure: str, field_name: str, a: Any, b: Any, *, percent: bool = False,
         points: bool = False) -> dict[str, Any]:
    change = None
    if _number(a) and _number(b):
        change = float(b) - float(a)
    return {"measure": measure, "field": field_name, "a": None if a is MISSING else a,
            "b": None if b is MISSING else b, "change": change, "percent": percent, "points": points,
            "same": a is not MISSING and b is not MISSING and a == b}


def _cells(row: dict[str, Any]) -> list[str]:
    percent, points = row["percent"], row["points"]
    change = row["change"]
    if row["same"]:
        shown_change = "="
    elif change is None:
        shown_change = "differs"
    else:
        shown_change = f"{100 * change:+.2f} pp" if percent else f"{change:+.6g}"
    return [row["measure"], row["field"], _fmt(row["a"], percent, points),
            _fmt(row["b"], percent, points), shown_change]


def _fmt(value: Any, percent: bool = False, points: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if points:
            return f"{100 * value:+.2f} pp"
        return f"{100 * value:.2f}%" if percent else f"{value:.6g}"
    return json.dumps(value, ensure_ascii=False)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _renamed(row: dict[str, Any], label: str) -> dict[str, Any]:
    """A table row for JSON: `measure` (the first column) renamed to what it holds."""
    renamed = {label: row["measure"] if label == "covariate" else row["field"]}
    renamed.update((k, v) for k, v in row.items() if k not in ("measure", "field", "points", "percent"))
    return renamed


def _change_json(change: KeyChange) -> dict[str, Any]:
    return {"key": change.key, "a": None if change.before is MISSING else change.before,
            "b": None if change.after is MISSING else change.after,
            "a_present": change.before is not MISSING, "b_present": change.after is not MISSING}
