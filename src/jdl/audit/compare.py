"""Comparing two recorded runs, fact by fact: spec keys, input files, software, numbers.

Shared by `reproduce` (a recorded run against its re-run) and `diff` (any two
runs). Everything here reads plain JSON values (a manifest, a results.json) and
returns immutable records; rendering them as text is the caller's choice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jdl.errors import JdlUserError

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "(absent)"})()

# The numbers a published report shows, in the order a reader meets them.
N_KEYS = ("submitted", "linked", "index_event_found", "eligible", "treatment", "comparison",
          "comparison_pool", "comparison_effective")
MEASURE_FIELDS = ("treatment", "comparison", "difference", "ci_low", "ci_high", "p_value",
                  "significant", "n_treatment", "n_comparison", "suppressed")
PERCENT_FIELDS = frozenset({"treatment", "comparison", "difference", "ci_low", "ci_high"})


@dataclass(frozen=True)
class KeyChange:
    """One key whose value differs between two versions (MISSING when absent from one)."""

    key: str
    before: Any
    after: Any

    def render(self) -> str:
        if self.before is MISSING:
            return f"{self.key}: added, {_show(self.after)}"
        if self.after is MISSING:
            return f"{self.key}: removed (was {_show(self.before)})"
        return f"{self.key}: {_show(self.before)} -> {_show(self.after)}"


@dataclass(frozen=True)
class FileChange:
    """One input file that differs: changed content, added or removed."""

    table: str
    path: str
    before: str | None  # sha256, None when the file was not there
    after: str | None

    def render(self) -> str:
        if self.before is None:
            return f"{self.table}: new file {self.path} (sha256 {self.after})"
        if self.after is None:
            return f"{self.table}: file {self.path} is gone (was sha256 {self.before})"
        return (f"{self.table}: {self.path} changed content "
                f"(sha256 {self.before[:12]}… -> {self.after[:12]}…)")


@dataclass(frozen=True)
class NumberChange:
    """A result that moved: where, from what, to what, by how much."""

    key: str
    before: Any
    after: Any
    percent: bool = False  # a rate: also shown in percentage points

    @property
    def change(self) -> float | None:
        if _is_number(self.before) and _is_number(self.after):
            return float(self.after) - float(self.before)
        return None

    def render(self) -> str:
        text = f"{self.key}: {_show(self.before)} -> {_show(self.after)}"
        change = self.change
        if change is not None:
            text += f" (change {change:+.6g}"
            if self.percent:
                text += f", {100 * change:+.2f} percentage points"
            text += ")"
        return text


# ---------------------------------------------------------------- reading run directories


@dataclass(frozen=True)
class RecordedRun:
    """The manifest and (when the run completed) the results of one run directory."""

    run_dir: Path
    manifest: dict[str, Any]
    results: dict[str, Any] | None
    results_bytes: bytes | None

    @property
    def label(self) -> str:
        return str(self.run_dir)


def read_run(run_dir: Path, *, need_results: bool = True) -> RecordedRun:
    """A run directory's records; JdlUserError (exit 2) naming what is missing or unreadable."""
    if not run_dir.is_dir():
        raise JdlUserError.single(str(run_dir), "is not a run directory (no such folder)",
                                  hint="give the folder that holds manifest.json and results.json")
    manifest_path = run_dir / "manifest.json"
    manifest = _read_json(manifest_path, "the run's manifest")
    for key in ("resolved_spec", "inputs", "packages"):
        if key not in manifest:
            raise JdlUserError.single(str(manifest_path), f"has no {key!r}; it is not a jdl run manifest")
    results_path = run_dir / "results.json"
    if not results_path.is_file():
        if need_results:
            reason = _incomplete_reason(run_dir)
            raise JdlUserError.single(
                str(run_dir), "has no results.json: the run did not complete" + reason,
                hint="only a completed run can be reproduced or compared",
            )
        return RecordedRun(run_dir, manifest, None, None)
    results_bytes = results_path.read_bytes()
    results = _read_json(results_path, "the run's results")
    return RecordedRun(run_dir, manifest, results, results_bytes)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JdlUserError.single(str(path), f"not found ({what})",
                                  hint="give the folder of a run written by `jdl run`") from None
    except (OSError, ValueError) as error:
        raise JdlUserError.single(str(path), f"cannot be read as JSON ({what}): {error}") from None
    if not isinstance(value, dict):
        raise JdlUserError.single(str(path), f"is not a JSON object ({what})")
    return value


def _incomplete_reason(run_dir: Path) -> str:
    try:
        reason = json.loads((run_dir / "attrition.json").read_text(encoding="utf-8")).get("reason")
    except (OSError, ValueError, AttributeError):
        return ""
    return f" ({reason})" if reason else ""


