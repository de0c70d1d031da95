"""Several follow-up windows in one spec: the spec key, the outcomes per window, the cache key, the report.

The end-to-end checks on synthetic records are in test_follow_up_windows_records.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from jdl.durations import Duration
from jdl.engine import check_spec
from jdl.engine.pool import FeatureDefinitions
from jdl.errors import JdlUserError, Problem
from jdl.measures import compute_outcomes, windowed_outcomes
from jdl.report import render_report
from jdl.report.view import build_view
from jdl.sources.cache import cache_key
from jdl.spec import canonical_spec_json, load_spec, spec_json_schema

GOLDEN_RESULTS = Path(__file__).resolve().parent / "golden" / "report" / "results_example.json"
RECORD_SPEC = """spec_version: 1
id: windows
title: Windows
organisation: Org
data:
  national_records: {{people: p, events: e}}
  cohort: c.csv
cohort:
  period: {{from: 2016-01-01, to: 2017-12-31}}
outcomes:
  waiting_period: 6m
{follow_up}
"""
TABLE_SPEC = """spec_version: 1
id: table-windows
title: Table
organisation: Org
data: {{table: t.csv, id: unit, treatment: treat}}
covariates: [age]
outcomes:
  measures: [earnings]
  primary: earnings
{follow_up}
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Problems name the spec file relative to the folder jdl runs in."""
    monkeypatch.chdir(tmp_path)


def _spec(tmp_path: Path, follow_up: str, template: str = RECORD_SPEC) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(template.format(follow_up=follow_up), encoding="utf-8")
    return path


def _problems(path: Path) -> list[Problem]:
    with pytest.raises(JdlUserError) as caught:
        load_spec(path)
    return caught.value.problems


# ---------------------------------------------------------------- the spec key


def test_a_scalar_follow_up_is_one_window_and_keeps_its_form(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, "  follow_up: 18m")).spec

    assert spec.outcomes.follow_up == Duration(18, "m")
    assert spec.outcomes.windows == (Duration(18, "m"),)
    assert spec.outcomes.primary_window == spec.outcomes.longest_window == Duration(18, "m")
    assert json.loads(canonical_spec_json(spec))["outcomes"]["follow_up"] == "18m"


def test_a_list_gives_every_window_the_first_primary(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, "  follow_up: [1y, 18m, 2y]")).spec

    assert spec.outcomes.windows == (Duration(1, "y"), Duration(18, "m"), Duration(2, "y"))
    assert spec.outcomes.primary_window == Duration(1, "y")
    assert spec.outcomes.longest_window == Duration(2, "y")
    assert json.loads(canonical_spec_json(spec))["outcomes"]["follow_up"] == ["1y", "18m", "2y"]


def test_bad_windows_are_each_reported_at_their_line(tmp_path: Path) -> None:
    path = _spec(tmp_path, "  follow_up:\n    - 1y\n    - 2y\n    - 12m\n    - 0d\n    - 18m\n    - one year")
    problems = _problems(path)

    lines = {p.where.split(":", 1)[1]: p.message for p in problems}
    assert list(lines) == [
        "15 outcomes.follow_up[2]", "16 outcomes.follow_up[3]", "17 outcomes.follow_up[4]",
        "18 outcomes.follow_up[5]",
    ]
    assert lines["15 outcomes.follow_up[2]"] == "window 12m repeats 1y; each window may appear once"
    assert lines["16 outcomes.follow_up[3]"] == "a follow-up window must be longer than zero, not 0d"
    assert lines["17 outcomes.follow_up[4]"].startswith("window 18m is shorter than 2y before it; list the "
                                                         "windows from shortest to longest")
    assert "'one year' is not a duration" in lines["18 outcomes.follow_up[5]"]


@pytest.mark.parametrize(
    ("follow_up", "message"),
    [
        ("  follow_up: []", "the list of follow-up windows is empty"),
        ("  follow_up: 0y", "a follow-up window must be longer than zero, not 0y"),
        ("  follow_up: {years: 1}", "is not a duration or a list of durations"),
        ("  follow_up: [2y, 1y]", "window 1y is shorter than 2y before it"),
        ("  follow_up: [1y, 1y]", "window 1y repeats 1y"),
    ],
)
def test_each_bad_form_names_the_key_and_what_is_allowed(tmp_path: Path, follow_up: str, message: str) -> None:
    problems = _problems(_spec(tmp_path, follow_up))

    assert len(problems) == 1
    assert problems[0].where.startswith("spec.yaml:12 outcomes.follow_up")
    assert message in problems[0].message
    if "[" not in problems[0].where:  # a problem of the whole key says both accepted forms
        assert "a list of distinct durations from shortest to longest" in problems[0].message


def test_table_mode_ignores_one_window_and_refuses_several(tmp_path: Path) -> None:
    one = load_spec(_spec(tmp_path, "  follow_up: 1y", TABLE_SPEC))
    assert check_spec(one) == []

    several = load_spec(_spec(tmp_path, "  follow_up: [1y, 2y]", TABLE_SPEC))
    problems = check_spec(several)
    assert len(problems) == 1
    assert problems[0].where == "spec.yaml:10 outcomes.follow_up"
    assert problems[0].value == ["1y", "2y"]
    assert "no follow-up windows" in problems[0].message


def test_the_schema_offers_a_duration_or_a_list() -> None:
    node = spec_json_schema()["$defs"]["OutcomesSpec"]["properties"]["follow_up"]

    assert node["default"] == "1y"
    assert [form["type"] for form in node["anyOf"]] == ["string", "array"]
    assert node["anyOf"][1]["items"]["pattern"] == node["anyOf"][0]["pattern"]


# ---------------------------------------------------------------- outcomes per window

INDEX = pd.DataFrame({"person_id": [1, 2], "index_date": pd.to_datetime(["2017-01-10", "2017-03-01"])})
EVENT_COLUMNS = ["person_id", "offence_date", "outcome_date", "outcome_type", "offence_group", "severity",
                 "disposal", "sentence_days", "release_date"]
HISTORY = pd.DataFrame.from_records([
    (1, "2017-06-01", "2017-07-01", "court_conviction", "theft", "summary", "fine", None, None),        # both
    (1, "2017-12-01", "2018-09-01", "court_conviction", "theft", "summary", "custody", 90, "2018-10-01"),
    # ^ in the one-year window but proven after 2018-07-10: counts for two years only
    (1, "2018-06-01", "2018-08-01", "caution", "drugs", "summary", "caution", None, None),             # 2y only
    (1, "2019-02-01", "2019-03-01", "court_conviction", "theft", "summary", "fine", None, None),       # neither
    (1, "2017-02-01", "2017-02-05", "pnd", "public_order", "summary", "pnd", None, None),              # never
    (2, "2018-05-01", "2018-06-01", "court_conviction", "burglary", "indictable", "fine", None, None),  # 2y only
], columns=EVENT_COLUMNS)
for _column in ("offence_date", "outcome_date", "release_date"):
    HISTORY[_column] = pd.to_datetime(HISTORY[_column])
MEASURES = ["reoffending_rate", "reoffending_frequency", "days_to_first_reoffence", "custody_rate"]
ONE_YEAR, TWO_YEARS, WAIT = Duration(1, "y"), Duration(2, "y"), Duration(6, "m")


def test_each_window_counts_its_own_proven_reoffences() -> None:
    outcomes, columns = windowed_outcomes(INDEX, HISTORY, measure_names=MEASURES,
                                          windows=(ONE_YEAR, TWO_YEARS), waiting_period=WAIT)

    assert [c.name for c in columns] == [
        "reoffending_rate", "reoffending_frequency", "days_to_first_reoffence", "custody_rate",
        "reoffending_rate_2y", "reoffending_frequency_2y", "days_to_first_reoffence_2y", "custody_rate_2y",
    ]
    assert [c.label for c in columns[:4]] == [c.label for c in columns[4:]]
    assert list(outcomes.columns) == [c.name for c in columns]
    assert outcomes["reoffending_rate"].tolist() == [1.0, 0.0]
    assert outcomes["reoffending_rate_2y"].tolist() == [1.0, 1.0]
    assert outcomes["reoffending_frequency"].tolist() == [1.0, 0.0]
    assert outcomes["reoffending_frequency_2y"].tolist() == [3.0, 1.0]
    assert outcomes["days_to_first_reoffence"].iloc[0] == 142  # 2017-01-10 to 2017-06-01
    assert pd.isna(outcomes["days_to_first_reoffence"].iloc[1])
    assert outcomes["days_to_first_reoffence_2y"].tolist() == [142, 426]  # 2017-03-01 to 2018-05-01
    assert outcomes["custody_rate"].tolist() == [0.0, 0.0]
    assert outcomes["custody_rate_2y"].tolist() == [1.0, 0.0]


def test_one_window_is_exactly_compute_outcomes() -> None:
    windowed, windowed_columns = windowed_outcomes(INDEX, HISTORY, measure_names=MEASURES,
                                                   windows=(ONE_YEAR,), waiting_period=WAIT)
    plain, plain_columns = compute_outcomes(INDEX, HISTORY, measure_names=MEASURES,
                                            follow_up=ONE_YEAR, waiting_period=WAIT)

    pd.testing.assert_frame_equal(windowed, plain)
    assert windowed_columns == plain_columns


# ---------------------------------------------------------------- the feature cache key


def _definitions(*windows: Duration) -> FeatureDefinitions:
    return FeatureDefinitions(
        period_from=dt.date(2016, 1, 1), period_to=dt.date(2017, 12, 31),
        covariates=(("age_at_index", None), ("prior_proven_offences", Duration(2, "y"))),
        measures=("reoffending_rate", "first_reoffence_severity"),
        follow_up=windows[0], waiting_period=WAIT, extra_windows=windows[1:],
    )


def test_one_window_keeps_the_key_it_always_had() -> None:
    assert _definitions(ONE_YEAR).as_key() == {
        "period": ["2016-01-01", "2017-12-31"],
        "pool_index": "first index event in the period",
        "covariates": [["age_at_index", None], ["prior_proven_offences", "2y"]],
        "measures": ["reoffending_rate", "first_reoffence_severity"],
        "follow_up": "1y",
        "waiting_period": "6m",
    }


def test_every_window_is_part_of_the_key_and_of_the_columns() -> None:
    one, two = _definitions(ONE_YEAR), _definitions(ONE_YEAR, TWO_YEARS)

    assert two.as_key()["extra_windows"] == ["2y"]
    assert cache_key(one.as_key()) != cache_key(two.as_key())
    assert cache_key(two.as_key()) != cache_key(_definitions(ONE_YEAR, Duration(3, "y")).as_key())
    assert [c.name for c in two.outcome_columns] == [
        "reoffending_rate", "first_reoffence_indictable", "first_reoffence_either_way", "first_reoffence_summary",
        "reoffending_rate_2y", "first_reoffence_indictable_2y", "first_reoffence_either_way_2y",
        "first_reoffence_summary_2y",
    ]


def test_a_list_of_one_window_has_the_scalars_definitions(tmp_path: Path) -> None:
    listed = load_spec(_spec(tmp_path, "  follow_up: [1y]")).spec.outcomes
    scalar = load_spec(_spec(tmp_path, "  follow_up: 1y")).spec.outcomes

    assert listed.windows == scalar.windows
    assert listed.windows[1:] == ()


# ---------------------------------------------------------------- the report


def _two_window_results() -> dict[str, Any]:
    """The golden example's results as if the spec had said follow_up: [1y, 2y]."""
    results = json.loads(GOLDEN_RESULTS.read_text(encoding="utf-8"))
    measures: dict[str, Any] = {}
    family = 2 * len(results["measures"]) - 1
    for name, measure in sorted(results["measures"].items()):  # results.json sorts its keys
        for window in ("1y", "2y"):
            entry = copy.deepcopy(measure)
            entry.update(follow_up=window, column=name)
            if name != results["primary"]:
                entry["multiplicity"]["family_size"] = family
            measures[name if window == "1y" else f"{name}_2y"] = entry
    results["measures"] = dict(sorted(measures.items()))
    results["naive"] = {
        key: results["naive"][measures[key]["column"]] for key in results["measures"]
    }
    results["method"]["follow_up_windows"] = ["1y", "2y"]
    results["inference"]["time_to_first_reoffence"]["follow_up"] = "2y"
    return results


