"""Finding a report template folder and rendering it safely.

Built-in templates (folders under report_templates/) are project code and render
in an ordinary autoescaping environment. Any other folder is user code: it
renders in jinja2's immutable sandbox, which refuses Python internals such as
`__class__` and any mutation of the values it is given.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError, TemplateError, TemplateNotFound, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

import jdl
from jdl.errors import JdlUserError

TEMPLATE_FILES: dict[str, str] = {"html": "report.html.j2", "markdown": "report.md.j2"}
SANDBOX_HINT = (
    "report templates outside report_templates/ run in a sandbox: they may read the report "
    "values (report.*, results.*, charts.*) but not Python internals such as __class__"
)


def default_templates_root() -> Path:
    return Path(jdl.__file__).resolve().parents[2] / "report_templates"


@dataclass(frozen=True)
class ReportTemplate:
    """A template folder, and whether it is one of the project's own (trusted) templates."""

    folder: Path
    trusted: bool

    def file_for(self, fmt: str) -> str:
        try:
            filename = TEMPLATE_FILES[fmt]
        except KeyError:
            raise JdlUserError.single(
                "report format",
                "unknown report format",
                value=fmt,
                allowed=", ".join(TEMPLATE_FILES),
            ) from None
        if not (self.folder / filename).is_file():
            raise JdlUserError.single(
                f"report template {self.folder}",
                f"has no {filename}",
                allowed=f"a template folder holding {' and '.join(TEMPLATE_FILES.values())}",
            )
        return filename


def available_templates(templates_root: Path) -> list[str]:
    if not templates_root.is_dir():
        return []
    return sorted(
        entry.name
        for entry in templates_root.iterdir()
        if entry.is_dir() and any((entry / name).is_file() for name in TEMPLATE_FILES.values())
    )


def resolve_template(template: str, templates_root: Path | None = None) -> ReportTemplate:
    """A folder name under `templates_root`, or a path to a template folder."""
    root = (templates_root or default_templates_root()).resolve()
    if _looks_like_path(template):
        folder = Path(template).expanduser().resolve()
        if not folder.is_dir():
            raise JdlUserError.single(
                "report.template",
                "the template folder does not exist",
                value=template,
                allowed=f"a folder holding {' and '.join(TEMPLATE_FILES.values())}",
            )
        return ReportTemplate(folder, trusted=folder.is_relative_to(root))
    folder = root / template
    if template not in available_templates(root):
        choices = ", ".join(available_templates(root)) or "none found"
        raise JdlUserError.single(
            "report.template",
            f"unknown report template (looked in {root})",
            value=template,
            allowed=choices,
            hint="to use a template folder of your own, give its path, e.g. ./my_template",
        )
    return ReportTemplate(folder, trusted=True)


def render_template(template: ReportTemplate, fmt: str, context: Mapping[str, Any]) -> str:
    filename = template.file_for(fmt)
    environment = _environment(template)
    try:
        return environment.get_template(filename).render(**context)
    except TemplateSyntaxError as exc:
        raise _template_error(template, exc.filename or filename, exc.lineno, exc) from exc
    except TemplateNotFound as exc:
        raise _template_error(template, filename, _template_line(exc, template), exc) from exc
    except TemplateError as exc:
        raise _template_error(template, *_template_location(exc, template, filename), exc) from exc
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as exc:
        if template.trusted:
            raise
        raise _template_error(template, *_template_location(exc, template, filename), exc) from exc


def markdown_cell(value: object) -> str:
    """Text that cannot break a markdown table row or start emphasis."""
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")


def _environment(template: ReportTemplate) -> jinja2.Environment:
    options: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(template.folder),
        "autoescape": True,
        "undefined": jinja2.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
    }
    environment = (
        jinja2.Environment(**options)
        if template.trusted
        else ImmutableSandboxedEnvironment(**options)
    )
    environment.filters["md_cell"] = markdown_cell
    return environment


def _looks_like_path(template: str) -> bool:
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return (
        any(s in template for s in separators)
        or template.startswith((".", "~"))
        or Path(template).is_absolute()
    )


def _template_location(
    exc: BaseException, template: ReportTemplate, default_file: str
) -> tuple[str, int | None]:
    """The innermost template frame of a rendering error (jinja rewrites frames to template lines)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = Path(frame.filename)
        if path.suffix == ".j2" or path.parent == template.folder:
            return str(path), frame.lineno
    return default_file, None


def _template_line(exc: BaseException, template: ReportTemplate) -> int | None:
    return _template_location(exc, template, "")[1]


def _template_error(
    template: ReportTemplate, file: str, line: int | None, exc: BaseException
) -> JdlUserError:
    path = Path(file)
    if not path.is_absolute():
        path = template.folder / path
    where = f"report template {path}" + (f", line {line}" if line else "")
    kind = type(exc).__name__
    message = (getattr(exc, "message", None) or str(exc)).rstrip(".")
    hint = SANDBOX_HINT if isinstance(exc, SecurityError) else None
    return JdlUserError.single(where, f"{kind}: {message}", hint=hint)
