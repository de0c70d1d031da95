"""Run records: canonical JSON, manifest facts and atomic run-directory writing."""

from jdl.audit.canonical import canonical_json, normalise
from jdl.audit.manifest import fingerprint_files, git_state, package_versions, platform_facts
from jdl.audit.outputs import RunWriter

__all__ = [
    "RunWriter",
    "canonical_json",
    "fingerprint_files",
    "git_state",
    "normalise",
    "package_versions",
    "platform_facts",
]
