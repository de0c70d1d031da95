"""Turning pydantic validation errors into `Problem`s a spec author can act on.

Each problem names the file, line and key path, the bad value, what is
allowed and, where a near miss is likely (a misspelt key or value), a
did-you-mean hint. Errors from the branches of one union (`'national'` or a
list of regions) are folded into one problem.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from jdl.errors import Problem
from jdl.spec.models import SpecRuleError

KeyPath = tuple[Any, ...]  # mapping keys (normally str) and list indexes (int)
WhereFunction = Callable[[KeyPath], str]

_LONGEST_SHOWN_VALUE = 80
_TYPE_MESSAGES = {
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping (a section of `key: value` lines)",
    "model_type": "must be a mapping (a section of `key: value` lines)",
    "model_attributes_type": "must be a mapping (a section of `key: value` lines)",
    "date_type": "must be a date written YYYY-MM-DD",
    "date_parsing": "must be a date written YYYY-MM-DD",
    "date_from_datetime_parsing": "must be a date written YYYY-MM-DD",
    "date_from_datetime_inexact": "must be a date without a time of day, written YYYY-MM-DD",
    "none_required": "must be empty (null)",
    "invalid_key": "keys must be text (put the key in quotes)",
}
_SHORT_FORMS = {  # how each union branch is named when no branch fits
    "string_type": "text",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "date_type": "a date (YYYY-MM-DD)",
}
_PATTERN_EXPLANATIONS = {
    r"^[a-z0-9][a-z0-9._-]*$": "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit",
}


def display_path(path: Path | str) -> str:
    """The path relative to the current directory when the file is under it, else absolute."""
    absolute = Path(os.path.abspath(path))
    for base in (Path(os.getcwd()), Path(os.getcwd()).resolve()):
        try:
            return absolute.relative_to(base).as_posix()
        except ValueError:
            continue
    return absolute.as_posix()


def child_of(data: Any, element: Any) -> tuple[bool, Any]:
    """(True, value) when `data` (a mapping or list) holds `element` as a key or index."""
    if isinstance(data, Mapping) and element in data:
        return True, data[element]
    is_index = isinstance(element, int) and not isinstance(element, bool)
    if isinstance(data, list) and is_index and 0 <= element < len(data):
        return True, data[element]
    return False, None


def format_key_path(key_path: KeyPath) -> str:
    """`('covariates', 5, 'name')` -> `covariates[5].name`; the empty path is `(top level)`."""
    text = ""
    for element in key_path:
        if isinstance(element, int) and not isinstance(element, bool):
            text += f"[{element}]"
        else:
            text += f".{element}" if text else str(element)
    return text or "(top level)"


def validation_problems(
    error: ValidationError, data: Mapping[str, Any], where: WhereFunction, root: type[BaseModel]
) -> list[tuple[KeyPath, Problem]]:
    """One `(key path, Problem)` per user-facing problem in `error`, in pydantic's order."""
    located = [_locate_in_data(detail, data) for detail in error.errors(include_url=False)]
    results: list[tuple[KeyPath, Problem]] = []
    handled_unions: set[KeyPath] = set()
    for item in located:
        rule_error = (item.detail.get("ctx") or {}).get("error")
        if isinstance(rule_error, SpecRuleError):
            results.extend(_rule_problems(item.key_path, rule_error, data, where))
            continue
        if item.union_at is None:
            results.append(_problem(item, where, root))
            continue
        if item.union_at in handled_unions:
            continue
        handled_unions.add(item.union_at)
        branch_errors = [other for other in located if other.union_at == item.union_at]
        results.extend(_union_problems(item.union_at, branch_errors, where, root))
    return _unique(results)


@dataclass(frozen=True)
class _LocatedError:
    detail: ErrorDetails
    key_path: KeyPath  # where in the user's data the error is
    union_at: KeyPath | None  # set when the error came from one branch of a union at this path


