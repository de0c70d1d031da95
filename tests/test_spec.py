"""Loading specs: defaults, `extends` chains, key locations, validate_specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from jdl.durations import Duration
from jdl.errors import EXIT_BAD_INPUT, JdlUserError, Problem
from jdl.spec import LoadedSpec, deep_merge, load_spec, validate_specs
from jdl.spec.models import DEFAULT_COVARIATES, DEFAULT_MEASURES

FIXTURES = Path(__file__).parent / "fixtures" / "specs"


@pytest.fixture
def in_fixtures(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the fixtures folder so `where` strings are short relative paths."""
    monkeypatch.chdir(FIXTURES)
    return FIXTURES


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_record_spec_gets_documented_defaults() -> None:
    loaded = load_spec(FIXTURES / "minimal_records.yaml")
    spec = loaded.spec

    assert spec.spec_version == 1
    assert spec.extends is None
    assert spec.data.mode == "records"
    assert spec.linkage.rules == ["pnc_id", "exact_identity", "fuzzy_identity"]
    assert spec.linkage.fuzzy_threshold == 0.92
    assert spec.cohort.index == "first_index_after_intervention_start"
    assert spec.cohort.index_window == Duration(1, "y")
    assert spec.cohort.min_size == 60
    assert spec.cohort.min_age == 18
    assert spec.comparison_pool.regions == "national"
    assert spec.covariate_names == list(DEFAULT_COVARIATES)
    assert spec.matching.method == "nearest_neighbour"
    assert spec.matching.propensity.model_name == "logistic"
    assert spec.matching.estimand == "ATT"
    assert spec.matching.ratio == 1
    assert spec.matching.replace is False
    assert spec.matching.caliper is None
    assert spec.matching.exact == []
    assert spec.matching.order == "largest"
    assert spec.matching.seed == 2013
    assert spec.outcomes.follow_up == Duration(1, "y")
    assert spec.outcomes.waiting_period == Duration(6, "m")
    assert [m.name for m in spec.outcomes.measures] == list(DEFAULT_MEASURES)
    assert spec.outcomes.primary == "reoffending_rate"
    assert spec.estimator.method == "weighted_difference"
    assert spec.estimator.confidence == 0.95
    assert spec.estimator.variance.method == "pair_cluster_robust"
    assert spec.report.template == "jdl_standard"
    assert spec.report.formats == ["html", "markdown", "json"]


def test_loaded_spec_keeps_raw_mapping_and_chain_without_defaults() -> None:
    path = FIXTURES / "minimal_records.yaml"
    loaded = load_spec(path)

    assert loaded.path == path
    assert loaded.chain == (path,)
    assert set(loaded.merged) == {"id", "title", "organisation", "data", "cohort"}
    assert "matching" not in loaded.merged


def test_data_paths_stay_as_written_and_are_not_checked() -> None:
    spec = load_spec(FIXTURES / "minimal_records.yaml").spec

    assert spec.data.cohort == "data/cohorts/example.csv"
    assert spec.data.national_records is not None
    assert spec.data.national_records.people == "data/national/people"
    assert not (FIXTURES / "data").exists()


def test_table_mode_spec_needs_no_period_or_national_records() -> None:
    spec = load_spec(FIXTURES / "minimal_table.yaml").spec

    assert spec.data.mode == "table"
    assert (spec.data.table, spec.data.id, spec.data.treatment) == (
        "data/lalonde.csv",
        "unit",
        "treat",
    )
    assert spec.cohort.period is None
    assert spec.covariate_names == ["age", "educ", "re74", "re75"]
    assert spec.outcomes.primary == "re78"


def test_extends_merges_bases_with_the_more_specific_file_winning(in_fixtures: Path) -> None:
    loaded = load_spec("examples/extended.yaml")
    spec = loaded.spec

    assert spec.matching.ratio == 3  # top overrides jdl-standard's 5
    assert spec.matching.replace is True  # from jdl-standard
    assert spec.matching.caliper is not None
    assert spec.matching.caliper.width == 0.1  # top, inside a mapping merged key by key
    assert spec.matching.caliper.scale == "logit_sd"  # from jdl-standard
    assert spec.matching.exact == ["sex"]
    assert spec.linkage.fuzzy_threshold == 0.95  # jdl-standard overrides common's 0.9
    assert spec.linkage.rules == ["pnc_id", "exact_identity"]  # from common, two levels down
    assert spec.report.formats == ["html", "json"]
    assert spec.covariate_names == ["age_at_index", "sex", "prior_proven_offences"]
    assert loaded.merged["extends"] == "methodology/jdl-standard.yaml"
    assert spec.extends == "methodology/jdl-standard.yaml"
    assert loaded.chain == (
        Path("examples/extended.yaml"),
        in_fixtures / "methodology" / "jdl-standard.yaml",
        in_fixtures / "methodology" / "common.yaml",
    )


