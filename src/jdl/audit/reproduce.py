"""`jdl reproduce`: re-run a recorded run and prove its results are the same, or say why not.

The re-run uses the RECORDED resolved spec (written to a temporary spec file;
its data paths are as recorded), so an edited spec file cannot hide behind the
record; whether the spec file on disk still says the same is reported
separately. A run is reproduced when the re-run's results.json is
byte-identical AND it ran on the recorded inputs: the same data (content
hashes) and, unless versions are explicitly allowed to differ, the same
software. Otherwise every cause found is named: spec keys, data files (per
file), package versions, and every published number that moved.

This module does not know how to run an evaluation (the engine sits above the
audit layer): the caller passes `run_spec(spec_path, out_dir)`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from jdl.audit.compare import (
    FileChange,
    KeyChange,
    NumberChange,
    RecordedRun,
    input_changes,
    key_changes,
    other_result_keys_changed,
    read_run,
    result_changes,
    software_changes,
)
from jdl.errors import JdlUserError, Problem
from jdl.spec import canonical_spec_json, load_spec

RunSpec = Callable[[Path, Path], object]
"""Runs the spec at the first path into the run directory at the second (e.g. the engine)."""

SHOWN_NUMBERS = 40
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_STUB_BASE = (
    "# Stand-in for the base spec named by a recorded run's `extends`: the recorded\n"
    "# resolved spec already holds every key, so the base adds nothing.\n"
    "spec_version: 1\n"
)


@dataclass(frozen=True)
class SpecOnDisk:
    """How the spec file named in the manifest compares with the recorded resolved spec now."""

    path: str
    state: Literal["same", "differs", "missing", "invalid"]
    changes: tuple[KeyChange, ...] = ()
    problem: str | None = None

    def render(self) -> str:
        if self.state == "same":
            return f"The spec file {self.path} still resolves to the recorded spec."
        if self.state == "missing":
            return f"The spec file {self.path} no longer exists."
        if self.state == "invalid":
            return f"The spec file {self.path} no longer loads: {self.problem}"
        lines = [f"The spec file {self.path} now differs from the recorded spec "
                 f"({len(self.changes)} key(s)):"]
        lines += [f"  - {change.render()}" for change in self.changes]
        return "\n".join(lines)


@dataclass(frozen=True)
class Reproduction:
    """The verdict of one reproduction and everything found on the way."""

    run_dir: Path
    rerun_dir: Path
    spec_source: str
    identical: bool
    results_sha256: str
    rerun_results_sha256: str | None
    rerun_message: str | None
    recorded_spec_intact: bool
    spec_changes: tuple[KeyChange, ...]
    spec_on_disk: SpecOnDisk
    input_changes: tuple[FileChange, ...]
    software_changes: tuple[KeyChange, ...]
    result_changes: tuple[NumberChange, ...]
    other_result_keys: tuple[str, ...]
    ignore_versions: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def reproduced(self) -> bool:
        software_ok = self.ignore_versions or not self.software_changes
        return (self.identical and self.recorded_spec_intact and not self.spec_changes
                and not self.input_changes and software_ok)

    @property
    def exit_status(self) -> int:
        return 0 if self.reproduced else 1

    def render(self) -> str:
        lines = [self._verdict()]
        causes = self._causes()
        if causes:
            lines += ["", "Why:", *causes]
        if not self.identical:
            lines += ["", *self._moved_numbers()]
        lines += ["", self.spec_on_disk.render()]
        lines += list(self.notes)
        return "\n".join(lines).rstrip() + "\n"

    def _verdict(self) -> str:
        recorded = f"results.json sha256 {self.results_sha256[:16]}…"
        if self.reproduced:
            return f"REPRODUCED: the re-run's results.json is byte-identical ({recorded})."
        if self.rerun_results_sha256 is None:
            return (f"NOT REPRODUCED: the re-run did not complete ({self.rerun_message}); "
                    f"the recorded run has {recorded}.")
        if self.identical:
            return ("NOT REPRODUCED: results.json is byte-identical, but the re-run did not use "
                    "the recorded inputs (see why below).")
        return (f"NOT REPRODUCED: the re-run's results.json differs "
                f"({recorded} recorded, {self.rerun_results_sha256[:16]}… now).")

    def _causes(self) -> list[str]:
        causes: list[str] = []
        if not self.recorded_spec_intact:
            causes.append("- Spec: the manifest's resolved_spec does not hash to its recorded spec_sha256, "
                          "so the manifest was edited after the run.")
        if self.spec_changes:
            causes.append(f"- Spec: {len(self.spec_changes)} key(s) of the spec re-run "
                          f"({self.spec_source}) differ from the recorded spec:")
            causes += [f"    {change.render()}" for change in self.spec_changes]
        if self.input_changes:
            causes.append(f"- Data: {len(self.input_changes)} input file(s) differ from the "
                          "recorded fingerprints:")
            causes += [f"    {change.render()}" for change in self.input_changes]
        if self.software_changes:
            allowed = " (allowed by --ignore-versions)" if self.ignore_versions else ""
            causes.append(f"- Software: {len(self.software_changes)} version(s) differ from the "
                          f"recorded run{allowed}:")
            causes += [f"    {change.render()}" for change in self.software_changes]
        if not causes and not self.identical:
            causes.append("- No recorded input differs (same spec, data and software): the engine "
                          "is not deterministic for this spec; please report it as a bug.")
        return causes

    def _moved_numbers(self) -> list[str]:
        if self.rerun_results_sha256 is None:
            return []
        lines = [f"Published numbers that moved ({len(self.result_changes)}):"]
        lines += [f"  - {change.render()}" for change in self.result_changes[:SHOWN_NUMBERS]]
        if len(self.result_changes) > SHOWN_NUMBERS:
            lines.append(f"  … and {len(self.result_changes) - SHOWN_NUMBERS} more")
        if not self.result_changes:
            lines.append("  (none)")
        if self.other_result_keys:
            shown = ", ".join(self.other_result_keys[:12])
            more = f" and {len(self.other_result_keys) - 12} more" if len(self.other_result_keys) > 12 else ""
            lines.append(f"Other results.json keys that differ: {shown}{more}")
        return lines


def reproduce_run(
    run_dir: Path,
    run_spec: RunSpec,
    *,
    out_dir: Path | None = None,
    current_spec: bool = False,
    ignore_versions: bool = False,
) -> Reproduction:
    """Re-run the run in `run_dir` and compare; JdlUserError (exit 2) for a bad run directory.

    `out_dir` receives the re-run (default: a temporary folder, removed when the
    run is reproduced and kept for `jdl diff` when it is not). `current_spec`
    re-runs the spec file named in the manifest as it is now, instead of the
    recorded resolved spec.
    """
    recorded = read_run(run_dir)
    assert recorded.results_bytes is not None and recorded.results is not None
    manifest = recorded.manifest
    resolved = manifest["resolved_spec"]
    if not isinstance(resolved, dict):
        raise JdlUserError.single(str(run_dir / "manifest.json"), "resolved_spec is not a mapping")
    spec_path_text = str(manifest.get("spec_path", ""))
    keep_rerun = out_dir is not None
    rerun_dir = (out_dir if out_dir is not None else Path(tempfile.mkdtemp(prefix="jdl-reproduce-"))).resolve()
    # relative data paths were resolved from the folder the run was made in: re-run from there
    recorded_cwd = Path(str(manifest.get("working_directory") or "."))
    run_in = recorded_cwd if recorded_cwd.is_dir() else Path.cwd()
    with tempfile.TemporaryDirectory(prefix="jdl-recorded-spec-") as spec_folder:
        if current_spec:
            spec_to_run = run_in / spec_path_text
            if not spec_to_run.is_file():
                raise JdlUserError.single(spec_path_text or str(run_dir / "manifest.json"),
                                          "the spec file named in the manifest (spec_path) is not there",
                                          hint="run from the folder the run was made in, or drop "
                                          "--current-spec to re-run the recorded spec")
            source = f"spec file {spec_path_text}"
        else:
            spec_to_run = write_recorded_spec(resolved, Path(spec_folder), name=_spec_name(resolved))
            source = "recorded resolved spec"
        try:
            with contextlib.chdir(run_in):
                run_spec(spec_to_run.resolve(), rerun_dir)
        except JdlUserError as error:
            if not keep_rerun:
                shutil.rmtree(rerun_dir, ignore_errors=True)
            hint = ("data paths in the recorded spec are relative to the folder the run was made in: "
                    "run `jdl reproduce` from there") if _has_relative_data_paths(resolved) else None
            raise JdlUserError(
                [Problem(str(run_dir), f"the recorded run cannot be re-run from the {source}", hint=hint),
                 *error.problems],
                error.exit_status,
            ) from None
    rerun = read_run(rerun_dir, need_results=False)
    outcome = compare_with_rerun(recorded, rerun, source=source, ignore_versions=ignore_versions,
                                 spec_on_disk=check_spec_on_disk(str(run_in / spec_path_text), resolved))
    if outcome.reproduced and not keep_rerun:
        shutil.rmtree(rerun_dir, ignore_errors=True)
    elif not outcome.reproduced:
        outcome = _with_note(outcome, f"The re-run is kept in {rerun_dir} "
                                      f"(compare: jdl diff {run_dir} {rerun_dir}).")
    return outcome


def compare_with_rerun(
    recorded: RecordedRun,
    rerun: RecordedRun,
    *,
    source: str,
    spec_on_disk: SpecOnDisk,
    ignore_versions: bool = False,
) -> Reproduction:
    assert recorded.results_bytes is not None and recorded.results is not None
    manifest = recorded.manifest
    rerun_sha = None if rerun.results_bytes is None else hashlib.sha256(rerun.results_bytes).hexdigest()
    identical = rerun.results_bytes == recorded.results_bytes
    moved: list[NumberChange] = []
    others: list[str] = []
    if rerun.results is not None and not identical:
        moved = result_changes(recorded.results, rerun.results)
        others = other_result_keys_changed(recorded.results, rerun.results)
    return Reproduction(
        run_dir=recorded.run_dir,
        rerun_dir=rerun.run_dir,
        spec_source=source,
        identical=identical,
        results_sha256=hashlib.sha256(recorded.results_bytes).hexdigest(),
        rerun_results_sha256=rerun_sha,
        rerun_message=None if rerun.results is not None else _rerun_message(rerun.run_dir),
        recorded_spec_intact=recorded_spec_is_intact(manifest),
        spec_changes=tuple(key_changes(manifest["resolved_spec"], rerun.manifest["resolved_spec"])),
        spec_on_disk=spec_on_disk,
        input_changes=tuple(input_changes(manifest["inputs"], rerun.manifest.get("inputs") or {})),
        software_changes=tuple(software_changes(manifest, rerun.manifest)),
        result_changes=tuple(moved),
        other_result_keys=tuple(others),
        ignore_versions=ignore_versions,
    )


def recorded_spec_is_intact(manifest: dict[str, Any]) -> bool:
    """True when the manifest's resolved_spec still hashes to its spec_sha256."""
    text = json.dumps(manifest["resolved_spec"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest() == manifest.get("spec_sha256")


def check_spec_on_disk(spec_path: str, resolved: dict[str, Any]) -> SpecOnDisk:
    """Compare the spec file named in the manifest, as it is now, with the recorded resolved spec."""
    if not spec_path or not Path(spec_path).is_file():
        return SpecOnDisk(spec_path, "missing")
    try:
        current = json.loads(canonical_spec_json(load_spec(spec_path).spec))
    except JdlUserError as error:
        return SpecOnDisk(spec_path, "invalid", problem=error.render())
    changes = tuple(key_changes(resolved, current))
    return SpecOnDisk(spec_path, "differs" if changes else "same", changes)


def write_recorded_spec(resolved: dict[str, Any], folder: Path, *, name: str = "spec") -> Path:
    """Write a recorded resolved spec as a runnable spec file in `folder`.

    The resolved spec holds every key, so its base adds nothing; but `extends`
    is part of the spec (and of its hash), so it is kept and a stand-in base is
    written where a relative `extends` will look for it. An absolute `extends`
    must still exist (its content is overridden by every recorded key).
    """
    extends = resolved.get("extends")
    spec_dir = folder / "spec"
    if isinstance(extends, str) and extends.strip():
        target = Path(os.path.expanduser(extends))
        if target.is_absolute():
            if not target.is_file():
                raise JdlUserError.single(
                    "manifest.json resolved_spec.extends", "the recorded spec names its base by an "
                    "absolute path that no longer exists", value=extends,
                    hint="restore the base file there (its keys are all overridden by the recorded "
                    "spec, so any valid base will do)",
                )
        else:
            ups = sum(1 for part in Path(os.path.normpath(target)).parts if part == "..")
            spec_dir = folder.joinpath(*(["nested"] * ups), "spec")
            stub = Path(os.path.normpath(spec_dir / target))
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text(_STUB_BASE, encoding="utf-8")
    spec_dir.mkdir(parents=True, exist_ok=True)
    path = spec_dir / f"{name}.yaml"
    path.write_text(
        "# The resolved spec recorded in a run's manifest.json, re-run by `jdl reproduce`.\n"
        + yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True, default_flow_style=False),
        encoding="utf-8",
    )
    return path


def _spec_name(resolved: dict[str, Any]) -> str:
    identifier = resolved.get("id")
    return identifier if isinstance(identifier, str) and _SAFE_NAME.fullmatch(identifier) else "spec"


def _has_relative_data_paths(resolved: dict[str, Any]) -> bool:
    data = resolved.get("data") or {}
    records = data.get("national_records") or {}
    paths = [data.get("cohort"), data.get("table"), records.get("people"), records.get("events"),
             records.get("employment"), records.get("benefits")]
    return any(isinstance(p, str) and "://" not in p and not Path(p).is_absolute() for p in paths)


def _rerun_message(rerun_dir: Path) -> str:
    try:
        reason = json.loads((rerun_dir / "attrition.json").read_text(encoding="utf-8")).get("reason")
    except (OSError, ValueError, AttributeError):
        reason = None
    return reason or "no results.json was written"


def _with_note(outcome: Reproduction, note: str) -> Reproduction:
    return dataclasses.replace(outcome, notes=(*outcome.notes, note))
