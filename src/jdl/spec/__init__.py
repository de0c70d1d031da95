"""The evaluation spec: models, loading with line numbers and `extends`, schema."""

from jdl.spec.loader import LoadedSpec, deep_merge, load_spec, validate_specs
from jdl.spec.models import Spec
from jdl.spec.schema import canonical_spec_json, spec_json_schema, spec_sha256

__all__ = [
    "LoadedSpec",
    "Spec",
    "canonical_spec_json",
    "deep_merge",
    "load_spec",
    "spec_json_schema",
    "spec_sha256",
    "validate_specs",
]
