"""The spec's JSON Schema and its canonical JSON / SHA-256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from jdl.spec import Spec, canonical_spec_json, load_spec, spec_json_schema, spec_sha256

FIXTURES = Path(__file__).parent / "fixtures" / "specs"


def _described(schema: dict[str, Any], node: dict[str, Any]) -> bool:
    if "description" in node:
        return True
    ref = node.get("$ref")
    return ref is not None and "description" in schema["$defs"][ref.rsplit("/", 1)[1]]


def test_schema_is_json_with_a_dialect_title_and_description() -> None:
    schema = spec_json_schema()
    round_tripped = json.loads(json.dumps(schema))

    assert round_tripped == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "jdl evaluation spec"
    assert schema["description"]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"id", "title", "organisation", "data"}


def test_every_section_and_key_has_a_description() -> None:
    schema = spec_json_schema()
    sections = {"Spec": schema, **schema["$defs"]}
    undescribed = [
        f"{section}.{key}"
        for section, definition in sections.items()
        for key, node in definition.get("properties", {}).items()
        if not _described(schema, node)
    ]

    assert undescribed == []
    assert all("description" in definition for definition in schema["$defs"].values())


def test_schema_matches_the_yaml_users_write() -> None:
    schema = spec_json_schema()
    definitions = schema["$defs"]

    assert set(definitions["Period"]["properties"]) == {"from", "to"}  # alias, not from_
    assert definitions["OutcomesSpec"]["properties"]["follow_up"]["default"] == "1y"
    assert definitions["OutcomesSpec"]["properties"]["waiting_period"]["default"] == "6m"
    assert definitions["MatchingSpec"]["properties"]["estimand"]["enum"] == ["ATT", "ATC", "ATE"]
    covariate_forms = schema["properties"]["covariates"]["items"]["anyOf"]
    assert {"type": "string"} in covariate_forms  # `- sex` as well as `- {name: sex}`
    assert {"$ref": "#/$defs/CovariateSpec"} in covariate_forms
    variance_forms = definitions["EstimatorSpec"]["properties"]["variance"]["anyOf"]
    assert variance_forms[0]["enum"] == ["pair_cluster_robust", "robust", "bootstrap"]


def test_canonical_json_is_sorted_compact_and_uses_spec_spelling() -> None:
    spec = load_spec(FIXTURES / "minimal_records.yaml").spec
    text = canonical_spec_json(spec)
    data = json.loads(text)

    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert data["cohort"]["period"] == {"from": "2016-01-01", "to": "2018-12-31"}
    assert data["outcomes"]["follow_up"] == "1y"
    assert data["matching"]["ratio"] == 1  # defaults are part of the resolved spec
    assert Spec.model_validate(data) == spec  # the canonical form loads back to the same spec


def test_canonical_json_keeps_non_ascii_text(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    text = (FIXTURES / "minimal_table.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("Manpower Demonstration", "Café Démonstration"), encoding="utf-8")

    assert "Café Démonstration" in canonical_spec_json(load_spec(path).spec)


def test_sha256_is_the_digest_of_the_canonical_json() -> None:
    spec = load_spec(FIXTURES / "minimal_records.yaml").spec
    expected = hashlib.sha256(canonical_spec_json(spec).encode("utf-8")).hexdigest()

    assert spec_sha256(spec) == expected
    assert len(expected) == 64


def test_sha256_is_stable_across_key_order_in_the_yaml() -> None:
    first = load_spec(FIXTURES / "key_order_a.yaml").spec
    second = load_spec(FIXTURES / "key_order_b.yaml").spec

    assert canonical_spec_json(first) == canonical_spec_json(second)
    assert spec_sha256(first) == spec_sha256(second)


def test_sha256_changes_when_a_value_changes(tmp_path: Path) -> None:
    original = FIXTURES / "key_order_a.yaml"
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        original.read_text(encoding="utf-8").replace("ratio: 2", "ratio: 3"), encoding="utf-8"
    )

    assert spec_sha256(load_spec(original).spec) != spec_sha256(load_spec(changed).spec)


def test_hash_ignores_extends_once_merged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from jdl.spec import load_spec, spec_sha256

    base = tmp_path / "base.yaml"
    base.write_text("matching: {ratio: 3}\n")
    body = (
        "spec_version: 1\nid: x\ntitle: X\norganisation: O\n"
        "data: {national_records: {people: p, events: e}, cohort: c.csv}\n"
        "cohort: {period: {from: 2016-01-01, to: 2016-12-31}}\n"
    )
    extended = tmp_path / "extended.yaml"
    extended.write_text(body + "extends: base.yaml\n")
    flat = tmp_path / "flat.yaml"
    flat.write_text(body + "matching: {ratio: 3}\n")
    assert spec_sha256(load_spec(extended).spec) == spec_sha256(load_spec(flat).spec)
    flat.write_text(body + "matching: {ratio: 2}\n")
    assert spec_sha256(load_spec(extended).spec) != spec_sha256(load_spec(flat).spec)
