"""render_report: golden files, determinism, escaping, sandboxing and suppression."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib
import pytest

from jdl.errors import JdlUserError
from jdl.report import render_report
from jdl.report.templates import resolve_template

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "report"
REGENERATE = "if the change is intended, run `.venv/bin/python scripts/regenerate_golden.py` and review the diff"
MALICIOUS = '<script>alert("x")</script> & Co'


@pytest.fixture
def results() -> dict[str, Any]:
    return json.loads((GOLDEN / "results_example.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("fmt", "golden"), [("html", "report_example.html"), ("markdown", "report_example.md")]
)
def test_matches_golden_file(results: dict[str, Any], fmt: str, golden: str) -> None:
    expected = (GOLDEN / golden).read_text(encoding="utf-8")
    assert render_report(results, fmt=fmt) == expected, REGENERATE  # type: ignore[arg-type]


def test_same_results_give_identical_html_whatever_the_matplotlib_settings(
    results: dict[str, Any],
) -> None:
    first = render_report(results, fmt="html")
    with matplotlib.rc_context({"lines.linewidth": 7.0, "font.size": 20.0, "svg.hashsalt": None}):
        second = render_report(copy.deepcopy(results), fmt="html")
        assert (
            matplotlib.rcParams["lines.linewidth"] == 7.0
        )  # the report restored the caller's settings
    assert first == second


def test_different_results_give_different_charts(results: dict[str, Any]) -> None:
    changed = copy.deepcopy(results)
    changed["balance"][0]["smd_after"] = 0.09
    changed["inference"]["time_to_first_reoffence"]["curves"]["treatment"]["survival"][5] = 0.5
    before, after = render_report(results, fmt="html"), render_report(changed, fmt="html")
    for chart in ("love", "survival"):
        assert _svg(before, chart) != _svg(after, chart)
    assert _svg(before, "overlap") == _svg(after, "overlap")


def test_html_is_self_contained(results: dict[str, Any]) -> None:
    html = render_report(results, fmt="html")
    assert len(_svgs(html)) == 3
    assert "<style>" in html
    for external in ("<script", "<link", "src=", "@import", "url(http"):
        assert external not in html
    assert set(re.findall(r"https?://[^\"' ]+", html)) == {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }


def test_headline_and_sections_come_from_the_results(results: dict[str, Any]) -> None:
    html = render_report(results, fmt="html")
    assert (
        "lower by between 2 and 11 percentage points. This is a statistically significant result."
        in html
    )
    assert '<span class="value">34%</span>' in html
    for heading in ("What this means", "Who was included", "Results", "Comparison before matching",
                    "How similar the groups are", "Method", "Caveats", "Warnings"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in html
    assert "79.2% of submitted" in html
    assert "1 January 2016 to 31 December 2018" in html


@pytest.mark.parametrize("fmt", ["html", "markdown"])
def test_user_text_is_escaped(results: dict[str, Any], fmt: str) -> None:
    results["organisation"] = MALICIOUS
    results["title"] = MALICIOUS
    results["balance"][0]["covariate"] = "<script>bad()</script>"
    results["warnings"] = ["<img src=x onerror=alert(1)>"]
    text = render_report(results, fmt=fmt)  # type: ignore[arg-type]
    assert "<script" not in text
    assert "<img" not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in text


def test_suppressed_primary_measure_shows_star_reason_and_no_numbers(
    results: dict[str, Any],
) -> None:
    primary = results["measures"]["reoffending_rate"]
    primary.update(
        treatment=0.777,
        comparison=0.666,
        suppressed=True,
        suppression_reason="fewer than 10 reoffended",
    )
    html = render_report(results, fmt="html")
    assert "78%" not in html and "67%" not in html  # neither matched nor unmatched figures leak
    assert '<span class="value">*</span>' in html
    assert "is not published: fewer than 10 reoffended." in html
    assert "* One-year proven reoffending rate: not published; fewer than 10 reoffended." in html
    assert "The headline result is not published" in html
    markdown = render_report(results, fmt="markdown")
    assert (
        "| One-year proven reoffending rate | % (difference in percentage points) | \\* | \\* |"
        in markdown
    )


def test_measures_are_in_jdl_order_even_when_results_keys_are_sorted(
    results: dict[str, Any],
) -> None:
    shuffled = json.loads(json.dumps(results, sort_keys=True))
    assert render_report(shuffled, fmt="markdown") == render_report(results, fmt="markdown")


def test_minimal_results_render_without_charts() -> None:
    minimal = {
        "title": "T",
        "organisation": "O",
        "n": {"treatment": 60, "comparison": 60},
        "primary": "reoffending_rate",
        "measures": {},
    }
    html = render_report(minimal, fmt="html")
    assert "<svg" not in html
    assert "The results hold no headline (primary) measure." in html


def test_missing_required_key_is_a_user_error() -> None:
    with pytest.raises(JdlUserError, match="the results have no 'measures'"):
        render_report({"title": "T", "organisation": "O", "n": {}}, fmt="html")


def test_unknown_template_lists_available_ones(results: dict[str, Any]) -> None:
    with pytest.raises(JdlUserError) as caught:
        render_report(results, template="no_such_template", fmt="html")
    assert "no_such_template" in str(caught.value)
    assert "allowed: jdl_standard" in str(caught.value)


def test_unknown_format_is_a_user_error(results: dict[str, Any]) -> None:
    with pytest.raises(JdlUserError, match="allowed: html, markdown"):
        render_report(results, fmt="pdf")  # type: ignore[arg-type]


def test_builtin_template_given_as_a_path_is_trusted_and_other_paths_are_not(
    tmp_path: Path,
) -> None:
    assert resolve_template(str(ROOT / "report_templates" / "jdl_standard")).trusted
    assert resolve_template("jdl_standard").trusted
    assert not resolve_template(str(tmp_path)).trusted


def _user_template(tmp_path: Path, html: str) -> str:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "report.html.j2").write_text(html, encoding="utf-8")
    return str(folder)


def test_user_template_renders_escaped_values(results: dict[str, Any], tmp_path: Path) -> None:
    folder = _user_template(
        tmp_path, "<p>{{ report.organisation }}: {{ report.headline.sentence }}</p>\n"
    )
    results["organisation"] = MALICIOUS
    text = render_report(results, template=folder, fmt="html")
    assert text.startswith("<p>&lt;script&gt;")
    assert "lower by between 2 and 11 percentage points" in text


@pytest.mark.parametrize(
    "expression",
    ["report.__class__", "results.__class__.__mro__", "report.title.__class__.__subclasses__()"],
)
def test_sandboxed_user_template_cannot_reach_python_internals(
    results: dict[str, Any], tmp_path: Path, expression: str
) -> None:
    folder = _user_template(tmp_path, "<h1>ok</h1>\n<p>{{ " + expression + " }}</p>\n")
    with pytest.raises(JdlUserError) as caught:
        render_report(results, template=folder, fmt="html")
    message = str(caught.value)
    assert "report.html.j2, line 2" in message
    assert "SecurityError" in message or "UndefinedError" in message
    assert "sandbox" in message or "undefined" in message


def test_sandboxed_template_cannot_mutate_results(results: dict[str, Any], tmp_path: Path) -> None:
    folder = _user_template(tmp_path, "{{ results.warnings.append('x') }}")
    with pytest.raises(JdlUserError, match="SecurityError"):
        render_report(results, template=folder, fmt="html")
    assert "x" not in results["warnings"]


def test_template_syntax_error_names_file_and_line(results: dict[str, Any], tmp_path: Path) -> None:
    folder = _user_template(tmp_path, "<h1>{{ report.title }}</h1>\n\n{% if report.title %}\n")
    with pytest.raises(JdlUserError, match=r"report\.html\.j2, line 3.*TemplateSyntaxError"):
        render_report(results, template=folder, fmt="html")


def test_template_undefined_name_names_file_and_line(
    results: dict[str, Any], tmp_path: Path
) -> None:
    folder = _user_template(tmp_path, "<h1>{{ report.title }}</h1>\n{{ report.no_such_field }}\n")
    with pytest.raises(JdlUserError, match=r"report\.html\.j2, line 2.*no_such_field"):
        render_report(results, template=folder, fmt="html")


def test_user_template_without_the_format_file(results: dict[str, Any], tmp_path: Path) -> None:
    folder = _user_template(tmp_path, "x")
    with pytest.raises(JdlUserError, match=r"has no report\.md\.j2"):
        render_report(results, template=folder, fmt="markdown")


def test_report_package_does_not_import_engine_cli_or_sources() -> None:
    code = (
        "import sys, jdl.report; "
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['jdl','engine'], ['jdl','cli'], ['jdl','sources'], ['jdl','batch'])))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "[]"


def _svgs(html: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html, flags=re.DOTALL)


def _svg(html: str, prefix: str) -> str:
    """The chart whose element ids carry `prefix` (charts.figure_to_svg prefixes them)."""
    (chart,) = [svg for svg in _svgs(html) if f'id="{prefix}-' in svg]
    return chart
