"""The published report: results.json rendered through Jinja templates, with inline SVG charts.

This package renders strings only; the engine decides where to write them.
"""

from jdl.report.publishing import publishable_value
from jdl.report.render import render_report
from jdl.report.wording import headline_sentence

__all__ = ["headline_sentence", "publishable_value", "render_report"]
