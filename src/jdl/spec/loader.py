"""Loading a spec: YAML with lines, `extends` chains, deep merge, validation.

Data paths inside a spec stay plain strings here; the engine resolves and
checks them (relative to the current directory) when it reads data.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jdl.errors import JdlUserError, Problem
from jdl.spec import migrations
from jdl.spec.models import Spec
from jdl.spec.origins import SpecOrigins
from jdl.spec.problems import KeyPath, display_path, format_key_path, validation_problems
from jdl.spec.yaml_lines import YamlDocument, read_yaml

ExtraChecks = Callable[["LoadedSpec"], list[Problem]]


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with the files it came from.

    `chain[0]` is `path` as given; bases follow as absolute paths, nearest first.
    """

    path: Path
    spec: Spec
    merged: dict[str, Any]
    chain: tuple[Path, ...]
    origins: SpecOrigins | None = field(default=None, repr=False, compare=False)
    migrated: tuple[str, ...] = field(default=(), compare=False)
    """One note per old key migrated in memory (`FILE:LINE key: renamed to …`), for the manifest."""

    def locate(self, key_path: tuple[str | int, ...]) -> str:
        """`FILE:LINE` of the file and line that set `key_path` (or its nearest existing ancestor)."""
        if self.origins is None:
            return f"{display_path(self.path)}:1"
        return self.origins.locate(key_path)

    def where(self, key_path: tuple[str | int, ...]) -> str:
        """`FILE:LINE key.path`, the `where` of a Problem about this key."""
        if self.origins is None:
            return self.locate(key_path)
        return self.origins.where(key_path)

    def problem(
        self,
        key_path: tuple[str | int, ...],
        message: str,
        *,
        value: object = None,
        allowed: str | None = None,
        hint: str | None = None,
    ) -> Problem:
        """A Problem about one key of this spec, located in the file that set it."""
        return Problem(self.where(key_path), message, value, allowed, hint)


def load_spec(path: str | Path) -> LoadedSpec:
    """Load, merge and validate a spec; raise JdlUserError (exit status 2) listing every problem."""
    loaded, problems = _load(Path(path))
    if loaded is None:
        raise JdlUserError(problems)
    return loaded


def validate_specs(
    paths: list[Path], extra_checks: ExtraChecks | None = None
) -> dict[Path, list[Problem]]:
    """Problems per spec (empty list when valid); spec problems are returned, never raised.

    `extra_checks` (e.g. the engine's registry checks) runs on each spec that
    loaded cleanly; a JdlUserError it raises is recorded as that spec's problems.
    """
    results: dict[Path, list[Problem]] = {}
    for path in paths:
        loaded, problems = _load(Path(path))
        if loaded is not None and extra_checks is not None:
            try:
                problems = list(extra_checks(loaded))
            except JdlUserError as error:
                problems = list(error.problems)
        results[path] = problems
    return results


def _load(path: Path) -> tuple[LoadedSpec | None, list[Problem]]:
    documents, problems, migrated = _read_chain(path)
    if documents is None:
        return None, problems
    merged = _merge_chain(documents)
    origins = SpecOrigins(documents, merged)
    try:
        spec = Spec.model_validate(merged)
    except ValidationError as error:
        located = validation_problems(error, merged, origins.where, Spec)
        located.sort(key=lambda item: _order(origins, item[0]))
        problems.extend(problem for _, problem in located)
        return None, problems
    if problems:  # e.g. duplicate keys: the data validated, but not necessarily as written
        return None, problems
    chain = (path, *(document.path for document in documents[1:]))
    return LoadedSpec(path, spec, merged, chain, origins, tuple(migrated)), []


def _order(origins: SpecOrigins, key_path: KeyPath) -> tuple[int, int]:
    index, _, line = origins.origin(key_path)
    return index, line


