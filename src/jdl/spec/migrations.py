"""Spec evolution: renamed and removed keys, and how an old spec is brought up to date.

DESIGN.md: a documented name changes only with a migration and a clear error
for the old form. Each entry of `MIGRATIONS` says which key path was renamed
(or removed) in which `spec_version`, where its value now lives and how the
value is converted. The loader applies the table to every file of an
`extends` chain before validation, for files written for an older
`spec_version` (or with none), and warns once per key naming the new key; a
file that declares the current version but uses an old key gets an error
naming the new key instead. `jdl migrate` rewrites a file in place with the
same table, keeping comments (`migrate_file`).
"""

from __future__ import annotations

import copy
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jdl.errors import JdlUserError
from jdl.spec.models import SPEC_VERSION
from jdl.spec.problems import KeyPath, display_path, format_key_path

Convert = Callable[[Any], Any]


class SpecMigrationWarning(UserWarning):
    """An old spec key was migrated in memory; the message names the new key."""


def _identity(value: Any) -> Any:
    return value


def _caliper_in_logit_sd(value: Any) -> Any:
    return {"width": value, "scale": "logit_sd"}


def _confidence_level(value: Any) -> Any:
    # Old specs wrote the level either as a share (0.95) or as a percentage (95).
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 < value < 100:
        return value / 100
    return value


@dataclass(frozen=True)
class KeyMigration:
    """`old` was renamed to `new` (None: removed) in spec_version `version`."""

    version: int
    old: KeyPath
    new: KeyPath | None
    convert: Convert = _identity
    reason: str = ""

    @property
    def old_name(self) -> str:
        return format_key_path(self.old)

    @property
    def new_name(self) -> str | None:
        return None if self.new is None else format_key_path(self.new)

    def describe(self, *, named: bool = True) -> str:
        """`old was renamed to new in spec_version N (reason)`; without the old name when not `named`."""
        subject = f"{self.old_name} was " if named else ""
        if self.new is None:
            text = f"{subject}removed in spec_version {self.version}"
        else:
            text = f"{subject}renamed to {self.new_name} in spec_version {self.version}"
        return text + (f" ({self.reason})" if self.reason else "")


MIGRATIONS: tuple[KeyMigration, ...] = (
    KeyMigration(1, ("matching", "caliper_sd"), ("matching", "caliper"), _caliper_in_logit_sd,
                 "a number of SDs of the logit of the score is now {width: N, scale: logit_sd}"),
    KeyMigration(1, ("outcomes", "followup"), ("outcomes", "follow_up")),
    KeyMigration(1, ("outcomes", "waiting"), ("outcomes", "waiting_period")),
    KeyMigration(1, ("estimator", "ci"), ("estimator", "confidence"), _confidence_level,
                 "a share such as 0.95; a percentage such as 95 is converted"),
    KeyMigration(1, ("matching", "with_replacement"), ("matching", "replace")),
    KeyMigration(1, ("comparison_pool", "region"), ("comparison_pool", "regions")),
    KeyMigration(1, ("data", "national"), ("data", "national_records")),
    KeyMigration(1, ("cohort", "minimum_size"), ("cohort", "min_size")),
    KeyMigration(1, ("report", "logo"), None, reason="reports carry no logo; the key had no effect "
                 "on any number and is ignored"),
)


@dataclass(frozen=True)
class MigrationStep:
    """One migration applied to one file: what changed, for the warning and for `jdl migrate`."""

    migration: KeyMigration
    value: Any

    def message(self) -> str:
        """What happened to the key, for a warning that already names it."""
        text = self.migration.describe(named=False)
        return text + ("; ignored" if self.migration.new is None else "")


@dataclass(frozen=True)
class MigrationConflict:
    """An old key and its new name both given in one file."""

    migration: KeyMigration

    def message(self) -> str:
        return (f"both {self.migration.old_name} (the old name) and {self.migration.new_name} are given; "
                f"{self.migration.describe()}")


def declared_version(data: Mapping[str, Any]) -> int | None:
    """The file's spec_version when it is a whole number, else None (absent or malformed)."""
    version = data.get("spec_version")
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def needs_migration(data: Mapping[str, Any]) -> bool:
    """Whether migrations apply to a file: written for an older spec_version, or with none."""
    version = declared_version(data)
    if "spec_version" in data and version is None:
        return False  # malformed: left for validation to report
    return version is None or version < SPEC_VERSION