# ---------------------------------------------------------------- comparisons


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested mappings as dotted keys; a list of named items is keyed by name."""
    if isinstance(value, Mapping):
        if not value and prefix:
            return {prefix: {}}
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and _named_items(value):
        flat = {}
        for item in value:
            rest = {k: v for k, v in item.items() if k != "name"}
            key = f"{prefix}[{item['name']}]"
            flat.update(flatten(rest, key) if rest else {key: item["name"]})
        return flat
    return {prefix: value}


def _named_items(items: list[Any]) -> bool:
    names = [item.get("name") for item in items if isinstance(item, Mapping)]
    return bool(items) and len(names) == len(items) and all(isinstance(n, str) for n in names) \
        and len(set(names)) == len(names)


def key_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[KeyChange]:
    """Every leaf key that differs, in sorted key order."""
    flat_before, flat_after = flatten(before), flatten(after)
    changes = []
    for key in sorted(set(flat_before) | set(flat_after)):
        old, new = flat_before.get(key, MISSING), flat_after.get(key, MISSING)
        if old is MISSING or new is MISSING or not _same(old, new):
            changes.append(KeyChange(key, old, new))
    return changes


def input_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[FileChange]:
    """Input files whose content differs, per table (cohort, people, events …)."""
    changes: list[FileChange] = []
    for table in sorted(set(before) | set(after)):
        old = before.get(table) or {}
        new = after.get(table) or {}
        if old.get("sha256") == new.get("sha256") and old.get("files") == new.get("files"):
            continue
        old_files: dict[str, str] = dict(old.get("files") or {})
        new_files: dict[str, str] = dict(new.get("files") or {})
        for path in sorted(set(old_files) | set(new_files)):
            if old_files.get(path) != new_files.get(path):
                changes.append(FileChange(table, path, old_files.get(path), new_files.get(path)))
    return changes


def software_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[KeyChange]:
    """Package versions and the Python version that differ (manifest `packages`, `platform`)."""
    changes = key_changes(before.get("packages") or {}, after.get("packages") or {})
    python_before = (before.get("platform") or {}).get("python", MISSING)
    python_after = (after.get("platform") or {}).get("python", MISSING)
    if python_before != python_after:
        changes.append(KeyChange("python", python_before, python_after))
    return changes


def published_numbers(results: Mapping[str, Any]) -> dict[str, Any]:
    """The report's numbers as flat keys: n.*, measures.<name>.<field> (the headline measure first),
    balance.<covariate>.smd_after."""
    numbers: dict[str, Any] = {}
    for key in N_KEYS:
        if key in (results.get("n") or {}):
            numbers[f"n.{key}"] = results["n"][key]
    measures = dict(results.get("measures") or {})
    primary = results.get("primary")
    in_report_order = ([primary] if primary in measures else []) + [n for n in measures if n != primary]
    for name in in_report_order:
        measure = measures[name]
        for field_name in MEASURE_FIELDS:
            if field_name in measure:
                numbers[f"measures.{name}.{field_name}"] = measure[field_name]
    for row in results.get("balance") or []:
        numbers[f"balance.{row.get('covariate')}.smd_after"] = row.get("smd_after")
    return numbers


def result_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[NumberChange]:
    """Published numbers that moved, in report order."""
    old, new = published_numbers(before), published_numbers(after)
    keys = list(old) + [k for k in new if k not in old]
    percent = _percent_measures(before) | _percent_measures(after)
    changes = []
    for key in keys:
        a, b = old.get(key, MISSING), new.get(key, MISSING)
        if a is MISSING or b is MISSING or not _same(a, b):
            parts = key.split(".")
            is_percent = parts[0] == "measures" and parts[1] in percent and parts[2] in PERCENT_FIELDS
            changes.append(NumberChange(key, a, b, is_percent))
    return changes


def other_result_keys_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Keys of results.json outside the published numbers that differ (e.g. spec_sha256, warnings)."""
    published = set(published_numbers(before)) | set(published_numbers(after))
    flat_before = flatten({k: v for k, v in before.items() if k not in ("balance",)})
    flat_after = flatten({k: v for k, v in after.items() if k not in ("balance",)})
    return [
        key for key in sorted(set(flat_before) | set(flat_after))
        if key not in published and not _same(flat_before.get(key, MISSING), flat_after.get(key, MISSING))
    ]


def _percent_measures(results: Mapping[str, Any]) -> set[str]:
    return {name for name, m in (results.get("measures") or {}).items() if m.get("display") == "percent"}


# ---------------------------------------------------------------- plain-text tables


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, align_left: int = 1) -> str:
    """A fixed-width table; the first `align_left` columns left-aligned, the rest right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(cell).ljust(width) if i < align_left else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def _same(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b) or (math.isnan(float(a)) and math.isnan(float(b)))
    return bool(a == b)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    if value is MISSING:
        return "(absent)"
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