def _locate_in_data(detail: ErrorDetails, data: Any) -> _LocatedError:
    """Strip pydantic's union-branch tags from the error location, keeping only real keys."""
    current: Any = data
    key_path: list[Any] = []
    union_at: KeyPath | None = None
    loc = detail["loc"]
    for position, element in enumerate(loc):
        is_last = position == len(loc) - 1
        found, child = child_of(current, element)
        if found:
            current = child
            key_path.append(element)
        elif is_last and detail["type"] == "missing":
            key_path.append(element)
        elif isinstance(element, str):
            if union_at is None:
                union_at = tuple(key_path)
        else:
            key_path.append(element)
    return _LocatedError(detail, tuple(key_path), union_at)


def _union_problems(
    union_at: KeyPath,
    branch_errors: list[_LocatedError],
    where: WhereFunction,
    root: type[BaseModel],
) -> list[tuple[KeyPath, Problem]]:
    # A branch that failed deeper than the union itself matched the value's shape: report its errors.
    deeper = [item for item in branch_errors if len(item.key_path) > len(union_at)]
    if deeper or len(branch_errors) == 1:
        return [_problem(item, where, root) for item in (deeper or branch_errors)]
    forms = [_short_form(item.detail) for item in branch_errors]
    value = branch_errors[0].detail["input"]
    return [
        (
            union_at,
            Problem(
                where(union_at),
                "is not one of the accepted forms",
                _shown_value(value),
                allowed=" or ".join(dict.fromkeys(forms)),
                hint=_field_description(root, union_at),
            ),
        )
    ]


def _short_form(detail: ErrorDetails) -> str:
    if detail["type"] == "literal_error":
        return detail.get("ctx", {}).get("expected", "a listed value")
    return _SHORT_FORMS.get(detail["type"], detail["msg"])


def _problem(
    item: _LocatedError, where: WhereFunction, root: type[BaseModel]
) -> tuple[KeyPath, Problem]:
    detail = item.detail
    kind = detail["type"]
    key_path = item.key_path
    value = detail["input"]
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})

    if kind == "missing":
        return key_path, Problem(
            where(key_path), "required key is missing", hint=_field_description(root, key_path)
        )
    if kind == "extra_forbidden":
        return key_path, _unknown_key_problem(key_path, where, root)
    if kind in ("value_error", "assertion_error"):
        return _model_rule_problem(key_path, str(ctx.get("error", detail["msg"])), value, where)
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", ""))
        return key_path, Problem(
            where(key_path),
            "is not one of the allowed values",
            _shown_value(value),
            allowed=expected or None,
            hint=_did_you_mean(value, re.findall(r"'([^']*)'", expected)),
        )

    message, allowed, hint = _describe_constraint(kind, ctx, value, detail["msg"])
    if kind in ("model_type", "dict_type"):
        section = _model_at(root, key_path)
        allowed = f"a mapping with keys {', '.join(_model_keys(section))}" if section else None
        hint = _field_description(root, key_path)
    if value is None and kind in _TYPE_MESSAGES:
        message += "; it is empty (null)"
    if kind == "string_pattern_mismatch" and hint is None:
        hint = _field_description(root, key_path)
    return key_path, Problem(where(key_path), message, _shown_value(value), allowed, hint)