def _read_chain(
    path: Path,
) -> tuple[tuple[YamlDocument, ...] | None, list[Problem], list[str]]:
    """The spec and its bases (migrated), most specific first; None when the chain cannot be built."""
    documents: list[YamlDocument] = []
    problems: list[Problem] = []
    migrated: list[str] = []
    visited = [_identity(path)]
    current = path
    while True:
        document = read_yaml(current)
        problems.extend(document.problems)
        if not document.readable:
            return None, problems, migrated
        document, notes, migration_problems = _migrate(document)
        migrated.extend(notes)
        problems.extend(migration_problems)
        documents.append(document)
        if document.data.get("extends") is None:
            return tuple(documents), problems, migrated
        base, problem = _find_base(document, visited)
        if problem is not None:
            problems.append(problem)
            return None, problems, migrated
        assert base is not None
        visited.append(_identity(base))
        current = base


def _migrate(document: YamlDocument) -> tuple[YamlDocument, list[str], list[Problem]]:
    """Old keys renamed to their current names (see `jdl.spec.migrations`), before merging.

    A file written for an older spec_version (or with none) is migrated with a
    SpecMigrationWarning per key; one that declares the current version but uses
    an old key gets a problem naming the new key (and is migrated, so that the
    old key is not also reported as unknown).
    """
    data = document.data
    shown = display_path(document.path)

    def where(key_path: tuple[str | int, ...]) -> str:
        lines = document.lines.get(key_path)
        return f"{shown}:{lines.key if lines is not None else 1} {format_key_path(key_path)}"

    outdated = migrations.old_keys_in_current(data)
    problems = [
        Problem(where(m.old), f"{m.describe(named=False)}; a spec_version {data.get('spec_version')} "
                f"file may not use the old key", hint=f"write {m.new_name}" if m.new_name else "remove the key")
        for m in outdated
    ]
    migrated, steps, conflicts = migrations.migrate_data(data, all_versions=bool(outdated))
    problems += [Problem(where(c.migration.old), c.message(), hint=f"keep only {c.migration.new_name}")
                 for c in conflicts]
    notes = []
    for step in steps:
        note = f"{where(step.migration.old)}: {step.message()}"
        notes.append(note)
        if not outdated:
            warnings.warn(migrations.SpecMigrationWarning(
                f"{note}. Run `jdl migrate {shown}` to rewrite the file."), stacklevel=5)
    if migrated == data:
        return document, [], problems
    return (dataclasses.replace(document, data=migrated, lines=migrations.move_lines(document.lines, steps)),
            notes, problems)


def _find_base(document: YamlDocument, visited: list[Path]) -> tuple[Path | None, Problem | None]:
    written = document.data["extends"]
    key_lines = document.lines.get(("extends",))
    line = key_lines.key if key_lines is not None else 1
    where = f"{display_path(document.path)}:{line} extends"
    if not isinstance(written, str) or not written.strip():
        return None, Problem(
            where,
            "extends must be the path of a base spec",
            written,
            allowed="a path such as methodology/jdl-standard.yaml",
        )
    candidates = _base_candidates(document.path, written)
    found = next((candidate for candidate in candidates if candidate.is_file()), None)
    if found is None:
        searched = ", ".join(display_path(candidate) for candidate in candidates)
        return None, Problem(
            where,
            f"base spec {written!r} not found",
            hint=f"looked for {searched}; a relative path is searched from the spec's folder "
            "and then each folder above it",
        )
    if _identity(found) in visited:
        cycle = [*visited[visited.index(_identity(found)) :], _identity(found)]
        return None, Problem(
            where,
            "extends makes a cycle: " + " -> ".join(display_path(step) for step in cycle),
            hint="a spec may not extend itself, directly or through its bases",
        )
    return found, None


def _base_candidates(spec_path: Path, written: str) -> list[Path]:
    target = Path(os.path.expanduser(written))
    if target.is_absolute():
        return [Path(os.path.normpath(target))]
    folder = Path(os.path.abspath(spec_path)).parent
    return [Path(os.path.normpath(directory / target)) for directory in (folder, *folder.parents)]


def _identity(path: Path) -> Path:
    return Path(path).resolve()


def _merge_chain(documents: tuple[YamlDocument, ...]) -> dict[str, Any]:
    merged: dict[str, Any] = copy.deepcopy(documents[-1].data)
    for document in reversed(documents[:-1]):
        merged = deep_merge(merged, document.data)
    return merged


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge recursively with `override` winning; lists and scalars are replaced."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(result.get(key), Mapping) and isinstance(value, Mapping):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result
