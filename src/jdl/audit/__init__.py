"""Run records: canonical JSON, manifest facts, atomic run-directory writing, fingerprints,
and the audit verbs' logic (reproduce, diff)."""

from jdl.audit.canonical import canonical_json, normalise
from jdl.audit.fingerprints import FingerprintCache, default_cache_dir
from jdl.audit.manifest import fingerprint_files, git_state, package_versions, platform_facts
from jdl.audit.outputs import RunWriter

__all__ = [
    "FingerprintCache",
    "RunWriter",
    "canonical_json",
    "default_cache_dir",
    "fingerprint_files",
    "git_state",
    "normalise",
    "package_versions",
    "platform_facts",
]