def test_locate_names_the_file_and_line_that_set_each_key(in_fixtures: Path) -> None:
    loaded = load_spec("examples/extended.yaml")

    assert loaded.locate(("matching", "ratio")) == "examples/extended.yaml:11"
    assert loaded.locate(("matching", "caliper", "width")) == "examples/extended.yaml:13"
    assert loaded.locate(("matching", "caliper", "scale")) == "methodology/jdl-standard.yaml:7"
    assert loaded.locate(("matching", "replace")) == "methodology/jdl-standard.yaml:6"
    assert loaded.locate(("linkage", "fuzzy_threshold")) == "methodology/jdl-standard.yaml:3"
    assert loaded.locate(("linkage", "rules")) == "methodology/common.yaml:3"
    assert loaded.locate(("covariates", 2)) == "methodology/jdl-standard.yaml:12"
    assert loaded.locate(("cohort", "period", "to")) == "examples/extended.yaml:9"
    assert loaded.where(("matching", "ratio")) == "examples/extended.yaml:11 matching.ratio"


def test_locate_falls_back_to_the_nearest_key_then_the_spec_file(in_fixtures: Path) -> None:
    loaded = load_spec("examples/extended.yaml")

    assert loaded.locate(("matching", "order")) == "examples/extended.yaml:10"
    assert loaded.locate(("report", "template")) == "methodology/common.yaml:5"
    assert loaded.locate(("covariates", 7)) == "methodology/jdl-standard.yaml:9"
    assert loaded.locate(("estimator", "confidence")) == "examples/extended.yaml:1"
    assert loaded.locate(()) == "examples/extended.yaml:1"


def test_list_in_a_more_specific_file_replaces_the_base_list(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "covariates: [age_at_index, sex, ethnicity, copas_rate]\n")
    top = write(
        tmp_path,
        "top.yaml",
        "extends: base.yaml\nid: t\ntitle: T\norganisation: O\n"
        "data: {table: t.csv, id: i, treatment: d}\ncovariates:\n  - sex\n",
    )
    loaded = load_spec(top)

    assert loaded.spec.covariate_names == ["sex"]
    assert loaded.locate(("covariates", 0)).endswith("top.yaml:7")
    assert loaded.locate(("covariates", 3)).endswith("top.yaml:6")


def test_where_is_absolute_when_the_spec_is_outside_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load_spec(FIXTURES / "minimal_records.yaml")

    assert loaded.locate(("cohort", "period")) == f"{FIXTURES / 'minimal_records.yaml'}:9"


def test_deep_merge_merges_mappings_and_replaces_lists_scalars_and_nulls() -> None:
    base = {"a": {"b": 1, "c": [1, 2, 3], "d": {"e": 1}}, "f": 1, "g": {"h": 1}}
    override = {"a": {"c": [9], "d": {"x": 2}}, "f": {"now": "a mapping"}, "g": None}

    assert deep_merge(base, override) == {
        "a": {"b": 1, "c": [9], "d": {"e": 1, "x": 2}},
        "f": {"now": "a mapping"},
        "g": None,
    }
    assert base["a"]["c"] == [1, 2, 3]  # inputs are not modified


def test_extends_cycle_is_an_error_naming_the_chain(in_fixtures: Path) -> None:
    with pytest.raises(JdlUserError) as caught:
        load_spec("cycle/a.yaml")

    assert caught.value.exit_status == EXIT_BAD_INPUT
    [problem] = caught.value.problems
    assert problem.where == "cycle/c.yaml:2 extends"
    assert "cycle/a.yaml -> cycle/b.yaml -> cycle/c.yaml -> cycle/a.yaml" in problem.message


