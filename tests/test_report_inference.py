"""The report's inference sections: adjusted p, ratios, sensitivity, placebo, survival, subgroups."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from jdl.report import render_report, wording
from jdl.report.view import build_view

GOLDEN = Path(__file__).resolve().parent / "golden" / "report"
GAMMA = "Γ\u00a0=\u00a0"
NEW_SECTIONS = (
    "Adjusted p",
    "Ratios",
    "Time to first proven reoffence",
    "Subgroups",
    "Sensitivity to unmeasured differences",
    "Placebo check",
)


@pytest.fixture
def results() -> dict[str, Any]:
    return json.loads((GOLDEN / "results_example.json").read_text(encoding="utf-8"))


def without_new_fields(results: dict[str, Any]) -> dict[str, Any]:
    """results.json as written before ratios, adjusted p-values, inference and subgroups existed."""
    old = copy.deepcopy(results)
    old.pop("inference")
    old.pop("subgroups")
    for measure in old["measures"].values():
        for key in ("p_value_adjusted", "multiplicity", "ratios"):
            measure.pop(key, None)
    return old


def without_charts(text: str) -> str:
    """The report's text without SVG charts, whose coordinates are full of numbers."""
    return re.sub(r"<svg\b.*?</svg>", "", text, flags=re.DOTALL)


# --- adjusted p-values ------------------------------------------------------------------


def test_multiplicity_footnotes_name_the_method_and_family() -> None:
    assert wording.multiplicity_footnote("holm", "secondary", 7) == (
        "Adjusted p: Holm-adjusted across the 7 secondary measures; "
        "the pre-specified primary measure keeps its raw p-value."
    )
    assert wording.multiplicity_footnote("fdr_bh", "all", 8) == (
        "Adjusted p: Benjamini-Hochberg-adjusted (false discovery rate) across all 8 measures, "
        "the primary measure included."
    )
    assert wording.multiplicity_footnote("bonferroni", "secondary", 1) == (
        "Adjusted p: Bonferroni-adjusted across the 1 secondary measure; "
        "the pre-specified primary measure keeps its raw p-value."
    )
    assert wording.multiplicity_footnote("none", "secondary", 7) == (
        "p-values are not adjusted for multiple comparisons."
    )


def test_adjusted_p_column_footnote_and_overturned_significance(results: dict[str, Any]) -> None:
    view = build_view(results)
    assert view.adjusted_p
    rows = {row.name: row for row in view.measures}
    assert (rows["reoffending_rate"].p_value, rows["reoffending_rate"].p_value_adjusted) == (
        "0.003",
        "0.003",
    )
    assert (
        rows["days_to_first_reoffence"].p_value,
        rows["days_to_first_reoffence"].p_value_adjusted,
    ) == (
        "0.010",
        "0.071",
    )
    assert rows["first_reoffence_indictable"].p_value_adjusted == "*"  # suppressed
    assert view.multiplicity_notes == (
        "Adjusted p: Holm-adjusted across the 7 secondary measures; "
        "the pre-specified primary measure keeps its raw p-value.",
        "After adjustment for multiple comparisons, the difference in the average time to first "
        "proven reoffence is no longer statistically significant.",
    )
    html = render_report(results, fmt="html")
    assert "<th>p-value</th><th>Adjusted p</th><th>Significant</th>" in html
    assert "<td>0.010</td><td>0.071</td><td>Yes</td>" in html
    markdown = render_report(results, fmt="markdown")
    assert "| p-value | Adjusted p | Significant |" in markdown
    assert "| +6 to +41 | 0.010 | 0.071 | Yes | 142 / 850 |" in markdown


def test_no_adjustment_drops_the_column_and_says_so(results: dict[str, Any]) -> None:
    for measure in results["measures"].values():
        measure["multiplicity"].update(method="none", significant_adjusted=measure["significant"])
        measure["p_value_adjusted"] = measure["p_value"]
    view = build_view(results)
    assert not view.adjusted_p
    assert view.multiplicity_notes == ("p-values are not adjusted for multiple comparisons.",)
    assert "Adjusted p" not in render_report(results, fmt="markdown")


# --- ratios -----------------------------------------------------------------------------


def test_ratio_rows_round_to_two_decimals_in_report_order(results: dict[str, Any]) -> None:
    rows = build_view(results).ratios
    assert [(r.measure, r.ratio, r.estimate, r.interval) for r in rows[:3]] == [
        ("One-year proven reoffending rate", "Risk ratio", "0.84", "0.73 to 0.96"),
        ("One-year proven reoffending rate", "Odds ratio", "0.75", "0.60 to 0.93"),
        ("One-year proven reoffending frequency", "Rate ratio", "0.94", "0.81 to 1.08"),
    ]
    assert "days_to_first_reoffence" not in {r.measure for r in rows}  # continuous: no ratios


