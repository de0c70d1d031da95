"""The run manifest: what was run, on what, with what, and how long it took."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from jdl.audit.fingerprints import file_sha256, fingerprint_files

__all__ = [
    "TRACKED_PACKAGES",
    "file_sha256",
    "fingerprint_files",
    "git_state",
    "package_versions",
    "platform_facts",
]

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