def test_a_spec_extending_itself_is_a_cycle(tmp_path: Path) -> None:
    path = write(tmp_path, "self.yaml", "id: x\nextends: self.yaml\n")

    with pytest.raises(JdlUserError, match="cycle"):
        load_spec(path)


def test_missing_base_names_the_file_and_the_places_searched(in_fixtures: Path) -> None:
    with pytest.raises(JdlUserError) as caught:
        load_spec("examples/missing_base.yaml")

    [problem] = caught.value.problems
    assert problem.where == "examples/missing_base.yaml:4 extends"
    assert "'methodology/no-such-standard.yaml' not found" in problem.message
    assert problem.hint is not None
    assert "examples/methodology/no-such-standard.yaml" in problem.hint
    assert ", methodology/no-such-standard.yaml" in problem.hint


def test_extends_must_be_a_path(tmp_path: Path) -> None:
    path = write(tmp_path, "spec.yaml", "id: x\nextends: [a.yaml, b.yaml]\n")

    with pytest.raises(JdlUserError) as caught:
        load_spec(path)

    [problem] = caught.value.problems
    assert problem.where.endswith("spec.yaml:2 extends")
    assert problem.value == ["a.yaml", "b.yaml"]


def test_absolute_extends_path_is_used_as_is(tmp_path: Path) -> None:
    base = write(tmp_path / "elsewhere", "base.yaml", "matching: {ratio: 4}\n")
    top = write(
        tmp_path / "specs",
        "top.yaml",
        f"extends: {base}\nid: t\ntitle: T\norganisation: O\ndata: {{table: t, id: i, treatment: d}}\n",
    )

    assert load_spec(top).spec.matching.ratio == 4


def test_spec_file_not_found_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(JdlUserError, match="spec file not found") as caught:
        load_spec(tmp_path / "nope.yaml")

    assert caught.value.exit_status == EXIT_BAD_INPUT


def test_yaml_anchors_and_merge_keys_are_followed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "anchors.yaml",
        "id: a\n"
        "title: T\n"
        "organisation: O\n"
        "data: {table: t, id: i, treatment: d}\n"
        "covariates: &covs [sex, age_at_index]\n"
        "matching:\n"
        "  <<: {ratio: 4, replace: true}\n"
        "  ratio: 2\n"
        "  exact: *covs\n",
    )
    loaded = load_spec(path)
    matching = loaded.spec.matching

    assert (matching.ratio, matching.replace, matching.exact) == (2, True, ["sex", "age_at_index"])
    assert loaded.locate(("matching", "ratio")).endswith("anchors.yaml:8")
    assert loaded.locate(("matching", "replace")).endswith("anchors.yaml:7")
    assert loaded.locate(("matching", "exact", 1)).endswith("anchors.yaml:5")


def test_validate_specs_returns_problems_per_spec_without_raising(in_fixtures: Path) -> None:
    checked: list[str] = []

    def method_is_known(loaded: LoadedSpec) -> list[Problem]:
        checked.append(loaded.spec.id)
        if loaded.spec.matching.ratio == 3:
            return [loaded.problem(("matching", "ratio"), "ratio 3 is not offered", value=3)]
        return []

    paths = [
        Path("minimal_records.yaml"),
        Path("examples/extended.yaml"),
        Path("many_errors.yaml"),
        Path("cycle/a.yaml"),
    ]
    results = validate_specs(paths, extra_checks=method_is_known)

    assert list(results) == paths
    assert results[Path("minimal_records.yaml")] == []
    assert [p.where for p in results[Path("examples/extended.yaml")]] == [
        "examples/extended.yaml:11 matching.ratio"
    ]
    assert len(results[Path("many_errors.yaml")]) == 6
    assert "cycle" in results[Path("cycle/a.yaml")][0].message
    assert checked == ["minimal-records", "example-mentoring-2019"]  # only specs that loaded


def test_validate_specs_records_a_user_error_raised_by_extra_checks(in_fixtures: Path) -> None:
    def refuse(loaded: LoadedSpec) -> list[Problem]:
        raise JdlUserError.single(loaded.where(("matching", "method")), "unknown matcher")

    results = validate_specs([Path("minimal_records.yaml")], extra_checks=refuse)

    [problem] = results[Path("minimal_records.yaml")]
    assert problem.where == "minimal_records.yaml:1 matching.method"
    assert problem.message == "unknown matcher"
