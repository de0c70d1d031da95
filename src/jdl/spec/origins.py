"""Which file and line set each key of a merged spec (following `extends`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jdl.spec.problems import KeyPath, child_of, display_path, format_key_path
from jdl.spec.yaml_lines import YamlDocument


@dataclass(frozen=True)
class SpecOrigins:
    """Key lines of a spec and its bases, most specific first, over their merged data."""

    documents: tuple[YamlDocument, ...]
    merged: Mapping[str, Any]

    def origin(self, key_path: KeyPath) -> tuple[int, Path, int]:
        """(index in the chain, file, 1-based line) of the nearest existing key on `key_path`.

        Lists and scalars are replaced whole by a more specific file, so the most
        specific file that writes a key path present in the merged data set it.
        """
        present = _longest_present_prefix(self.merged, key_path)
        while present:
            for index, document in enumerate(self.documents):
                lines = document.lines.get(present)
                if lines is not None:
                    return index, document.path, lines.key
            present = present[:-1]  # a key only merged in by a YAML anchor may have no line
        return 0, self.documents[0].path, 1

    def locate(self, key_path: KeyPath) -> str:
        _, path, line = self.origin(key_path)
        return f"{display_path(path)}:{line}"

    def where(self, key_path: KeyPath) -> str:
        location = self.locate(key_path)
        return f"{location} {format_key_path(key_path)}" if key_path else location


def _longest_present_prefix(data: Any, key_path: KeyPath) -> KeyPath:
    present: list[Any] = []
    current = data
    for element in key_path:
        found, current = child_of(current, element)
        if not found:
            break
        present.append(element)
    return tuple(present)
