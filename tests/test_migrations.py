"""Spec evolution: old keys are migrated with a warning naming the new key; `jdl migrate` rewrites files."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from jdl.cli import main
from jdl.errors import JdlUserError
from jdl.spec import load_spec
from jdl.spec.migrations import MIGRATIONS, SpecMigrationWarning, migrate_data, migrate_file
from jdl.spec.models import Spec

METHODOLOGY = Path(__file__).resolve().parents[1] / "configs" / "methodology" / "jdl-standard.yaml"
EXAMPLES = Path(__file__).resolve().parents[1] / "configs"

OLD_SPEC = f"""# An evaluation written before spec_version 1.
spec_version: 0
id: old-mentoring
title: Old Mentoring   # as published in 2019
organisation: Old Mentoring Trust
extends: {METHODOLOGY}
data:
  national_records: {{people: people.parquet, events: events.parquet}}
  cohort: cohort.csv
cohort:
  period: {{from: 2016-01-01, to: 2018-12-31}}
matching:
  caliper_sd: 0.25   # tighter than the standard 0.2? no: looser
  ratio: 3
outcomes:
  followup: 1y       # the JDL standard window
estimator:
  ci: 95
report:
  logo: logo.png
"""


def _write(tmp_path: Path, text: str, name: str = "old.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_old_keys_are_migrated_in_memory_with_a_warning_naming_the_new_key(tmp_path: Path) -> None:
    path = _write(tmp_path, OLD_SPEC)
    with pytest.warns(SpecMigrationWarning) as caught:
        loaded = load_spec(path)
    messages = [str(w.message) for w in caught]
    assert any("old.yaml:13 matching.caliper_sd: renamed to matching.caliper" in m for m in messages)
    assert any("outcomes.followup: renamed to outcomes.follow_up" in m for m in messages)
    assert any("estimator.ci: renamed to estimator.confidence" in m for m in messages)
    assert any("report.logo: removed" in m for m in messages)
    assert all("jdl migrate" in m for m in messages)
    spec = loaded.spec
    assert spec.spec_version == 1
    assert spec.matching.caliper is not None
    assert (spec.matching.caliper.width, spec.matching.caliper.scale) == (0.25, "logit_sd")
    assert str(spec.outcomes.follow_up) == "1y"
    assert spec.estimator.confidence == pytest.approx(0.95)
    assert spec.matching.ratio == 3
    assert len(loaded.migrated) == 4


def test_a_spec_without_spec_version_is_migrated_too(tmp_path: Path) -> None:
    path = _write(tmp_path, OLD_SPEC.replace("spec_version: 0\n", ""))
    with pytest.warns(SpecMigrationWarning) as caught:
        assert load_spec(path).spec.estimator.confidence == pytest.approx(0.95)
    assert any("outcomes.follow_up" in str(w.message) for w in caught)


def test_a_current_spec_needs_no_migration_and_gives_no_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_spec(EXAMPLES / "examples" / "demo.yaml")
    assert loaded.migrated == ()


def test_an_old_key_in_a_current_version_file_is_an_error_naming_the_new_key(tmp_path: Path) -> None:
    text = OLD_SPEC.replace("spec_version: 0", "spec_version: 1")
    with pytest.raises(JdlUserError) as raised:
        load_spec(_write(tmp_path, text))
    rendered = raised.value.render()
    assert "old.yaml:16 outcomes.followup: renamed to outcomes.follow_up" in rendered
    assert "Hint: write outcomes.follow_up" in rendered
    assert "extra" not in rendered.lower()  # not also reported as an unknown key


def test_old_and_new_key_together_is_a_conflict(tmp_path: Path) -> None:
    text = OLD_SPEC.replace("  followup: 1y", "  followup: 1y\n  follow_up: 2y")
    with pytest.raises(JdlUserError, match=r"both outcomes\.followup .* and outcomes\.follow_up"), \
            pytest.warns(SpecMigrationWarning):
        load_spec(_write(tmp_path, text))


def test_a_bad_value_under_an_old_key_is_reported_at_the_line_written(tmp_path: Path) -> None:
    text = OLD_SPEC.replace("caliper_sd: 0.25", "caliper_sd: -1")
    with pytest.raises(JdlUserError) as raised, pytest.warns(SpecMigrationWarning):
        load_spec(_write(tmp_path, text))
    assert "old.yaml:13 matching.caliper.width" in raised.value.render()


def test_confidence_given_as_a_share_is_kept() -> None:
    migrated, steps, conflicts = migrate_data({"spec_version": 0, "estimator": {"ci": 0.9}})
    assert migrated == {"spec_version": 1, "estimator": {"confidence": 0.9}}
    assert [s.migration.old for s in steps] == [("estimator", "ci")] and not conflicts


def _model_of(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_of, get_args(annotation)) if m is not None), None)


def test_every_migration_moves_an_unknown_key_to_a_current_key() -> None:
    for migration in MIGRATIONS:
        old_parent = _model_of(Spec.model_fields[migration.old[0]].annotation)
        assert old_parent is not None and migration.old[-1] not in old_parent.model_fields
        if migration.new is None:
            continue
        model: type[BaseModel] | None = Spec
        for key in migration.new:
            assert model is not None and key in model.model_fields, migration
            model = _model_of(model.model_fields[key].annotation)


def test_migrate_rewrites_the_file_keeping_comments(tmp_path: Path) -> None:
    pytest.importorskip("ruamel.yaml")
    path = _write(tmp_path, OLD_SPEC)
    result = migrate_file(path)
    text = path.read_text()
    assert result.changed and len(result.steps) == 4
    assert "# An evaluation written before spec_version 1." in text
    assert "# as published in 2019" in text
    assert "caliper: {width: 0.25, scale: logit_sd} # tighter than the standard 0.2? no: looser" in text
    assert "follow_up: 1y" in text and "# the JDL standard window" in text
    assert "confidence: 0.95" in text
    assert "spec_version: 1" in text
    assert "followup" not in text and "caliper_sd" not in text and "logo" not in text
    assert "report:" not in text  # emptied by the removal
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_spec(path).spec.matching.caliper.width == 0.25  # type: ignore[union-attr]
    assert not migrate_file(path).changed  # idempotent


def test_migrate_cli_check_and_rewrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ruamel.yaml")
    path = _write(tmp_path, OLD_SPEC)
    assert main(["migrate", "--check", str(path)]) == 1
    assert path.read_text() == OLD_SPEC
    captured = capsys.readouterr()
    assert "needs migration" in captured.out
    assert "matching.caliper_sd: renamed to matching.caliper" in captured.err
    assert main(["migrate", str(path)]) == 0
    assert "migrated:" in capsys.readouterr().out
    assert main(["migrate", "--check", str(path)]) == 0


def test_the_repository_specs_are_up_to_date() -> None:
    pytest.importorskip("ruamel.yaml")
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        assert not migrate_file(path, write=False).changed, path
