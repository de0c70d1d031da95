"""Many evaluations in one go: `jdl batch DIR_OR_SPECS… [--out DIR] [--scheduler ADDR]`.

Every spec is checked first (no data read), so a broken spec is reported at
once and never stops the others; the valid ones then run one after another in
this process on one Dask cluster (the engine's local cluster, started once and
reused, or the `--scheduler` cluster), and national-record fingerprints are
hashed once (the fingerprint cache). Each run writes its own run directory under the
batch folder; the batch writes summary.csv and summary.html (a forest plot of
every evaluation's headline difference and interval, and a table). Summaries
hold no timestamps or timings: the same batch gives the same bytes.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from jdl.audit.canonical import normalise
from jdl.errors import EXIT_BAD_INPUT, EXIT_CANNOT_COMPLETE, JdlUserError
from jdl.report.charts import figure_to_svg, plain_text, svg_style
from jdl.spec.problems import display_path

SPEC_SUFFIXES = (".yaml", ".yml")
SUMMARY_COLUMNS = (
    "spec", "id", "organisation", "title", "status", "exit_status", "error",
    "primary", "primary_label", "primary_display", "treatment", "comparison", "difference", "ci_low", "ci_high",
    "p_value", "significant", "suppressed", "headline",
    "n_submitted", "n_linked", "n_treatment", "n_comparison", "n_comparison_pool",
    "matching", "comparison_regions", "follow_up", "spec_sha256", "results_sha256", "run_dir",
)

Status = Literal["complete", "incomplete", "failed"]
RunSpec = Callable[[Path, Path, str | None], tuple[dict[str, Any] | None, int, str]]
"""Runs one spec into a run directory on a scheduler: (results or None, exit status, message)."""


@dataclass(frozen=True)
class BatchEntry:
    """One spec of a batch and what became of it."""

    spec: str
    status: Status
    exit_status: int
    message: str = ""
    run_dir: Path | None = None
    spec_id: str | None = None
    organisation: str | None = None
    title: str | None = None
    results: dict[str, Any] | None = field(default=None, repr=False)
    resolved: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class BatchOutcome:
    out_dir: Path
    entries: tuple[BatchEntry, ...]
    skipped: tuple[str, ...]  # base specs found in folders (extended by others, not evaluations)
    executor: str

    @property
    def failed(self) -> tuple[BatchEntry, ...]:
        return tuple(e for e in self.entries if e.status != "complete")

    @property
    def exit_status(self) -> int:
        """0 when every spec completed; else 2 if any spec was bad input, otherwise 1."""
        if not self.failed:
            return 0
        return max(e.exit_status if e.exit_status in (EXIT_BAD_INPUT, EXIT_CANNOT_COMPLETE)
                   else EXIT_CANNOT_COMPLETE for e in self.failed)


# ---------------------------------------------------------------- finding specs


def collect_specs(arguments: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """Specs named or found (recursively, *.yaml / *.yml, sorted) and the bases skipped.

    A YAML file found in a folder that another found spec `extends` is a base
    (methodology), not an evaluation: it is skipped and reported. A file named
    explicitly is always run. A missing path is an error (exit 2).
    """
    missing = [str(a) for a in arguments if not a.exists()]
    if missing:
        raise JdlUserError.single(", ".join(missing), "no such spec file or folder",
                                  hint="give spec files (*.yaml) or folders holding them")
    named: list[Path] = []
    found: list[Path] = []
    for argument in arguments:
        if argument.is_dir():
            found += sorted(p for p in argument.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(argument).parts))
        else:
            named.append(argument)
    bases = _bases_of([*named, *found])
    specs: list[Path] = []
    skipped: list[Path] = []
    seen: set[Path] = set()
    for path in [*named, *found]:
        identity = path.resolve()
        if identity in seen:
            continue
        seen.add(identity)
        if path in found and identity in bases and path not in named:
            skipped.append(path)
        else:
            specs.append(path)
    return specs, skipped


def _bases_of(paths: Sequence[Path]) -> set[Path]:
    """Resolved paths of every base named by `extends` in the chains of `paths`."""
    from jdl.spec import load_spec

    bases: set[Path] = set()
    for path in paths:
        with contextlib.suppress(JdlUserError):
            bases.update(p.resolve() for p in load_spec(path).chain[1:])
    return bases


# ---------------------------------------------------------------- running


def run_batch(
    arguments: Sequence[Path],
    out_dir: Path,
    *,
    scheduler: str | None = None,
    run_spec: RunSpec | None = None,
    on_progress: Callable[[BatchEntry], None] | None = None,
) -> BatchOutcome:
    """Check every spec, run the valid ones on one Dask client, write the summaries."""
    from jdl.engine import load_and_check

    specs, skipped = collect_specs(arguments)
    if not specs:
        raise JdlUserError.single(", ".join(str(a) for a in arguments), "no spec files found",
                                  hint="a folder is searched recursively for *.yaml and *.yml")
    runner = run_spec or _run_with_engine
    out_dir.mkdir(parents=True, exist_ok=True)
    names = _RunNames()
    entries: list[BatchEntry] = []
    runnable: list[tuple[int, Path, Any]] = []
    for position, path in enumerate(specs):
        try:
            loaded = load_and_check(path)
        except JdlUserError as error:
            entries.append(BatchEntry(display_path(path), "failed", error.exit_status, error.render()))
            if on_progress:
                on_progress(entries[-1])
            continue
        entries.append(BatchEntry(display_path(path), "failed", EXIT_CANNOT_COMPLETE, "not run"))
        runnable.append((position, path, loaded))
    with _shared_scheduler(scheduler if runnable else "none") as (address, executor):
        for position, path, loaded in runnable:
            spec = loaded.spec
            run_dir = out_dir / names.claim(spec.id)
            resolved = _resolved(loaded)
            entry = _run_one(runner, path, run_dir, address, spec, resolved)
            entries[position] = entry
            if on_progress:
                on_progress(entry)
    outcome = BatchOutcome(out_dir, tuple(entries), tuple(display_path(p) for p in skipped), executor)
    write_summaries(outcome)
    return outcome


def _run_one(runner: RunSpec, path: Path, run_dir: Path, address: str | None, spec: Any,
             resolved: dict[str, Any]) -> BatchEntry:
    known = {"spec_id": spec.id, "organisation": spec.organisation, "title": spec.title,
             "resolved": resolved, "run_dir": run_dir}
    try:
        results, status, message = runner(path, run_dir, address)
    except JdlUserError as error:
        return BatchEntry(display_path(path), "failed", error.exit_status, error.render(), **known)
    except Exception as error:  # one broken evaluation must not stop the batch
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "traceback.txt").write_text(traceback.format_exc(), encoding="utf-8")
        return BatchEntry(display_path(path), "failed", EXIT_CANNOT_COMPLETE,
                          f"internal error {type(error).__name__}: {error} (traceback in "
                          f"{display_path(run_dir / 'traceback.txt')})", **known)
    if results is None:
        return BatchEntry(display_path(path), "incomplete", status, message, **known)
    return BatchEntry(display_path(path), "complete", 0, "", results=results, **known)


def _run_with_engine(spec_path: Path, run_dir: Path,
                     scheduler: str | None) -> tuple[dict[str, Any] | None, int, str]:
    from jdl.engine import run_evaluation

    outcome = run_evaluation(spec_path, out_dir=run_dir, scheduler=scheduler)
    return outcome.results, outcome.exit_status, outcome.message


@contextlib.contextmanager
def _shared_scheduler(scheduler: str | None) -> Iterator[tuple[str | None, str]]:
    """The scheduler every run of the batch uses: the cluster given, else the engine's local one.

    The engine keeps one local cluster per process (started by the first run,
    reused by the next), so in-process runs already share it; a `--scheduler`
    address is passed to every run, each of which connects to that one cluster.
    """
    if scheduler == "none":
        yield None, "none"
    elif scheduler:
        yield scheduler, f"distributed:{scheduler}"
    else:
        yield None, "local (shared by the batch's runs in this process)"


class _RunNames:
    """Run folder names: the spec id, made unique with -2, -3 … when two specs share an id."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def claim(self, name: str) -> str:
        candidate, counter = name, 1
        while candidate in self.used:
            counter += 1
            candidate = f"{name}-{counter}"
        self.used.add(candidate)
        return candidate