@pytest.mark.parametrize("fmt", ["html", "markdown"])
def test_suppressed_measure_never_shows_its_raw_ratios(results: dict[str, Any], fmt: str) -> None:
    measure = results["measures"]["custody_rate"]
    measure.update(suppressed=True, suppression_reason="too few people")
    measure["ratios"] = {
        "risk_ratio": {"estimate": 7.7771, "ci_low": 3.3331, "ci_high": 9.9991, "p_value": 0.0123},
        "odds_ratio": {"estimate": 6.6661, "ci_low": 2.2221, "ci_high": 8.8881, "p_value": 0.0456},
    }
    text = render_report(results, fmt=fmt)  # type: ignore[arg-type]
    for raw in ("7.78", "3.33", "10.00", "6.67", "2.22", "8.89", "7.777"):
        assert raw not in without_charts(text)
    star = r"\*" if fmt == "markdown" else "*"
    expected = (
        f"| Custodial sentence rate | Risk ratio | {star} | {star} |"
        if fmt == "markdown"
        else '<td>Custodial sentence rate</td><td class="text">Risk ratio</td><td>*</td><td>*</td>'
    )
    assert expected in text


# --- Rosenbaum bounds and the E-value -----------------------------------------------------


def rosenbaum(gamma_critical: float | None, p_at_one: float = 0.002) -> dict[str, Any]:
    return {
        "available": True,
        "method": "Rosenbaum bounds for a binary outcome in matched sets (exact)",
        "gamma_critical": gamma_critical,
        "gamma_max": 5.0,
        "direction": "treated lower",
        "n_sets": 412,
        "n_informative_sets": 318,
        "grid": [[1.0, p_at_one], [2.0, 0.03], [5.0, 0.04]],
        "note": "matched sets are disjoint",
    }


def test_rosenbaum_gamma_found() -> None:
    sentence = wording.rosenbaum_sentence(rosenbaum(1.41625), outcome="reoffending", alpha=0.05)
    assert sentence == (
        "The result would stop being statistically significant if an unmeasured characteristic "
        f"that also affects reoffending made people {GAMMA}1.42 times more likely (in odds) to "
        "take part than matched people with the same recorded characteristics. Any smaller "
        "unmeasured difference would leave the result statistically significant."
    )


@pytest.mark.parametrize(
    ("gamma_critical", "p_at_one"),
    [(1.0, 0.2), (None, 0.2)],  # the engine writes 1.0; a null with p(Γ=1) >= alpha means the same
)
def test_rosenbaum_not_significant_even_without_hidden_bias(
    gamma_critical: float | None, p_at_one: float
) -> None:
    sentence = wording.rosenbaum_sentence(
        rosenbaum(gamma_critical, p_at_one), outcome="reoffending", alpha=0.05
    )
    assert sentence == (
        "In the matched-sets test used for this check, the result is not statistically "
        f"significant even with no unmeasured difference ({GAMMA}1), so there is no significant "
        "result for an unmeasured characteristic to explain away, and the check cannot show how "
        "robust the result is."
    )


def test_rosenbaum_robust_beyond_the_largest_gamma_checked() -> None:
    sentence = wording.rosenbaum_sentence(rosenbaum(None), outcome="reoffending", alpha=0.05)
    assert sentence == (
        "The result stays statistically significant even if an unmeasured characteristic that "
        f"also affects reoffending made people {GAMMA}5 times more likely (in odds) to take part "
        "than matched people with the same recorded characteristics, the largest difference "
        "checked: it is robust to unmeasured differences at least that large."
    )


def test_rosenbaum_unavailable_gives_the_reason(results: dict[str, Any]) -> None:
    results["inference"]["rosenbaum"] = {
        "available": False,
        "method": "Rosenbaum bounds for a binary outcome in matched sets",
        "gamma_critical": None,
        "gamma_max": 5.0,
        "direction": "",
        "n_sets": 0,
        "n_informative_sets": 0,
        "grid": [],
        "note": "needs matched sets of one treated person and their matches",
    }
    sensitivity = build_view(results).sensitivity
    assert sensitivity is not None
    assert (
        sensitivity.rosenbaum[0] == "Rosenbaum bounds could not be calculated for this evaluation."
    )
    assert sensitivity.grid == ()
    assert sensitivity.notes == (
        "Note: needs matched sets of one treated person and their matches.",
    )


