"""Safe YAML loading that remembers where every key and value was written.

PyYAML silently keeps the last of two equal keys in one mapping and forgets
line numbers once a document is constructed; a spec author needs both, so this
module composes the node tree, records the line of each key path and reports
duplicate keys, then constructs plain Python data with the safe constructor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jdl.errors import Problem
from jdl.spec.problems import KeyPath, display_path, format_key_path

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class KeyLines:
    """1-based lines of a key (or list item) and of its value."""

    key: int
    value: int


@dataclass(frozen=True)
class YamlDocument:
    """One YAML file: its data (None when unreadable), key lines and problems found."""

    path: Path
    data: Any
    lines: dict[KeyPath, KeyLines] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    @property
    def readable(self) -> bool:
        """True when the file parsed into a mapping (problems may still exist, e.g. duplicates)."""
        return isinstance(self.data, dict)


class LineTrackingLoader(yaml.SafeLoader):
    """SafeLoader that records the line of each key path and flags duplicate keys."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.key_lines: dict[KeyPath, KeyLines] = {}
        self.duplicates: list[tuple[KeyPath, int, int]] = []  # (path, first line, repeat line)

    def load_with_lines(self) -> Any:
        """Parse the single document, recording key lines before construction."""
        root = self.get_single_node()
        if root is None:
            return None
        self._record(root, (), frozenset())
        return self.construct_document(root)

    def _record(self, node: yaml.Node, path: KeyPath, on_stack: frozenset[int]) -> None:
        # Aliases can make the node graph cyclic; never walk into a node already being walked.
        if id(node) in on_stack:
            return
        on_stack = on_stack | {id(node)}
        if isinstance(node, yaml.MappingNode):
            self._record_mapping(node, path, on_stack)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                item_path = (*path, index)
                line = item.start_mark.line + 1
                self.key_lines[item_path] = KeyLines(line, line)
                self._record(item, item_path, on_stack)

    def _record_mapping(
        self, node: yaml.MappingNode, path: KeyPath, on_stack: frozenset[int]
    ) -> None:
        first_line: dict[Any, int] = {}
        merged_sources: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged_sources.append(value_node)
                continue
            key = self._key_value(key_node)
            line = key_node.start_mark.line + 1
            if key in first_line:
                self.duplicates.append(((*path, key), first_line[key], line))
            first_line.setdefault(key, line)
            self.key_lines[(*path, key)] = KeyLines(line, value_node.start_mark.line + 1)
            self._record(value_node, (*path, key), on_stack)
        # Keys brought in by `<<: *anchor` point at the anchor, unless written here as well.
        for source in merged_sources:
            mappings = source.value if isinstance(source, yaml.SequenceNode) else [source]
            for mapping in mappings:
                if not isinstance(mapping, yaml.MappingNode):
                    continue
                for key_node, value_node in mapping.value:
                    if key_node.tag == _MERGE_TAG:
                        continue
                    key = self._key_value(key_node)
                    if (*path, key) not in self.key_lines:
                        line = key_node.start_mark.line + 1
                        self.key_lines[(*path, key)] = KeyLines(
                            line, value_node.start_mark.line + 1
                        )
                        self._record(value_node, (*path, key), on_stack)

    def construct_timestamp_or_text(self, node: yaml.ScalarNode) -> Any:
        """An impossible date such as 2018-13-31 stays text, for validation to report with its line."""
        try:
            return self.construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)

    def _key_value(self, key_node: yaml.Node) -> Any:
        if isinstance(key_node, yaml.ScalarNode):
            return self.construct_object(key_node)
        return f"<{key_node.id} key at line {key_node.start_mark.line + 1}>"


LineTrackingLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", LineTrackingLoader.construct_timestamp_or_text
)


def read_yaml(path: Path) -> YamlDocument:
    """Read one YAML mapping; problems (syntax, duplicates, not a mapping) are returned, not raised."""
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _failed(path, Problem(shown, "spec file not found"))
    except IsADirectoryError:
        return _failed(path, Problem(shown, "is a directory, not a spec file"))
    except UnicodeDecodeError as error:
        return _failed(
            path,
            Problem(shown, f"is not UTF-8 text ({error.reason} at byte {error.start})"),
        )
    except OSError as error:
        return _failed(path, Problem(shown, f"cannot be read: {error.strerror}"))

    loader = LineTrackingLoader(text)
    try:
        data = loader.load_with_lines()
    except yaml.YAMLError as error:
        return _failed(path, _syntax_problem(shown, error))
    except (ValueError, RecursionError) as error:
        return _failed(path, Problem(shown, f"cannot be read as YAML: {error}"))
    finally:
        loader.dispose()

    problems = [
        Problem(
            f"{shown}:{line} {format_key_path(key_path)}",
            f"key {key_path[-1]!r} appears more than once in the same mapping "
            f"(first at line {first}); YAML would silently keep only the last",
            hint="remove or merge the repeated key",
        )
        for key_path, first, line in loader.duplicates
    ]
    if data is None:
        problems.append(
            Problem(
                f"{shown}:1", "the spec is empty", allowed="a mapping of keys, e.g. `id: my-study`"
            )
        )
    elif not isinstance(data, dict):
        problems.append(
            Problem(
                f"{shown}:1",
                f"the spec must be a mapping of keys (key: value), not a {_yaml_kind(data)}",
                allowed="a mapping of keys, e.g. `id: my-study`",
            )
        )
    return YamlDocument(path, data, loader.key_lines, tuple(problems))


def _failed(path: Path, problem: Problem) -> YamlDocument:
    return YamlDocument(path, None, {}, (problem,))


def _syntax_problem(shown: str, error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark is not None else shown
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    context_mark = getattr(error, "context_mark", None)
    message = f"YAML syntax error: {problem}"
    if context:
        message += f" ({context}"
        if context_mark is not None and context_mark is not mark:
            message += f" started at line {context_mark.line + 1}, column {context_mark.column + 1}"
        message += ")"
    return Problem(where, message, hint=_syntax_hint(problem))


def _syntax_hint(problem: str) -> str | None:
    if "\\t" in problem or "tab" in problem:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "check the indentation, or quote a value that contains ': '"
    if "could not determine a constructor" in problem:
        return "only plain YAML is allowed in a spec (no !!python or custom tags)"
    return None


def _yaml_kind(data: object) -> str:
    if isinstance(data, list):
        return "list"
    return f"single value ({data!r})"
