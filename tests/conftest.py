"""Shared fixtures: one small synthetic national record set per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

E2E_PEOPLE = 150_000
E2E_SEED = 7


@pytest.fixture(scope="session")
def synthetic_records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic national records with planted effects, generated once per session."""
    from jdl.synth import generate

    out = tmp_path_factory.mktemp("synthetic")
    generate(E2E_PEOPLE, out, seed=E2E_SEED)
    return out


@pytest.fixture(scope="session")
def truth(synthetic_records: Path) -> dict:
    return json.loads((synthetic_records / "truth.json").read_text())


def write_spec(path: Path, records: Path, *, cohort: str = "large", extra: str = "") -> Path:
    """A record-mode spec on the synthetic data, extending the repository's standard methodology."""
    methodology = Path(__file__).resolve().parents[1] / "configs" / "methodology" / "jdl-standard.yaml"
    path.write_text(
        f"""spec_version: 1
id: test-{cohort}
title: Test evaluation ({cohort})
organisation: Test Organisation
extends: {methodology}
data:
  national_records:
    people: {records / "national" / "people"}
    events: {records / "national" / "events"}
  cohort: {records / "cohorts" / f"{cohort}.csv"}
cohort:
  period: {{from: 2016-01-01, to: 2018-12-31}}
{extra}"""
    )
    return path


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never read or write the user's real jdl cache (feature tables, fingerprints)."""
    import os

    os.environ["JDL_CACHE_DIR"] = str(tmp_path_factory.mktemp("jdl-cache"))