def test_e_value_sentences() -> None:
    e_value = {
        "method": "E-value",
        "risk_ratio": 0.835716,
        "e_value": 1.681576,
        "e_value_ci": 1.253238,
    }
    assert wording.e_value_sentence(e_value, ratio_name="Risk ratio", outcome="reoffending") == (
        "The estimated risk ratio (participants relative to the comparison group) is 0.84. "
        "Following VanderWeele and Ding, an unmeasured confounder would need to be associated with "
        "both taking part and reoffending by a risk ratio of at least 1.68 to explain away the "
        "estimate, and by a risk ratio of at least 1.25 to move the confidence interval to "
        "include no difference."
    )
    e_value["e_value_ci"] = 1.0
    assert wording.e_value_sentence(e_value, ratio_name="Rate ratio", outcome="reoffending") == (
        "The estimated rate ratio (participants relative to the comparison group) is 0.84. "
        "Following VanderWeele and Ding, an unmeasured confounder would need to be associated with "
        "both taking part and reoffending by a risk ratio of at least 1.68 to explain away the "
        "estimate; the confidence interval already includes no difference."
    )


def test_sensitivity_section_of_the_example(results: dict[str, Any]) -> None:
    sensitivity = build_view(results).sensitivity
    assert sensitivity is not None
    assert f"{GAMMA}1.42 times" in sensitivity.rosenbaum[0]
    assert [(p.gamma, p.p_upper) for p in sensitivity.grid][:5] == [
        ("1", "0.002"), ("1.1", "0.007"), ("1.2", "0.017"), ("1.3", "0.032"), ("1.4", "0.047"),
    ]  # fmt: skip
    assert sensitivity.notes[0].startswith("Method: Rosenbaum bounds for a binary outcome")
    assert "318 of 412 matched sets" in sensitivity.notes[0]
    assert sensitivity.notes[1] == (
        "Note: controls reused across sets (matching with replacement) are counted in each set; "
        "the sets' dependence is ignored."
    )
    assert sensitivity.e_value is not None and "at least 1.68" in sensitivity.e_value


def test_suppressed_headline_withholds_gamma_e_value_and_curves(results: dict[str, Any]) -> None:
    results["measures"]["reoffending_rate"].update(suppressed=True, suppression_reason="too few")
    view = build_view(results)
    assert view.sensitivity is not None
    assert view.sensitivity.rosenbaum == (wording.SENSITIVITY_NOT_PUBLISHED,)
    assert view.sensitivity.e_value is None and view.sensitivity.grid == ()
    assert view.sensitivity.placebo  # a pre-index outcome: still published
    assert view.survival is None
    html = render_report(results, fmt="html")
    section = html.split("<h2>Sensitivity to unmeasured differences</h2>")[1].split("</section>")[0]
    for hidden in ("1.42", "1.68", "1.25", "0.84", "0.002", "<table"):
        assert hidden not in section
    assert wording.SENSITIVITY_NOT_PUBLISHED in section
    assert "Time to first proven reoffence" not in html
    assert (
        '<td>One-year proven reoffending rate</td><td class="text">Risk ratio</td><td>*</td>'
        "<td>*</td>"
    ) in html
    assert 'id="survival-' not in html


# --- placebo --------------------------------------------------------------------------------


def placebo(low: float, high: float, consistent: bool | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "outcome": "proven_offences_in_year_before_index",
        "difference": (low + high) / 2,
        "ci_low": low,
        "ci_high": high,
        "p_value": 0.744 if consistent else 0.0004,
        "treatment": 0.61,
        "comparison": 0.6,
        "note": "whatever",
    }
    if consistent is not None:
        entry["consistent_with_no_effect"] = consistent
    return entry


def test_placebo_consistent_with_no_difference() -> None:
    assert wording.placebo_sentences(placebo(-0.0712, 0.0996, True), confidence="95%") == (
        "As a placebo check, the same comparison was made on proven offences in year before "
        "index, measured before the index date, which the programme cannot have changed. The "
        "difference between participants and the matched comparison group was +0.01 (95% "
        "confidence interval -0.07 to +0.10; p-value 0.744).",
        "This is consistent with no difference, as expected if the matched groups were alike "
        "before the programme.",
    )


