"""Charts as inline SVG strings, byte-identical for the same input.

Figures are drawn with matplotlib's object API (no pyplot, no global backend
switch) under matplotlib's built-in defaults, whatever the user's matplotlibrc
says, with a fixed hash salt and no date or creator metadata. The XML prolog,
DOCTYPE and metadata are stripped so the SVG can sit inside an HTML page, and
element ids are prefixed per chart so two charts on one page cannot clash.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
from markupsafe import Markup, escape
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from jdl.report.publishing import is_number

SVG_RC: dict[str, Any] = {
    "svg.hashsalt": "jdl-report",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
BEFORE_COLOUR = "#9a9a9a"
AFTER_COLOUR = "#1f4e79"
TREATMENT_COLOUR = "#c0504d"
FLAG_COLOURS = {"good": "#1f4e79", "acceptable": "#b8860b", "imbalanced": "#c0504d"}
REFERENCE_SMD = 0.1

_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_ID_REFERENCE = re.compile(r'(\bid="|url\(#|xlink:href="#|\bhref="#)')


def love_plot(balance: Sequence[Mapping[str, Any]]) -> Markup | None:
    """Standardised mean differences before (hollow) and after (filled) matching."""
    rows = [
        row
        for row in balance
        if is_number(row.get("smd_before")) or is_number(row.get("smd_after"))
    ]
    if not rows:
        return None
    with svg_style():
        return _draw_love_plot(rows)


def _draw_love_plot(rows: Sequence[Mapping[str, Any]]) -> Markup:
    figure = Figure(figsize=(6.4, 1.1 + 0.28 * len(rows)), layout="constrained")
    axes = figure.add_subplot()
    positions = list(range(len(rows)))[::-1]  # first covariate at the top
    before = [_or_nan(row.get("smd_before")) for row in rows]
    after = [_or_nan(row.get("smd_after")) for row in rows]
    colours = [FLAG_COLOURS.get(str(row.get("flag")), AFTER_COLOUR) for row in rows]
    for reference in (-REFERENCE_SMD, REFERENCE_SMD):
        axes.axvline(reference, color="#cccccc", linestyle="--", linewidth=0.8)
    axes.axvline(0.0, color="#666666", linewidth=0.8)
    axes.scatter(
        before,
        positions,
        facecolors="none",
        edgecolors=BEFORE_COLOUR,
        s=28,
        label="Before matching",
    )
    axes.scatter(after, positions, c=colours, s=28, label="After matching")
    axes.set_yticks(positions, labels=[plain_text(row.get("covariate", "")) for row in rows])
    axes.set_ylim(-0.7, len(rows) - 0.3)
    axes.set_xlabel("Standardised mean difference (participants minus comparison)")
    figure.legend(loc="outside upper center", ncols=2, frameon=False, fontsize=8)
    axes.grid(axis="y", color="#eeeeee", linewidth=0.6)
    axes.set_axisbelow(True)
    return figure_to_svg(
        figure, "love", "Love plot: standardised mean differences before and after matching"
    )


def overlap_chart(
    overlap: Mapping[str, Any], axis_label: str = "Propensity score"
) -> Markup | None:
    """Share of each group per score bin: participants, comparison pool, matched comparison."""
    edges = [float(e) for e in overlap.get("bins") or []]
    # Participants are a shaded area so a well-matched comparison line stays visible on top.
    series = (
        ("treatment", "Participants", {"fill": True, "color": TREATMENT_COLOUR, "alpha": 0.3}),
        (
            "comparison_before",
            "Comparison pool (before matching)",
            {"color": BEFORE_COLOUR, "linestyle": "--"},
        ),
        (
            "comparison_after",
            "Matched comparison (weighted)",
            {"color": AFTER_COLOUR, "linewidth": 1.6},
        ),
    )
    drawable = [
        (key, label, style)
        for key, label, style in series
        if len(overlap.get(key) or []) == len(edges) - 1 and len(edges) >= 2
    ]
    if not drawable:
        return None
    with svg_style():
        return _draw_overlap(overlap, edges, drawable, axis_label)


def _draw_overlap(
    overlap: Mapping[str, Any],
    edges: Sequence[float],
    drawable: Sequence[tuple[str, str, dict[str, Any]]],
    axis_label: str,
) -> Markup:
    figure = Figure(figsize=(6.4, 3.0), layout="constrained")
    axes = figure.add_subplot()
    for key, label, style in drawable:
        counts = [float(c) for c in overlap[key]]
        total = sum(counts)
        shares = [c / total if total > 0 else 0.0 for c in counts]
        axes.stairs(shares, edges, label=label, **style)
    axes.set_xlabel(plain_text(axis_label))
    axes.set_ylabel("Share of group")
    figure.legend(loc="outside upper center", ncols=3, frameon=False, fontsize=8)
    return figure_to_svg(
        figure, "overlap", "Propensity score overlap of participants and comparison group"
    )


def survival_chart(curves: Mapping[str, Any]) -> Markup | None:
    """Kaplan-Meier steps of the share not yet reoffended: participants and matched comparison."""
    series = (
        ("treatment", "Participants", TREATMENT_COLOUR),
        ("comparison", "Matched comparison group (weighted)", AFTER_COLOUR),
    )
    drawable = [
        (label, colour, steps)
        for key, label, colour in series
        if (steps := _steps(curves.get(key))) is not None
    ]
    if not drawable:
        return None
    with svg_style():
        return _draw_survival(drawable)


def _steps(curve: object) -> tuple[list[float], list[float]] | None:
    """(time, survival) of one curve, or None when it is missing or malformed."""
    if not isinstance(curve, Mapping):
        return None
    time, survival = curve.get("time") or [], curve.get("survival") or []
    if not time or len(time) != len(survival):
        return None
    if not all(is_number(value) for value in [*time, *survival]):
        return None
    return [float(t) for t in time], [float(s) for s in survival]


def _draw_survival(drawable: Sequence[tuple[str, str, tuple[list[float], list[float]]]]) -> Markup:
    figure = Figure(figsize=(6.4, 3.2), layout="constrained")
    axes = figure.add_subplot()
    end = max(steps[0][-1] for _label, _colour, steps in drawable)
    for label, colour, (time, survival) in drawable:
        # A Kaplan-Meier curve is flat after its last event: carry it on to the common end.
        axes.step(
            [*time, end], [*survival, survival[-1]], where="post", color=colour,
            linewidth=1.6, label=label,
        )  # fmt: skip
    axes.set_xlim(0, end if end > 0 else 1)
    axes.set_ylim(0, 1.02)
    axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    axes.set_xlabel("Days since the index date")
    axes.set_ylabel("Not yet reoffended")
    axes.grid(axis="y", color="#eeeeee", linewidth=0.6)
    axes.set_axisbelow(True)
    figure.legend(loc="outside upper center", ncols=2, frameon=False, fontsize=8)
    return figure_to_svg(
        figure, "survival", "Kaplan-Meier curves of time to first proven reoffence by group"
    )


def figure_to_svg(figure: Figure, prefix: str, description: str) -> Markup:
    """Call inside svg_style(): artists and the writer read rcParams when they run."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = _PROLOG.sub("", buffer.getvalue(), count=1)
    svg = _METADATA.sub("", svg, count=1)
    svg = _ID_REFERENCE.sub(lambda m: f"{m.group(1)}{prefix}-", svg)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(description)}" ', 1)
    # A <style> inside inline SVG applies to the whole page; keep matplotlib's rule to SVG.
    svg = svg.replace('<style type="text/css">*{', '<style type="text/css">svg *{', 1)
    # Matplotlib escapes the text it writes, so the markup is safe to embed.
    return Markup(svg.strip())


@contextmanager
def svg_style() -> Iterator[None]:
    """Matplotlib defaults plus SVG_RC, restored afterwards (ignores any user matplotlibrc)."""
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(SVG_RC)
        yield


def _or_nan(value: object) -> float:
    return float(value) if is_number(value) else float("nan")


def plain_text(text: object) -> str:
    # A "$" would switch matplotlib to mathtext; user-supplied names are plain text.
    return str(text).replace("$", r"\$")
