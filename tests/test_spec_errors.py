"""Spec problems: every one reported at once, with file, line, value, what is allowed and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from jdl.errors import EXIT_BAD_INPUT, JdlUserError, Problem
from jdl.spec import load_spec

FIXTURES = Path(__file__).parent / "fixtures" / "specs"

RECORD_DATA = "data:\n  national_records: {people: p, events: e}\n  cohort: c.csv\n"
PERIOD = "cohort:\n  period: {from: 2016-01-01, to: 2018-12-31}\n"
HEADER = "id: t\ntitle: T\norganisation: O\n"


@pytest.fixture(autouse=True)
def in_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)


def problems_of(path: str | Path) -> list[Problem]:
    with pytest.raises(JdlUserError) as caught:
        load_spec(path)
    assert caught.value.exit_status == EXIT_BAD_INPUT
    return caught.value.problems


def problems_of_text(tmp_path: Path, text: str) -> list[Problem]:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return problems_of(path)


def by_key(problems: list[Problem]) -> dict[str, Problem]:
    return {p.where.split(" ", 1)[1]: p for p in problems}


def test_all_problems_are_reported_at_once_with_their_lines() -> None:
    problems = problems_of("many_errors.yaml")

    assert [p.where for p in problems] == [
        "many_errors.yaml:9 cohort.min_size",
        "many_errors.yaml:10 mathcing",
        "many_errors.yaml:13 matching.estimand",
        "many_errors.yaml:15 matching.caliper.width",
        "many_errors.yaml:18 outcomes.follow_up",
        "many_errors.yaml:20 report.formats[1]",
    ]
    found = by_key(problems)
    assert found["cohort.min_size"].message == "must be at least 1"
    assert found["cohort.min_size"].value == -5
    assert found["matching.caliper.width"].message == "must be greater than 0"
    assert found["matching.caliper.width"].value == -0.2
    assert "'1 year' is not a duration" in found["outcomes.follow_up"].message
    assert found["report.formats[1]"].value == "pdf"
    assert found["report.formats[1]"].allowed == "'html', 'markdown' or 'json'"


def test_rendered_problems_avoid_pydantic_jargon() -> None:
    with pytest.raises(JdlUserError) as caught:
        load_spec("many_errors.yaml")

    text = str(caught.value)
    assert text.startswith("6 problems:")
    assert "Input should be" not in text
    assert "Value error" not in text
    assert "Extra inputs" not in text


def test_unknown_key_lists_the_section_keys_and_suggests_the_nearest() -> None:
    found = by_key(problems_of("many_errors.yaml"))
    problem = found["mathcing"]

    assert problem.message == "unknown key 'mathcing' at the top level"
    assert problem.allowed is not None
    assert "matching" in problem.allowed.split(", ")
    assert "estimator" in problem.allowed.split(", ")
    assert problem.hint == "did you mean 'matching'?"


def test_unknown_nested_key_lists_that_sections_keys(tmp_path: Path) -> None:
    text = HEADER + RECORD_DATA + PERIOD + "matching:\n  caliper: {width: 0.2, scle: sd}\n"
    [problem] = problems_of_text(tmp_path, text)

    assert problem.where.endswith("spec.yaml:10 matching.caliper.scle")
    assert problem.message == "unknown key 'scle' in matching.caliper"
    assert problem.allowed == "width, scale"
    assert problem.hint == "did you mean 'scale'?"


def test_unknown_key_without_a_near_miss_has_no_hint(tmp_path: Path) -> None:
    [problem] = problems_of_text(tmp_path, HEADER + RECORD_DATA + PERIOD + "zzz: 1\n")

    assert problem.message == "unknown key 'zzz' at the top level"
    assert problem.hint is None


def test_bad_literal_lists_the_allowed_values() -> None:
    problem = by_key(problems_of("many_errors.yaml"))["matching.estimand"]

    assert problem.message == "is not one of the allowed values"
    assert problem.value == "att"
    assert problem.allowed == "'ATT', 'ATC' or 'ATE'"
    assert problem.hint == "did you mean 'ATT'?"
    assert problem.render() == (
        "many_errors.yaml:13 matching.estimand: is not one of the allowed values; got 'att'; "
        "allowed: 'ATT', 'ATC' or 'ATE'. Hint: did you mean 'ATT'?"
    )


def test_variance_shorthand_reports_the_method_choices(tmp_path: Path) -> None:
    text = HEADER + RECORD_DATA + PERIOD + "estimator:\n  variance: boot\n"
    [problem] = problems_of_text(tmp_path, text)

    assert problem.where.endswith("spec.yaml:10 estimator.variance")
    assert problem.allowed == "'pair_cluster_robust', 'robust' or 'bootstrap'"
    assert problem.hint == "did you mean 'bootstrap'?"


def test_union_branches_fold_into_one_problem(tmp_path: Path) -> None:
    text = HEADER + RECORD_DATA + PERIOD + "comparison_pool: {regions: nationl}\n"
    [problem] = problems_of_text(tmp_path, text)

    assert problem.where.endswith("spec.yaml:9 comparison_pool.regions")
    assert problem.value == "nationl"
    assert problem.allowed == "'national' or a list"


def test_union_branch_matching_the_shape_reports_its_own_error(tmp_path: Path) -> None:
    text = HEADER + RECORD_DATA + PERIOD + "comparison_pool:\n  regions:\n    - London\n    - 7\n"
    [problem] = problems_of_text(tmp_path, text)

    assert problem.where.endswith("spec.yaml:12 comparison_pool.regions[1]")
    assert problem.message == "must be text"


def test_duplicate_key_is_an_error() -> None:
    [problem] = problems_of("duplicate_key.yaml")

    assert problem.where == "duplicate_key.yaml:12 matching.ratio"
    assert "appears more than once" in problem.message
    assert "first at line 10" in problem.message


def test_duplicate_keys_are_reported_with_validation_problems(tmp_path: Path) -> None:
    text = HEADER + RECORD_DATA + PERIOD + "matching:\n  ratio: 0\n  ratio: 0\n"
    problems = problems_of_text(tmp_path, text)

    assert [p.where.split("spec.yaml:")[1] for p in problems] == [
        "11 matching.ratio",
        "11 matching.ratio",
    ]
    assert "appears more than once" in problems[0].message
    assert problems[1].message == "must be at least 1"


def test_yaml_syntax_error_gives_line_column_and_parser_message() -> None:
    [problem] = problems_of("syntax_error.yaml")

    assert problem.where == "syntax_error.yaml:5:9"
    assert problem.message.startswith("YAML syntax error: expected ',' or ']', but got ':'")
    assert "line 4, column 13" in problem.message


def test_tab_indentation_is_a_syntax_error_with_a_hint(tmp_path: Path) -> None:
    [problem] = problems_of_text(tmp_path, "id: t\nmatching:\n\tratio: 2\n")

    assert problem.where.endswith("spec.yaml:3:1")
    assert problem.hint == "indent with spaces, not tabs"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "the spec must be a mapping of keys (key: value), not a list"),
        ("just text\n", "the spec must be a mapping of keys (key: value), not a single value"),
        ("# only a comment\n", "the spec is empty"),
    ],
)
def test_a_document_that_is_not_a_mapping_is_an_error(
    tmp_path: Path, text: str, message: str
) -> None:
    [problem] = problems_of_text(tmp_path, text)

    assert problem.where.endswith("spec.yaml:1")
    assert problem.message.startswith(message)


def test_python_tags_are_refused(tmp_path: Path) -> None:
    [problem] = problems_of_text(tmp_path, "id: !!python/object/apply:os.system [echo]\n")

    assert "could not determine a constructor" in problem.message
    assert problem.where.endswith("spec.yaml:1:5")


def test_missing_required_keys_point_at_the_section(tmp_path: Path) -> None:
    text = "id: t\ndata:\n  national_records: {people: p}\n  cohort: c.csv\n" + PERIOD
    found = by_key(problems_of_text(tmp_path, text))

    assert set(found) == {"title", "organisation", "data.national_records.events"}
    assert found["data.national_records.events"].where.endswith(
        "spec.yaml:3 data.national_records.events"
    )
    assert found["data.national_records.events"].message == "required key is missing"
    assert found["title"].where.endswith("spec.yaml:1 title")
    assert found["title"].hint == "title of the evaluation, as published"


def test_record_mode_without_a_period_is_an_error(tmp_path: Path) -> None:
    text = HEADER + RECORD_DATA + "cohort:\n  min_size: 100\n"
    [problem] = problems_of_text(tmp_path, text)

    assert problem.where.endswith("spec.yaml:7 cohort.period")
    assert problem.message.startswith("is required with national records")


def test_record_mode_needs_national_records_and_cohort(tmp_path: Path) -> None:
    text = HEADER + "data:\n  cohort: c.csv\n" + PERIOD
    [problem] = problems_of_text(tmp_path, text)

    assert problem.where.endswith("spec.yaml:4 data")
    assert problem.message.startswith("record mode needs both national_records")


def test_table_mode_needs_id_and_treatment(tmp_path: Path) -> None:
    [problem] = problems_of_text(tmp_path, HEADER + "data:\n  table: t.csv\n  id: unit\n")

    assert problem.where.endswith("spec.yaml:4 data")
    assert problem.message == "table mode needs table, id and treatment; missing: treatment"
    assert problem.value is None


def test_table_and_record_mode_together_is_an_error(tmp_path: Path) -> None:
    text = HEADER + RECORD_DATA + "  table: t.csv\n" + PERIOD
    [problem] = problems_of_text(tmp_path, text)

    assert problem.where.endswith("spec.yaml:4 data")
    assert "not both" in problem.message


def test_every_broken_spec_rule_is_reported_at_its_own_key(tmp_path: Path) -> None:
    text = (
        HEADER
        + RECORD_DATA
        + "covariates: [sex, age_at_index, sex]\nmatching:\n  exact: [region]\n"
    )
    found = by_key(problems_of_text(tmp_path, text))

    assert set(found) == {"cohort.period", "covariates", "matching.exact"}
    assert found["cohort.period"].where.endswith("spec.yaml:1 cohort.period")
    assert found["covariates"].where.endswith("spec.yaml:7 covariates")
    assert "repeated: ['sex']" in found["covariates"].message
    assert found["matching.exact"].where.endswith("spec.yaml:9 matching.exact")


def test_section_rules_point_at_the_keys_they_name(tmp_path: Path) -> None:
    text = (
        HEADER
        + "data: {table: t.csv, id: i, treatment: d}\n"
        + "cohort:\n  period:\n    from: 2018-01-01\n    to: 2017-01-01\n"
        + "outcomes:\n  measures: [a, b, a]\n"
    )
    found = by_key(problems_of_text(tmp_path, text))

    assert found["cohort.period.to"].where.endswith("spec.yaml:8 cohort.period.to")
    assert (
        found["cohort.period.to"].message
        == "period ends (2017-01-01) before it starts (2018-01-01)"
    )
    assert found["outcomes.measures"].where.endswith("spec.yaml:10 outcomes.measures")
    assert found["outcomes.primary"].where.endswith("spec.yaml:9 outcomes.primary")


def test_impossible_date_is_a_problem_on_its_line(tmp_path: Path) -> None:
    text = HEADER + RECORD_DATA + "cohort:\n  period:\n    from: 2016-01-01\n    to: 2018-13-31\n"
    [problem] = problems_of_text(tmp_path, text)

    assert problem.where.endswith("spec.yaml:10 cohort.period.to")
    assert problem.message.startswith("must be a date written YYYY-MM-DD")
    assert problem.value == "2018-13-31"


def test_unquoted_number_where_text_is_needed_hints_at_quotes(tmp_path: Path) -> None:
    [problem] = problems_of_text(
        tmp_path, "id: t\ntitle: 2019\norganisation: O\n" + RECORD_DATA + PERIOD
    )

    assert problem.where.endswith("spec.yaml:2 title")
    assert problem.message == "must be text"
    assert problem.value == 2019
    assert problem.hint is not None and "quotes" in problem.hint


def test_bad_id_suggests_a_slug(tmp_path: Path) -> None:
    [problem] = problems_of_text(
        tmp_path, "id: Demo Study\ntitle: T\norganisation: O\n" + RECORD_DATA + PERIOD
    )

    assert problem.where.endswith("spec.yaml:1 id")
    assert problem.hint == "for example 'demo-study'"


def test_problems_in_a_base_point_at_the_base_file(tmp_path: Path) -> None:
    (tmp_path / "methodology").mkdir()
    (tmp_path / "methodology" / "base.yaml").write_text("matching:\n  ratio: 0\n", encoding="utf-8")
    text = HEADER + "extends: methodology/base.yaml\n" + RECORD_DATA + PERIOD
    [problem] = problems_of_text(tmp_path, text)

    assert problem.where.endswith("methodology/base.yaml:2 matching.ratio")
    assert problem.value == 0


def test_a_key_set_to_null_is_reported_as_empty(tmp_path: Path) -> None:
    [problem] = problems_of_text(tmp_path, HEADER + RECORD_DATA + PERIOD + "matching:\n  ratio:\n")

    assert problem.message == "must be a whole number; it is empty (null)"


def test_wrong_shape_for_a_list_item_lists_the_item_keys(tmp_path: Path) -> None:
    [problem] = problems_of_text(tmp_path, HEADER + RECORD_DATA + PERIOD + "covariates: [sex, 7]\n")

    assert problem.where.endswith("spec.yaml:9 covariates[1]")
    assert problem.allowed == "a mapping with keys name, window"
    assert problem.hint == "covariates matched on: names, or {name, window}"