@pytest.mark.parametrize("flag", [False, None])  # without the flag the interval decides
def test_placebo_not_consistent_with_no_difference(flag: bool | None) -> None:
    sentences = wording.placebo_sentences(placebo(0.112, 0.254, flag), confidence="95%")
    assert "was +0.18 (95% confidence interval +0.11 to +0.25; p-value <0.001)." in sentences[0]
    assert sentences[1] == (
        "This is not consistent with no difference: the groups already differed before the "
        "programme could have had any effect, so part of the estimated effect may come from "
        "differences between the groups rather than from the programme."
    )


# --- survival curves and subgroups ---------------------------------------------------------


def test_survival_chart_html_and_note_in_markdown(results: dict[str, Any]) -> None:
    html = render_report(results, fmt="html")
    assert "<h2>Time to first proven reoffence</h2>" in html
    assert 'aria-label="Kaplan-Meier curves of time to first proven reoffence by group"' in html
    markdown = render_report(results, fmt="markdown")
    assert (
        "## Time to first proven reoffence\n\n"
        "_The Kaplan-Meier chart of time to first proven reoffence is in the HTML report._\n"
    ) in markdown
    del results["inference"]["time_to_first_reoffence"]  # removed by disclosure control
    assert "Time to first proven reoffence" not in render_report(results, fmt="html")
    assert "Kaplan-Meier" not in render_report(results, fmt="markdown")


def test_subgroup_not_reported_shows_the_reason_instead_of_numbers(results: dict[str, Any]) -> None:
    rows = build_view(results).subgroups.rows  # type: ignore[union-attr]
    female = rows[0]
    assert (female.by, female.level, female.reported) == ("sex", "F", False)
    assert female.reason == "Not reported: only 38 participants matched (minimum 60)."
    assert (female.people, female.treatment, female.difference) == ("", "", "")
    male = rows[1]
    assert (male.people, male.treatment, male.comparison, male.difference, male.interval,
            male.significant) == ("374 / 1,870", "35%", "42%", "-7", "-12 to -2", "Yes")  # fmt: skip
    html = render_report(results, fmt="html")
    assert (
        '<tr class="not-reported"><td>sex</td><td class="text">F</td><td class="text" colspan="6">'
        "Not reported: only 38 participants matched (minimum 60).</td></tr>"
    ) in html
    assert wording.SUBGROUPS_CAVEAT in html
    markdown = render_report(results, fmt="markdown")
    assert (
        "| sex | F | Not reported: only 38 participants matched (minimum 60). | | | | | |"
        in markdown
    )
    assert f"_{wording.SUBGROUPS_CAVEAT}_" in markdown


def test_suppressed_subgroup_shows_stars_and_reason(results: dict[str, Any]) -> None:
    primary = results["subgroups"][1]["primary"]
    primary.update(treatment=0.0777, comparison=0.0666, suppressed=True,
                   suppression_reason="too few people (n×p < 10) in the treatment group")  # fmt: skip
    html = render_report(results, fmt="html")
    assert "8%" not in html.split("<h2>Subgroups</h2>")[1].split("</section>")[0]
    assert "* sex M: not published; too few people (n×p &lt; 10) in the treatment group." in html
    row = build_view(results).subgroups.rows[1]  # type: ignore[union-attr]
    assert (row.people, row.treatment, row.difference, row.significant) == (
        "374 / 1,870", "*", "*", "*",
    )  # fmt: skip


# --- older results ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["html", "markdown"])
def test_results_without_the_new_fields_render_as_before(results: dict[str, Any], fmt: str) -> None:
    text = render_report(without_new_fields(results), fmt=fmt)  # type: ignore[arg-type]
    for heading in NEW_SECTIONS:
        assert heading not in text
    assert len(re.findall(r"<svg\b", text)) == (2 if fmt == "html" else 0)
    view = build_view(without_new_fields(results))
    assert view.multiplicity_notes == () and view.ratios == ()
    assert view.sensitivity is None and view.subgroups is None and view.survival is None


@pytest.mark.parametrize("part", ["rosenbaum", "e_value", "placebo", "time_to_first_reoffence"])
def test_each_inference_part_renders_on_its_own(results: dict[str, Any], part: str) -> None:
    alone = without_new_fields(results)
    alone["inference"] = {part: results["inference"][part]}
    html = render_report(alone, fmt="html")
    markdown = render_report(alone, fmt="markdown")
    expected = {
        "rosenbaum": f"{GAMMA}1.42 times",
        "e_value": "a risk ratio of at least 1.68",
        "placebo": "This is consistent with no difference",
        "time_to_first_reoffence": "Time to first proven reoffence",
    }[part]
    assert expected in html and expected in markdown
