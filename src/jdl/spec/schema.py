"""The spec's JSON Schema (for `jdl schema` and editors) and its canonical JSON form."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from jdl.durations import Duration
from jdl.spec.models import Spec

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _SpecJsonSchema(GenerateJsonSchema):
    def encode_default(self, dft: Any) -> Any:
        # A Duration default is written as in a spec ("1y"), not as the dataclass's fields.
        if isinstance(dft, Duration):
            return str(dft)
        return super().encode_default(dft)


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a spec as written in YAML, with titles and descriptions."""
    schema = Spec.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_SpecJsonSchema
    )
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        **schema,
        "title": "jdl evaluation spec",
        "description": (
            "One Justice-Data-Lab-style impact evaluation. Every key except id, title, "
            "organisation, data (and cohort.period with national records) has a default. "
            "`extends` names a base spec whose keys this one overrides."
        ),
    }


def canonical_spec_json(spec: Spec) -> str:
    """The resolved spec as canonical JSON: sorted keys, no spaces, aliases, UTF-8 text.

    `extends` is left out: once merged, the method is fully in the resolved spec, so a
    flattened copy and the original hash alike (the manifest records the chain of files).
    """
    return json.dumps(
        spec.model_dump(mode="json", by_alias=True, exclude={"extends"}),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def spec_sha256(spec: Spec) -> str:
    """SHA-256 (hex) of the canonical JSON of the resolved spec."""
    return hashlib.sha256(canonical_spec_json(spec).encode("utf-8")).hexdigest()
