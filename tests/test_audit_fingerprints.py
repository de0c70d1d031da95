"""Input fingerprints: SHA-256 per file, cached per file version (path + size + mtime_ns)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from jdl.audit import FingerprintCache, fingerprint_files
from jdl.audit.fingerprints import default_cache_dir

OLD = 1_500_000_000  # a modification time long settled (2017)


def _file(path: Path, content: bytes, mtime: int = OLD) -> Path:
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))
    return path


def test_hashes_are_the_file_contents_and_the_combined_hash_uses_names(tmp_path: Path) -> None:
    a = _file(tmp_path / "a.parquet", b"alpha")
    b = _file(tmp_path / "b.parquet", b"beta")
    cache = FingerprintCache(tmp_path / "cache")
    result = fingerprint_files([str(a), str(b)], cache=cache)
    expected_a = hashlib.sha256(b"alpha").hexdigest()
    expected_b = hashlib.sha256(b"beta").hexdigest()
    assert result["files"] == {str(a): expected_a, str(b): expected_b}
    combined = hashlib.sha256(f"a.parquet:{expected_a}\nb.parquet:{expected_b}\n".encode()).hexdigest()
    assert result["sha256"] == combined


def test_second_call_is_served_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _file(tmp_path / "events.parquet", b"x" * 1000)
    cache = FingerprintCache(tmp_path / "cache")
    first = cache.sha256(str(data))
    assert (cache.hits, cache.misses) == (0, 1)

    def no_reading(path: str) -> str:
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr("jdl.audit.fingerprints.file_sha256", no_reading)
    fresh = FingerprintCache(tmp_path / "cache")  # a new process sees the same entries
    assert fresh.sha256(str(data)) == first
    assert (fresh.hits, fresh.misses) == (1, 0)


def test_a_new_version_of_the_file_is_hashed_again(tmp_path: Path) -> None:
    data = _file(tmp_path / "events.parquet", b"version-1")
    cache = FingerprintCache(tmp_path / "cache")
    assert cache.sha256(str(data)) == hashlib.sha256(b"version-1").hexdigest()
    _file(data, b"version-2", mtime=OLD + 60)  # same size, new content and mtime
    assert cache.sha256(str(data)) == hashlib.sha256(b"version-2").hexdigest()
    assert cache.misses == 2


def test_a_file_just_written_is_not_cached_until_it_settles(tmp_path: Path) -> None:
    data = tmp_path / "fresh.csv"
    data.write_bytes(b"just written")
    cache = FingerprintCache(tmp_path / "cache")
    cache.sha256(str(data))
    cache.sha256(str(data))
    assert cache.hits == 0 and cache.misses == 2
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_corrupt_or_foreign_entries_are_ignored(tmp_path: Path) -> None:
    data = _file(tmp_path / "people.parquet", b"people")
    cache = FingerprintCache(tmp_path / "cache")
    cache.sha256(str(data))
    [entry] = list((tmp_path / "cache").rglob("*.json"))
    entry.write_text("{not json")
    assert cache.sha256(str(data)) == hashlib.sha256(b"people").hexdigest()
    record = json.loads(entry.read_text())  # rewritten whole
    record["sha256"] = "0" * 64
    record["size"] = 1  # an entry for another version of the file
    entry.write_text(json.dumps(record))
    assert cache.sha256(str(data)) == hashlib.sha256(b"people").hexdigest()


def test_an_unwritable_cache_only_costs_time(tmp_path: Path) -> None:
    data = _file(tmp_path / "cohort.csv", b"cohort")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cache = FingerprintCache(blocker / "fingerprints")
    assert cache.sha256(str(data)) == hashlib.sha256(b"cohort").hexdigest()


def test_concurrent_fingerprinting_agrees_and_leaves_whole_entries(tmp_path: Path) -> None:
    files = [_file(tmp_path / f"part-{i}.parquet", os.urandom(50_000)) for i in range(8)]
    expected = {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    results: list[dict[str, str]] = []

    def work() -> None:
        results.append(fingerprint_files([str(f) for f in files],
                                         cache=FingerprintCache(tmp_path / "cache"))["files"])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 8
    entries = list((tmp_path / "cache").rglob("*.json"))
    assert len(entries) == len(files)
    assert not list((tmp_path / "cache").rglob("*.tmp"))
    assert {json.loads(e.read_text())["sha256"] for e in entries} == set(expected.values())


def test_cache_folder_follows_jdl_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JDL_CACHE_DIR", str(tmp_path / "jdl-cache"))
    assert default_cache_dir() == tmp_path / "jdl-cache"
    data = _file(tmp_path / "x.csv", b"x")
    fingerprint_files([str(data)])
    assert list((tmp_path / "jdl-cache" / "fingerprints").rglob("*.json"))
