"""Content fingerprints of input files, hashed once per file version.

National records run to gigabytes, and the same files are fingerprinted by
every run and every spec of a batch. A file's SHA-256 is therefore cached,
keyed by its absolute path, size and modification time (nanoseconds): a new
version of the file changes the key, so a stale hash is never served.

The cache is a folder of small JSON entries (one per file version) written
atomically (temporary file + rename), so concurrent runs may read and write it
at the same time: a reader sees a whole entry or none, and two writers of one
entry write the same bytes. Entries are checked against the file's stat before
use; a corrupt or foreign entry is ignored and recomputed. A cache that cannot
be written (read-only home, full disk) only costs time, never a run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_ENV = "JDL_CACHE_DIR"
_CHUNK = 1 << 20
# A file modified within this many seconds may be written again within the same
# mtime tick (coarse-timestamp filesystems), so its hash is not cached yet.
_SETTLE_SECONDS = 2.0
_ENTRY_FORMAT = 1
_MAX_HASH_THREADS = 8


def default_cache_dir() -> Path:
    """$JDL_CACHE_DIR, else $XDG_CACHE_HOME/jdl, else ~/.cache/jdl."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "jdl"


def fingerprint_cache_dir() -> Path:
    return default_cache_dir() / "fingerprints"


@dataclass(frozen=True)
class FileVersion:
    """What identifies one version of a file without reading it."""

    location: str
    size: int
    stamp: str  # mtime_ns for local files, the store's version tag (ETag, mtime) otherwise

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.location}\0{self.size}\0{self.stamp}".encode()).hexdigest()


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes (a local path or an fsspec URL), never cached."""
    digest = hashlib.sha256()
    if _is_url(path):
        import fsspec

        with fsspec.open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    else:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


class FingerprintCache:
    """SHA-256 of files, computed once per file version and kept in `directory`."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else fingerprint_cache_dir()
        self.hits = 0
        self.misses = 0
        self._counting = threading.Lock()  # files may be hashed on several threads at once

    def _count(self, hit: bool) -> None:
        with self._counting:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def sha256(self, path: str) -> str:
        before = _file_version(path)
        if before is None:
            self._count(hit=False)
            return file_sha256(path)
        cached = self._read(before)
        if cached is not None:
            self._count(hit=True)
            return cached
        self._count(hit=False)
        digest = file_sha256(path)
        # Cache only a version that did not change while it was read and has settled.
        if _file_version(path) == before and _settled(path):
            self._write(before, digest)
        return digest

    def _entry_path(self, version: FileVersion) -> Path:
        key = version.key
        return self.directory / key[:2] / f"{key}.json"

    def _read(self, version: FileVersion) -> str | None:
        try:
            entry = json.loads(self._entry_path(version).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        expected = {"format": _ENTRY_FORMAT, "location": version.location, "size": version.size,
                    "stamp": version.stamp}
        if not isinstance(entry, dict) or any(entry.get(k) != v for k, v in expected.items()):
            return None
        digest = entry.get("sha256")
        if isinstance(digest, str) and len(digest) == 64:
            return digest
        return None

    def _write(self, version: FileVersion, digest: str) -> None:
        target = self._entry_path(version)
        entry = {"format": _ENTRY_FORMAT, "location": version.location, "size": version.size,
                 "stamp": version.stamp, "sha256": digest}
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".entry-", suffix=".tmp")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(entry, out, sort_keys=True)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError:
            return


def fingerprint_files(
    files: Iterable[str], *, cache: FingerprintCache | None = None
) -> dict[str, Any]:
    """Content hashes of every file of an input, and one hash over all of them.

    `files` keep the spelling they were given (as the manifest shows them); the
    combined hash uses base names so that moving a data folder keeps it.
    """
    store = cache if cache is not None else FingerprintCache()
    names = [str(f) for f in files]
    # hashing and reading release the GIL: files are hashed on as many threads as there are CPUs
    workers = min(len(names), os.cpu_count() or 1, _MAX_HASH_THREADS)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="jdl-fingerprint") as pool:
            digests = list(pool.map(store.sha256, names))
    else:
        digests = [store.sha256(name) for name in names]
    per_file = dict(zip(names, digests, strict=True))
    combined = hashlib.sha256("".join(f"{Path(f).name}:{h}\n" for f, h in per_file.items()).encode())
    return {"sha256": combined.hexdigest(), "files": per_file}


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _file_version(path: str) -> FileVersion | None:
    if _is_url(path):
        return _remote_version(path)
    local = path.removeprefix("file://")
    try:
        stat = os.stat(local)
    except OSError:
        return None
    return FileVersion(os.path.abspath(local), stat.st_size, str(stat.st_mtime_ns))


def _remote_version(url: str) -> FileVersion | None:
    """A remote object's version from its store's metadata; None (no caching) when it has none."""
    try:
        import fsspec

        filesystem, inner = fsspec.core.url_to_fs(url)
        info = filesystem.info(inner)
    except Exception:  # any store error: fall back to hashing, which reports it properly
        return None
    stamp = next((str(info[k]) for k in ("ETag", "etag", "md5", "mtime", "LastModified",
                                         "last_modified", "updated") if info.get(k)), None)
    size = info.get("size")
    if stamp is None or not isinstance(size, int):
        return None
    return FileVersion(url, size, stamp)


def _settled(path: str) -> bool:
    if _is_url(path):
        return True
    try:
        modified = os.stat(path.removeprefix("file://")).st_mtime
    except OSError:
        return False
    return time.time() - modified >= _SETTLE_SECONDS
