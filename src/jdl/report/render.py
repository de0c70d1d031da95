"""render_report: results.json -> a report string (the engine writes the file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from markupsafe import Markup

from jdl.report import charts
from jdl.report.templates import render_template, resolve_template
from jdl.report.view import ReportView, build_view, survival_curves


@dataclass(frozen=True)
class Charts:
    """Inline SVG charts; None when the results hold nothing to draw (or for markdown)."""

    love_plot: Markup | None = None
    overlap: Markup | None = None
    survival: Markup | None = None


def render_report(
    results: Mapping[str, Any],
    *,
    template: str = "jdl_standard",
    fmt: Literal["html", "markdown"],
    templates_root: Path | None = None,
) -> str:
    """Render `results` (the dict written as results.json) with a report template.

    `template` is a folder name under `templates_root` (default: the repository's
    report_templates/) or a path to a folder holding report.html.j2 / report.md.j2.
    Templates get `report` (the worded, rounded view), `results` (the raw dict) and
    `charts` (inline SVG, HTML only).
    """
    report_template = resolve_template(template, templates_root)
    report_template.file_for(fmt)  # fail on a bad format or missing file before drawing charts
    view = build_view(results)
    return render_template(
        report_template,
        fmt,
        {
            "report": view,
            "results": results,
            "charts": _charts(results, view) if fmt == "html" else Charts(),
        },
    )


def _charts(results: Mapping[str, Any], view: ReportView) -> Charts:
    # The view decides whether the survival curves may be published (disclosure control).
    survival = (
        charts.survival_chart(survival_curves(results.get("inference") or {}))
        if view.survival is not None
        else None
    )
    return Charts(
        love_plot=charts.love_plot(results.get("balance") or []),
        overlap=charts.overlap_chart(results.get("propensity_overlap") or {}),
        survival=survival,
    )