def pending(data: Mapping[str, Any], *, all_versions: bool = False) -> list[KeyMigration]:
    """Migrations whose old key is present in `data` (for its version, unless `all_versions`)."""
    version = declared_version(data)
    if not all_versions and not needs_migration(data):
        return []
    return [m for m in MIGRATIONS
            if (all_versions or version is None or version < m.version) and _has(data, m.old)]


def migrate_data(
    data: dict[str, Any], *, all_versions: bool = False
) -> tuple[dict[str, Any], list[MigrationStep], list[MigrationConflict]]:
    """A migrated copy of one file's data (spec_version brought up to date when it was given).

    `all_versions` also renames old keys in a file that declares the current version.
    """
    migrated = copy.deepcopy(data)
    steps: list[MigrationStep] = []
    conflicts: list[MigrationConflict] = []
    todo = pending(data, all_versions=all_versions)
    for migration in todo:
        if migration.new is not None and _has(migrated, migration.new):
            conflicts.append(MigrationConflict(migration))
            continue
        value = _pop(migrated, migration.old)
        if migration.new is not None:
            _put(migrated, migration.new, migration.convert(value))
        steps.append(MigrationStep(migration, value))
    if "spec_version" in migrated and needs_migration(data) and not conflicts:
        migrated["spec_version"] = SPEC_VERSION
    return migrated, steps, conflicts


def old_keys_in_current(data: Mapping[str, Any]) -> list[KeyMigration]:
    """Old keys used in a file that declares the current spec_version (errors, not migrated)."""
    if needs_migration(data):
        return []
    return [m for m in MIGRATIONS if _has(data, m.old)]


def move_lines(lines: Mapping[KeyPath, Any], steps: list[MigrationStep]) -> dict[KeyPath, Any]:
    """Key-line records re-keyed from old to new key paths, so errors point at the written line."""
    moved = dict(lines)
    for step in steps:
        old, new = step.migration.old, step.migration.new
        for key_path in [k for k in moved if k[: len(old)] == old]:
            record = moved.pop(key_path)
            if new is not None:
                moved.setdefault((*new, *key_path[len(old):]), record)
        # A converted value (caliper_sd: 0.2 -> caliper: {width, scale}) has new children.
        if new is not None and new in moved:
            for child in _child_paths(step.migration.convert(step.value), new):
                moved.setdefault(child, moved[new])
    return moved


def _child_paths(value: Any, prefix: KeyPath) -> list[KeyPath]:
    if isinstance(value, Mapping):
        paths: list[KeyPath] = []
        for key, item in value.items():
            paths.append((*prefix, key))
            paths += _child_paths(item, (*prefix, key))
        return paths
    return []


def _has(data: Any, path: KeyPath) -> bool:
    current = data
    for key in path:
        if not isinstance(current, Mapping) or key not in current:
            return False
        current = current[key]
    return True


def _pop(data: dict[str, Any], path: KeyPath) -> Any:
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    return parent.pop(path[-1])


def _put(data: dict[str, Any], path: KeyPath, value: Any) -> None:
    parent = data
    for key in path[:-1]:
        if not isinstance(parent.get(key), dict):
            parent[key] = {}
        parent = parent[key]
    parent[path[-1]] = value


# ---------------------------------------------------------------- rewriting a file (jdl migrate)


@dataclass(frozen=True)
class FileMigration:
    """The outcome of migrating one spec file: the steps taken (with lines) and the new text."""

    path: Path
    steps: tuple[tuple[int, MigrationStep], ...]  # (1-based line of the old key, step)
    conflicts: tuple[tuple[int, MigrationConflict], ...]
    text: str
    changed: bool

    def messages(self) -> list[str]:
        shown = display_path(self.path)
        lines = [f"{shown}:{line} {step.migration.old_name}: {step.message()}" for line, step in self.steps]
        lines += [f"{shown}:{line} {c.migration.old_name}: {c.message()}" for line, c in self.conflicts]
        return lines