def test_the_report_sets_each_measures_windows_side_by_side() -> None:
    results = _two_window_results()
    label = results["measures"]["reoffending_rate"]["label"]
    view = build_view(results)

    assert view.follow_up_column
    assert [(row.name, row.follow_up) for row in view.measures[:4]] == [
        ("reoffending_rate", "1 year"), ("reoffending_rate_2y", "2 years"),
        ("reoffending_frequency", "1 year"), ("reoffending_frequency_2y", "2 years"),
    ]
    assert [row.name for row in view.naive] == [row.name for row in view.measures]
    assert view.headline is not None and view.headline.label == f"{label} (1 year)"
    assert view.headline.sentence.startswith("The one-year proven reoffending rate")
    by_name = {row.name: row for row in view.measures}
    assert by_name["reoffending_rate_2y"].headline.startswith("The two-year proven reoffending rate")
    assert by_name["days_to_first_reoffence_2y"].headline.startswith(
        "The average time to first proven reoffence over the two-year follow-up"
    )
    assert "across the 15 secondary results (each measure in each of the 2 follow-up windows)" in (
        " ".join(view.multiplicity_notes)
    )
    assert view.survival is not None and "over the two-year follow-up" in view.survival.caption
    follow_up = {item.label: item.value for item in view.method}["Follow-up"]
    assert follow_up == "1 year (primary) and 2 years from the index date, on the same matched groups"
    assert {row.measure for row in view.ratios} >= {f"{label} (1 year)", f"{label} (2 years)"}


def test_both_report_formats_show_both_windows() -> None:
    results = _two_window_results()
    label = results["measures"]["reoffending_rate"]["label"]
    markdown = render_report(results, fmt="markdown")
    html = render_report(results, fmt="html")

    assert "| Measure | Follow-up | Units |" in markdown
    assert f"| {label} | 1 year |" in markdown and f"| {label} | 2 years |" in markdown
    assert "The two-year proven reoffending rate for Example Mentoring participants" in markdown
    assert '<th class="text">Follow-up</th>' in html
    assert f'<td>{label}</td><td class="text">2 years</td>' in html


def test_one_window_results_have_no_window_column() -> None:
    results = json.loads(GOLDEN_RESULTS.read_text(encoding="utf-8"))
    view = build_view(results)

    assert not view.follow_up_column
    assert {row.follow_up for row in view.measures} == {""}
    assert "Follow-up |" not in render_report(results, fmt="markdown").split("## Results")[1].split("\n\n")[2]