def _resolved(loaded: Any) -> dict[str, Any]:
    import json

    from jdl.spec import canonical_spec_json

    return dict(json.loads(canonical_spec_json(loaded.spec)))


# ---------------------------------------------------------------- summaries


def summary_rows(outcome: BatchOutcome) -> list[dict[str, Any]]:
    """One row per spec, in batch order, with the headline measure's numbers when it completed."""
    from jdl.report import headline_sentence

    rows = []
    for entry in outcome.entries:
        row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS, "")
        row.update(spec=entry.spec, id=entry.spec_id or "", organisation=entry.organisation or "",
                   title=entry.title or "", status=entry.status, exit_status=entry.exit_status,
                   error=entry.message)
        if entry.run_dir is not None:
            row["run_dir"] = _relative(entry.run_dir, outcome.out_dir)
        resolved = entry.resolved or {}
        if resolved:
            row["matching"] = _matching_summary(resolved.get("matching") or {})
            regions = (resolved.get("comparison_pool") or {}).get("regions")
            row["comparison_regions"] = regions if isinstance(regions, str) else "; ".join(regions or [])
            follow_up = (resolved.get("outcomes") or {}).get("follow_up", "")
            # the row's numbers are the headline's, which refer to the first (primary) window
            row["follow_up"] = follow_up[0] if isinstance(follow_up, list) else follow_up
        results = entry.results
        if results is not None:
            primary_name = results["primary"]
            primary = results["measures"][primary_name]
            n = results.get("n") or {}
            row.update(
                primary=primary_name, primary_label=primary.get("label", ""),
                primary_display=primary.get("display", ""),
                treatment=primary.get("treatment"), comparison=primary.get("comparison"),
                difference=primary.get("difference"), ci_low=primary.get("ci_low"),
                ci_high=primary.get("ci_high"), p_value=primary.get("p_value"),
                significant=primary.get("significant"), suppressed=primary.get("suppressed"),
                headline=headline_sentence(primary, organisation=results.get("organisation"),
                                           name=primary_name,
                                           follow_up=(results.get("method") or {}).get("follow_up", "1y")),
                n_submitted=n.get("submitted"), n_linked=n.get("linked"), n_treatment=n.get("treatment"),
                n_comparison=n.get("comparison"), n_comparison_pool=n.get("comparison_pool"),
                spec_sha256=results.get("spec_sha256", ""),
                results_sha256=_results_sha256(entry),
            )
        rows.append(row)
    return rows