def migrate_file(path: Path, *, write: bool = True) -> FileMigration:
    """Rewrite one spec file's old keys in place, keeping its comments and key order.

    Uses ruamel.yaml's round trip, which keeps comments, key order, quoting and
    flow style; a flow list written across several lines is re-wrapped. Nothing
    is written when there is nothing to migrate or when a conflict (old and new
    key both given) is found.
    """
    yaml_rt = _round_trip_yaml()
    try:
        original = path.read_text(encoding="utf-8")
    except OSError as error:
        raise JdlUserError.single(display_path(path), f"cannot be read: {error.strerror}") from None
    try:
        from ruamel.yaml.util import load_yaml_guess_indent

        _, indent, block_sequence_indent = load_yaml_guess_indent(original)
        data = yaml_rt.load(original)
    except Exception as error:  # ruamel raises many parser error types
        raise JdlUserError.single(display_path(path), f"cannot be read as YAML: {error}",
                                  hint="`jdl validate` shows where") from None
    if not isinstance(data, Mapping):
        raise JdlUserError.single(display_path(path), "the spec must be a mapping of keys")
    steps: list[tuple[int, MigrationStep]] = []
    conflicts: list[tuple[int, MigrationConflict]] = []
    for migration in pending(data, all_versions=True):
        line = _line_of(data, migration.old)
        if migration.new is not None and _has(data, migration.new):
            conflicts.append((line, MigrationConflict(migration)))
            continue
        value = _move_commented(data, migration)
        steps.append((line, MigrationStep(migration, value)))
    if conflicts:
        return FileMigration(path, tuple(steps), tuple(conflicts), original, False)
    version_outdated = declared_version(data) != SPEC_VERSION
    if not steps and not version_outdated:
        return FileMigration(path, (), (), original, False)
    if "spec_version" in data:
        data["spec_version"] = SPEC_VERSION
    else:
        data.insert(0, "spec_version", SPEC_VERSION)
    yaml_rt.indent(mapping=2, sequence=max(indent or 2, 2), offset=block_sequence_indent or 0)
    buffer = io.StringIO()
    yaml_rt.dump(data, buffer)
    text = buffer.getvalue()
    if write:
        _replace_file(path, text)
    return FileMigration(path, tuple(steps), (), text, True)


def _round_trip_yaml() -> Any:
    try:
        from ruamel.yaml import YAML
    except ImportError:
        raise JdlUserError.single(
            "jdl migrate", "needs the ruamel.yaml package to rewrite YAML keeping its comments",
            hint="install it: pip install ruamel.yaml",
        ) from None
    yaml_rt = YAML()
    yaml_rt.preserve_quotes = True
    yaml_rt.width = 100
    return yaml_rt


def _line_of(data: Any, path: KeyPath) -> int:
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    try:
        return int(parent.lc.key(path[-1])[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return 1


def _move_commented(data: Any, migration: KeyMigration) -> Any:
    """Rename or remove one key of a ruamel mapping in place; its comment goes with it."""
    from ruamel.yaml.comments import CommentedMap

    old_parent = data
    for key in migration.old[:-1]:
        old_parent = old_parent[key]
    old_key = migration.old[-1]
    position = list(old_parent.keys()).index(old_key)
    comment = old_parent.ca.items.pop(old_key, None)
    value = old_parent.pop(old_key)
    if migration.new is None:
        _keep_following_comments(old_parent, position, comment)
        _drop_if_emptied(data, migration.old[:-1])
        return value
    converted = migration.convert(value)
    if isinstance(converted, Mapping) and not isinstance(converted, CommentedMap):
        converted = CommentedMap(converted)
        converted.fa.set_flow_style()
    new_parent = data
    for key in migration.new[:-1]:
        if key not in new_parent:
            new_parent[key] = CommentedMap()
        new_parent = new_parent[key]
    new_key = migration.new[-1]
    if new_parent is old_parent:
        new_parent.insert(position, new_key, converted)
    else:
        new_parent[new_key] = converted
    if comment is not None:
        new_parent.ca.items[new_key] = comment
    return value


def _drop_if_emptied(data: Any, path: KeyPath) -> None:
    """Remove sections left empty by a removed key (`report: {}` says nothing)."""
    while path:
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if parent[path[-1]]:
            return
        del parent[path[-1]]
        path = path[:-1]


def _keep_following_comments(parent: Any, position: int, comment: Any) -> None:
    """A removed key's end-of-line comment goes; full-line comments after it stay (on the key before)."""
    if comment is None or len(comment) < 3 or comment[2] is None:
        return
    token = comment[2]
    _, _, rest = token.value.partition("\n")
    if not rest.strip() or position == 0:
        return
    from ruamel.yaml.tokens import CommentToken

    previous = list(parent.keys())[position - 1]
    kept = CommentToken("\n" + rest, token.start_mark, None)
    existing = parent.ca.items.get(previous)
    if existing is None:
        parent.ca.items[previous] = [None, None, kept, None]
    elif existing[2] is None:
        existing[2] = kept


def _replace_file(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