def _describe_constraint(
    kind: str, ctx: dict[str, Any], value: Any, pydantic_message: str
) -> tuple[str, str | None, str | None]:
    """Message, allowed and hint for type and range errors."""
    if kind in _TYPE_MESSAGES:
        message = _TYPE_MESSAGES[kind]
        if kind.startswith("date") and ctx.get("error"):
            message += f" ({ctx['error']})"
        return message, None, _type_hint(kind, value)
    bounds = {
        "greater_than": ("must be greater than", "gt"),
        "greater_than_equal": ("must be at least", "ge"),
        "less_than": ("must be less than", "lt"),
        "less_than_equal": ("must be at most", "le"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"{words} {_number(ctx.get(key))}", None, None
    if kind in ("too_short", "too_long"):
        words = "at least" if kind == "too_short" else "at most"
        limit = ctx.get("min_length" if kind == "too_short" else "max_length")
        return f"must have {words} {limit} item{'s' if limit != 1 else ''}", None, None
    if kind == "string_too_short":
        return "must not be empty", None, None
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        explained = _PATTERN_EXPLANATIONS.get(pattern, f"text matching the pattern {pattern}")
        hint = f"for example {_slug(value)!r}" if isinstance(value, str) and _slug(value) else None
        return "does not have the required form", explained, hint
    return pydantic_message, None, None


def _type_hint(kind: str, value: Any) -> str | None:
    if kind == "string_type" and isinstance(value, bool | int | float | dt.date):
        kind_read = (
            "true/false"
            if isinstance(value, bool)
            else "date"
            if isinstance(value, dt.date)
            else "number"
        )
        return (
            f"YAML read this unquoted value as a {kind_read}; put it in quotes to keep it as text"
        )
    if kind == "list_type":
        return "write a list as [a, b] or as one `- item` line per item"
    return None


def _unknown_key_problem(key_path: KeyPath, where: WhereFunction, root: type[BaseModel]) -> Problem:
    key = key_path[-1]
    section = _model_at(root, key_path[:-1])
    allowed_keys = _model_keys(section) if section is not None else []
    section_name = f"in {format_key_path(key_path[:-1])}" if key_path[:-1] else "at the top level"
    return Problem(
        where(key_path),
        f"unknown key {key!r} {section_name}",
        allowed=", ".join(allowed_keys) or None,
        hint=_did_you_mean(key, allowed_keys),
    )


def _model_rule_problem(
    key_path: KeyPath, message: str, value: Any, where: WhereFunction
) -> tuple[KeyPath, Problem]:
    """A rule of a whole section (a model validator, located at the section) or a field's check."""
    is_section = isinstance(value, Mapping)
    already_said = value is not None and str(_shown_value(value)) in message
    shown = None if is_section or already_said else _shown_value(value)
    return key_path, Problem(where(key_path), message, shown)


def _rule_problems(
    section_path: KeyPath, error: SpecRuleError, data: Any, where: WhereFunction
) -> list[tuple[KeyPath, Problem]]:
    """One problem per broken rule of a section, each at the key the rule names."""
    results = []
    for relative_path, message in error.violations:
        key_path = (*section_path, *relative_path)
        found, value = True, data
        for element in key_path:
            found, value = child_of(value, element)
            if not found:
                break
        shown = value if found and not isinstance(value, Mapping | list) else None
        results.append(_model_rule_problem(key_path, message, shown, where))
    return results


def _did_you_mean(value: Any, choices: list[str]) -> str | None:
    if not isinstance(value, str) or not choices:
        return None
    by_lower = {choice.lower(): choice for choice in choices}
    matches = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"did you mean {by_lower[matches[0]]!r}?" if matches else None


def _shown_value(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping | list) and len(repr(value)) > _LONGEST_SHOWN_VALUE:
        return None
    return value


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", value.strip().lower()).strip("-._")


def _unique(results: list[tuple[KeyPath, Problem]]) -> list[tuple[KeyPath, Problem]]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for key_path, problem in results:
        if (problem.where, problem.message) not in seen:
            seen.add((problem.where, problem.message))
            unique.append((key_path, problem))
    return unique


# --- the spec models, navigated by key path -------------------------------------------------


def _model_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _field_lookup(model: type[BaseModel], key: Any) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Annotated / Optional / unions."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [inner for arg in get_args(annotation) for inner in _unwrap(arg)]
    return [annotation]


def _step(annotation: Any, element: Any) -> tuple[Any, FieldInfo | None] | None:
    for candidate in _unwrap(annotation):
        if isinstance(element, int) and get_origin(candidate) is list:
            return get_args(candidate)[0], None
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            info = _field_lookup(candidate, element)
            if info is not None:
                return info.annotation, info
    return None


def _resolve(root: type[BaseModel], key_path: KeyPath) -> tuple[Any, FieldInfo | None] | None:
    annotation: Any = root
    info: FieldInfo | None = None
    for element in key_path:
        stepped = _step(annotation, element)
        if stepped is None:
            return None
        annotation = stepped[0]
        info = stepped[1] or info  # a list item is described by its list's field
    return annotation, info


def _model_at(root: type[BaseModel], key_path: KeyPath) -> type[BaseModel] | None:
    resolved = _resolve(root, key_path)
    if resolved is None:
        return None
    for candidate in _unwrap(resolved[0]):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _field_description(root: type[BaseModel], key_path: KeyPath) -> str | None:
    resolved = _resolve(root, key_path)
    if resolved is None or resolved[1] is None:
        return None
    return resolved[1].description
