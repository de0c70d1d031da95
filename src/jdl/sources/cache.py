"""The feature cache: per-person tables computed from the national records, kept as Parquet.

An entry is a folder named by a content hash of everything its tables depend
on (the caller builds that key: input fingerprints, definitions, software).
It is written to a temporary folder and renamed into place, so a reader sees
a whole entry or none, and two runs filling the same entry at once both
succeed. Entries are used least-recently first out when the cache grows past
its size limit. A cache that cannot be written (read-only home, full disk)
only costs time, never a run.

Where: `--cache-dir`, else $JDL_CACHE_DIR, else $XDG_CACHE_HOME/jdl, else
~/.cache/jdl (the same folder the input fingerprints are cached in); feature
tables live in its `features/` folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CACHE_ENV = "JDL_CACHE_DIR"
MAX_SIZE_ENV = "JDL_CACHE_MAX_GB"
DEFAULT_MAX_GB = 20.0
FEATURES_FOLDER = "features"
# The other cache jdl keeps in the same folder (input fingerprints, jdl.audit).
FINGERPRINTS_FOLDER = "fingerprints"
_META = "meta.json"
_ENTRY_FORMAT = 1
_STRING = pd.StringDtype()


def cache_root(explicit: Path | str | None = None) -> Path:
    """The cache folder: `explicit`, else $JDL_CACHE_DIR, else $XDG_CACHE_HOME/jdl, else ~/.cache/jdl."""
    if explicit:
        return Path(explicit).expanduser()
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "jdl"


def cache_key(parts: Mapping[str, Any]) -> str:
    """SHA-256 of the parts as canonical JSON."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def frame_to_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def frame_from_arrow(table: pa.Table) -> pd.DataFrame:
    """The pandas frame of a cached table; the same conversion whether it was just computed or read back."""
    return table.to_pandas(types_mapper={pa.string(): _STRING, pa.large_string(): _STRING}.get)


@dataclass(frozen=True)
class CachedEntry:
    key: str
    tables: dict[str, pa.Table]
    meta: dict[str, Any]


class FeatureCache:
    """Parquet tables keyed by content hash, under `<root>/features/`."""

    def __init__(self, root: Path | str | None = None, *, max_bytes: int | None = None) -> None:
        self.root = cache_root(root)
        self.directory = self.root / FEATURES_FOLDER
        if max_bytes is None:
            try:
                max_bytes = int(float(os.environ.get(MAX_SIZE_ENV, DEFAULT_MAX_GB)) * 2**30)
            except ValueError:
                max_bytes = int(DEFAULT_MAX_GB * 2**30)
        self.max_bytes = max_bytes

    def _entry(self, key: str) -> Path:
        return self.directory / key

    def get(self, key: str, names: tuple[str, ...]) -> CachedEntry | None:
        """The entry's tables, or None (a missing, partial or unreadable entry is a miss)."""
        folder = self._entry(key)
        try:
            meta = json.loads((folder / _META).read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != _ENTRY_FORMAT or meta.get("key") != key:
                return None
            tables = {name: pq.read_table(folder / f"{name}.parquet") for name in names}
        except (OSError, ValueError, pa.ArrowException):
            return None
        with contextlib.suppress(OSError):
            os.utime(folder / _META)  # recently used: evicted last
        return CachedEntry(key, tables, meta)

    def put(self, key: str, tables: Mapping[str, pa.Table], meta: Mapping[str, Any]) -> bool:
        """Store an entry atomically; False when the cache could not be written."""
        target = self._entry(key)
        if (target / _META).exists():
            return True
        staging = self.directory / f".tmp-{uuid.uuid4().hex}"
        try:
            staging.mkdir(parents=True)
            for name, table in tables.items():
                pq.write_table(table, staging / f"{name}.parquet")
            record = {**meta, "format": _ENTRY_FORMAT, "key": key, "created": time.time(),
                      "tables": sorted(tables)}
            (staging / _META).write_text(json.dumps(record, sort_keys=True, default=str), encoding="utf-8")
            try:
                os.rename(staging, target)
            except OSError:
                if not (target / _META).exists():  # not a concurrent writer of the same entry
                    raise
        except OSError:
            return False
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._evict(keep=key)
        return True

    def entries(self) -> list[tuple[Path, float, int]]:
        """(folder, last used, bytes) of every complete entry."""
        found = []
        if not self.directory.is_dir():
            return found
        for folder in self.directory.iterdir():
            meta = folder / _META
            if folder.name.startswith(".") or not meta.is_file():
                continue
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            found.append((folder, meta.stat().st_mtime, size))
        return found

    def _evict(self, keep: str) -> None:
        entries = sorted(self.entries(), key=lambda entry: entry[1])
        total = sum(size for _, _, size in entries)
        for folder, _, size in entries:
            if total <= self.max_bytes:
                break
            if folder.name == keep:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= size

    def clear(self) -> tuple[int, int]:
        """Remove every feature entry (and leftovers of interrupted writes); (entries, bytes) removed."""
        entries = self.entries()
        removed = sum(size for _, _, size in entries)
        if self.directory.is_dir():
            shutil.rmtree(self.directory, ignore_errors=True)
        return len(entries), removed


def clear_cache(root: Path | str | None = None, *, include_fingerprints: bool = True) -> dict[str, int]:
    """Empty the feature cache (and, by default, the input-fingerprint cache next to it)."""
    cache = FeatureCache(root)
    entries, size = cache.clear()
    summary = {"feature_entries": entries, "bytes": size, "fingerprint_entries": 0}
    fingerprints = cache.root / FINGERPRINTS_FOLDER
    if include_fingerprints and fingerprints.is_dir():
        files = [p for p in fingerprints.rglob("*") if p.is_file()]
        summary["fingerprint_entries"] = len(files)
        summary["bytes"] += sum(p.stat().st_size for p in files)
        shutil.rmtree(fingerprints, ignore_errors=True)
    return summary


__all__ = [
    "CACHE_ENV",
    "CachedEntry",
    "FeatureCache",
    "cache_key",
    "cache_root",
    "clear_cache",
    "frame_from_arrow",
    "frame_to_arrow",
]
