"""The run manifest: what was run, on what, with what, and how long it took."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "jdl",
    "numpy",
    "pandas",
    "pyarrow",
    "dask",
    "distributed",
    "scipy",
    "statsmodels",
    "scikit-learn",
    "causalml",
    "pydantic",
    "PyYAML",
    "Jinja2",
    "matplotlib",
    "rapidfuzz",
)

_CHUNK = 1 << 20


def file_sha256(path: str) -> str:
    import fsspec

    digest = hashlib.sha256()
    with fsspec.open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint_files(files: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Content hashes of every file of an input, and one hash over all of them."""
    per_file = {f: file_sha256(f) for f in files}
    combined = hashlib.sha256("".join(f"{Path(f).name}:{h}\n" for f, h in per_file.items()).encode())
    return {"sha256": combined.hexdigest(), "files": per_file}


def package_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def platform_facts() -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "system": platform.system(),
        "machine": platform.machine(),
    }


def git_state(path: Path) -> dict[str, Any]:
    """Commit and dirty flag of the repository holding `path` (the spec), if any."""
    folder = path.resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"repository": None, "commit": None, "dirty": None}
    status = git("status", "--porcelain")
    return {"repository": git("rev-parse", "--show-toplevel"), "commit": commit, "dirty": bool(status)}