def write_summaries(outcome: BatchOutcome) -> tuple[Path, Path]:
    rows = summary_rows(outcome)
    csv_path = outcome.out_dir / "summary.csv"
    html_path = outcome.out_dir / "summary.html"
    _write_atomically(csv_path, summary_csv(rows))
    _write_atomically(html_path, summary_html(outcome, rows))
    return csv_path, html_path


def summary_csv(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(SUMMARY_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_value(value) for key, value in row.items()})
    return buffer.getvalue()


def summary_html(outcome: BatchOutcome, rows: Sequence[dict[str, Any]]) -> str:
    environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                              keep_trailing_newline=True)
    template = environment.from_string(_SUMMARY_TEMPLATE)
    completed = sum(1 for row in rows if row["status"] == "complete")
    return template.render(
        rows=rows, plots=[Markup(svg) for svg in forest_plots(rows)], completed=completed,
        failed=len(rows) - completed, skipped=outcome.skipped, percent=_is_percent_row,
        fmt=_display_number,
    )


def _is_percent_row(row: dict[str, Any]) -> bool:
    return row.get("primary_display") == "percent"


def forest_plots(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One forest plot (inline SVG) per headline measure: every completed evaluation's difference and CI.

    Evaluations with different headline measures are not put on one axis (their
    units differ); a suppressed headline is not plotted (disclosure control).
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "complete" and not row["suppressed"] and _is_number(row["difference"]):
            groups.setdefault(str(row["primary"]), []).append(row)
    plots = []
    for position, (measure, members) in enumerate(groups.items()):
        with svg_style():
            plots.append(str(_draw_forest(members, f"forest{position}", measure)))
    return plots


def _draw_forest(rows: Sequence[dict[str, Any]], prefix: str, measure: str) -> str:
    from matplotlib.figure import Figure

    percent = _is_percent_row(rows[0])
    scale = 100.0 if percent else 1.0
    figure = Figure(figsize=(7.2, 1.3 + 0.34 * len(rows)), layout="constrained")
    axes = figure.add_subplot()
    positions = list(range(len(rows)))[::-1]  # first evaluation at the top
    for y, row in zip(positions, rows, strict=True):
        difference = scale * float(row["difference"])
        low, high = scale * float(row["ci_low"]), scale * float(row["ci_high"])
        colour = SIGNIFICANT_COLOUR if row["significant"] is True else NOT_SIGNIFICANT_COLOUR
        axes.errorbar([difference], [y], xerr=[[difference - low], [high - difference]], fmt="o",
                      color=colour, ecolor=colour, capsize=3, markersize=5, linewidth=1.2)
    axes.axvline(0.0, color="#666666", linewidth=0.8)
    labels = [plain_text(_forest_label(row)) for row in rows]
    axes.set_yticks(positions, labels=labels)
    axes.set_ylim(-0.7, len(rows) - 0.3)
    unit = "percentage points" if percent else "difference"
    axes.set_xlabel(plain_text(f"{rows[0]['primary_label'] or measure}: treatment minus comparison ({unit})"))
    axes.grid(axis="x", color="#eeeeee", linewidth=0.6)
    axes.set_axisbelow(True)
    return str(figure_to_svg(figure, prefix, f"Forest plot of {measure} differences across the batch"))


def _forest_label(row: dict[str, Any]) -> str:
    follow_up = f", {row['follow_up']} follow-up" if row.get("follow_up") not in ("", "1y", None) else ""
    return f"{row['organisation']} ({row['id']}, n={row['n_treatment']}{follow_up})"


SIGNIFICANT_COLOUR = "#1f4e79"
NOT_SIGNIFICANT_COLOUR = "#9a9a9a"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _display_number(value: Any, percent: bool = False, signed: bool = False) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        number = 100 * float(value) if percent else float(value)
        text = f"{number:+.1f}" if signed and percent else f"{number:.1f}" if percent else (
            f"{number:+.3f}" if signed else f"{number:.3f}")
        return text
    return str(value)


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(normalise(value))
    return value


def _matching_summary(matching: dict[str, Any]) -> str:
    parts = [str(matching.get("method", ""))]
    if matching.get("method") == "nearest_neighbour":
        parts.append(f"1:{matching.get('ratio')}")
        parts.append("with replacement" if matching.get("replace") else "without replacement")
    caliper = matching.get("caliper")
    if isinstance(caliper, dict):
        parts.append(f"caliper {caliper.get('width')} {caliper.get('scale')}")
    if matching.get("exact"):
        parts.append("exact on " + ", ".join(matching["exact"]))
    return "; ".join(parts)


def _results_sha256(entry: BatchEntry) -> str:
    if entry.run_dir is None:
        return ""
    try:
        return hashlib.sha256((entry.run_dir / "results.json").read_bytes()).hexdigest()
    except OSError:
        return ""


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


_SUMMARY_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>jdl batch summary</title>
<style>
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td, tr.incomplete td { background: #fbeaea; }
.note { color: #555; font-size: 0.9em; }
</style>
</head>
<body>
<h1>Batch summary</h1>
<p>{{ rows|length }} evaluation(s): {{ completed }} completed, {{ failed }} did not.{% if skipped %}
Base specs skipped: {{ skipped|join(", ") }}.{% endif %}</p>
<h2>Headline differences</h2>
<p class="note">Each evaluation's pre-specified headline measure: the difference between the
treatment group and its matched comparison group, with its confidence interval.
Blue: statistically significant; grey: the interval spans zero. Suppressed measures are not plotted.</p>
{% for plot in plots %}{{ plot }}
{% else %}<p>No evaluation completed.</p>
{% endfor %}
<h2>Evaluations</h2>
<table>
<thead><tr><th>Spec</th><th>Organisation</th><th>Status</th><th>Measure</th><th>Treatment</th>
<th>Comparison</th><th>Difference</th><th>CI</th><th>p</th><th>n (treatment / comparison)</th>
<th>Matching</th><th>Result or error</th></tr></thead>
<tbody>
{% for row in rows %}{% set pct = percent(row) %}<tr class="{{ row.status }}">
<td>{{ row.spec }}{% if row.id %}<br><span class="note">{{ row.id }}</span>{% endif %}</td>
<td>{{ row.organisation }}</td>
<td>{{ row.status }}</td>
<td>{{ row.primary_label }}</td>
<td class="number">{{ fmt(row.treatment, pct) }}{% if pct and row.treatment != "" %}%{% endif %}</td>
<td class="number">{{ fmt(row.comparison, pct) }}{% if pct and row.comparison != "" %}%{% endif %}</td>
<td class="number">{{ fmt(row.difference, pct, True) }}</td>
<td class="number">{% if row.ci_low != "" %}{{ fmt(row.ci_low, pct, True) }} to {{ fmt(row.ci_high, pct, True) }}{% endif %}</td>
<td class="number">{% if row.p_value != "" %}{{ "%.3g"|format(row.p_value) }}{% endif %}</td>
<td class="number">{% if row.n_treatment != "" %}{{ row.n_treatment }} / {{ row.n_comparison }}{% endif %}</td>
<td>{{ row.matching }}</td>
<td>{% if row.status == "complete" %}{{ row.headline }}{% else %}<pre>{{ row.error }}</pre>{% endif %}</td>
</tr>
{% endfor %}</tbody>
</table>
</body>
</html>
"""
