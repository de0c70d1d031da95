"""The `jdl` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

from rich.console import Console

from jdl.errors import EXIT_BAD_INPUT, JdlUserError

console = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


def _format_percent_points(value: float) -> str:
    return f"{100 * value:+.1f} percentage points"


def _cmd_run(args: argparse.Namespace) -> int:
    from jdl.engine import run_evaluation

    started = time.perf_counter()
    scheduler = args.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    quiet = args.quiet

    def on_stage(name: str) -> None:
        if not quiet:
            console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/dim] {name.replace('_', ' ')}")

    outcome = run_evaluation(Path(args.spec), out_dir=Path(args.out) if args.out else None,
                             scheduler=scheduler, on_stage=on_stage, cache_dir=args.cache_dir,
                             use_cache=not args.no_cache, progress=not quiet,
                             local_scheduler=args.local_scheduler)
    if outcome.results is None:
        console.print("[bold red]The evaluation could not be completed:[/bold red] ", end="")
        console.print(outcome.message, markup=False)
        console.print(f"Attrition and rejects were written to {outcome.run_dir}")
        return outcome.exit_status
    results = outcome.results
    primary = results["measures"][results["primary"]]
    n = results["n"]
    stdout.print(f"[bold]{results['title']}[/bold]")
    stdout.print(
        f"treatment {n['treatment']} matched of {n['submitted']} submitted; "
        f"comparison {n['comparison']} of a pool of {n['comparison_pool']}"
    )
    if primary["display"] == "percent":
        stdout.print(
            f"{primary['label']}: treatment {100 * primary['treatment']:.1f}%, "
            f"comparison {100 * primary['comparison']:.1f}%, difference "
            f"{_format_percent_points(primary['difference'])} "
            f"(95% CI {100 * primary['ci_low']:+.1f} to {100 * primary['ci_high']:+.1f}; "
            f"p = {primary['p_value']:.3g})"
        )
    else:
        stdout.print(f"{primary['label']}: difference {primary['difference']:+.3f} "
                     f"(CI {primary['ci_low']:+.3f} to {primary['ci_high']:+.3f})")
    from jdl.report import headline_sentence

    stdout.print(headline_sentence(primary, organisation=results["organisation"], name=results["primary"],
                                   follow_up=results["method"].get("follow_up", "1y")))
    stdout.print(f"Report: {outcome.run_dir / 'report.html'}")
    stdout.print(f"[dim]finished in {time.perf_counter() - started:.1f} s[/dim]")
    return 0


def _cmd_cache_clear(args: argparse.Namespace) -> int:
    from jdl.sources.cache import cache_root, clear_cache

    summary = clear_cache(args.cache_dir)
    stdout.print(f"cleared {cache_root(args.cache_dir)}: {summary['feature_entries']} feature table(s), "
                 f"{summary['fingerprint_entries']} input fingerprint(s), "
                 f"{summary['bytes'] / 2**20:.1f} MiB")
    return 0


def _cmd_cache_info(args: argparse.Namespace) -> int:
    from jdl.sources.cache import FeatureCache

    cache = FeatureCache(args.cache_dir)
    entries = cache.entries()
    size = sum(entry[2] for entry in entries)
    stdout.print(f"{cache.root}: {len(entries)} feature table(s), {size / 2**20:.1f} MiB "
                 f"(limit {cache.max_bytes / 2**30:.0f} GiB, $JDL_CACHE_MAX_GB)")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from jdl.engine import check_spec
    from jdl.spec import validate_specs

    outcome = validate_specs([Path(p) for p in args.specs], extra_checks=check_spec)
    failed = 0
    for path, problems in outcome.items():
        if problems:
            failed += 1
            console.print(f"[bold red]✗[/bold red] {path}: {len(problems)} problem(s)")
            for problem in problems:
                console.print(f"  - {problem.render()}", markup=False)
        else:
            stdout.print(f"[green]✓[/green] {path}")
    return EXIT_BAD_INPUT if failed else 0


def _cmd_schema(_: argparse.Namespace) -> int:
    from jdl.spec import spec_json_schema

    sys.stdout.write(json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from jdl.synth import generate

    if args.people < 1000:
        raise JdlUserError.single("--people", "too few people for a national record set", value=args.people,
                                  allowed="1000 or more")
    started = time.perf_counter()
    summary = generate(args.people, Path(args.out), seed=args.seed, employment=not args.no_employment,
                       on_progress=None if args.quiet else (lambda m: console.print(f"[dim]{m}[/dim]")))
    cohorts = ", ".join(f"{c.name} {c.rows:,} rows" for c in summary.cohorts)
    spells = ("" if args.no_employment else
              f", {summary.employment_rows:,} employment and {summary.benefits_rows:,} benefit spells")
    stdout.print(f"wrote synthetic records to {args.out} in {time.perf_counter() - started:.1f} s: "
                 f"{summary.people:,} people, {summary.events:,} events{spells}; cohorts: {cohorts}; "
                 f"planted truth in {summary.truth_path}")
    return 0


def _scheduler_address(args: argparse.Namespace) -> str | None:
    return args.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from jdl.audit.reproduce import reproduce_run
    from jdl.engine import run_evaluation

    scheduler = _scheduler_address(args)
    started = time.perf_counter()

    def on_stage(name: str) -> None:
        if not args.quiet:
            console.print(f"[dim]{time.perf_counter() - started:6.1f}s re-run: {name.replace('_', ' ')}[/dim]")

    def run_spec(spec_path: Path, out_dir: Path) -> object:
        return run_evaluation(spec_path, out_dir=out_dir, scheduler=scheduler, on_stage=on_stage)

    outcome = reproduce_run(Path(args.run_dir), run_spec, out_dir=Path(args.out) if args.out else None,
                            current_spec=args.current_spec, ignore_versions=args.ignore_versions)
    stdout.print(outcome.render(), markup=False, end="")
    return outcome.exit_status


def _cmd_diff(args: argparse.Namespace) -> int:
    from jdl.audit.diff import diff_runs

    difference = diff_runs(Path(args.run_a), Path(args.run_b))
    text = difference.render_json() if args.format == "json" else difference.render_text()
    sys.stdout.write(text)
    return 1 if args.exit_code and difference.differs else 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from jdl.batch import BatchEntry, run_batch

    started = time.perf_counter()

    def on_progress(entry: BatchEntry) -> None:
        mark = "[green]✓[/green]" if entry.status == "complete" else "[bold red]✗[/bold red]"
        console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/dim] {mark} {entry.spec}", end="")
        if entry.status == "complete":
            console.print(f" -> {entry.run_dir}")
        else:
            console.print(f" ({entry.status}, exit {entry.exit_status})")
            if not args.quiet:
                console.print("    " + entry.message.replace("\n", "\n    "), markup=False)

    outcome = run_batch([Path(p) for p in args.specs], Path(args.out), scheduler=_scheduler_address(args),
                        on_progress=on_progress)
    for base in outcome.skipped:
        console.print(f"[dim]skipped base spec {base} (extended by other specs)[/dim]")
    failed = len(outcome.failed)
    stdout.print(f"{len(outcome.entries) - failed} of {len(outcome.entries)} evaluation(s) completed"
                 + (f", {failed} did not" if failed else "")
                 + f"; summary: {Path(args.out) / 'summary.csv'}, {Path(args.out) / 'summary.html'}")
    return outcome.exit_status


def _cmd_migrate(args: argparse.Namespace) -> int:
    from jdl.spec.migrations import migrate_file

    pending = 0
    conflicts = 0
    for name in args.specs:
        result = migrate_file(Path(name), write=not args.check)
        for message in result.messages():
            console.print(f"  {message}", markup=False)
        if result.conflicts:
            conflicts += 1
            console.print(f"[bold red]✗[/bold red] {name}: not rewritten (old and new keys both given)")
        elif result.changed:
            pending += 1
            verb = "needs migration" if args.check else "migrated"
            stdout.print(f"{verb}: {name} ({len(result.steps)} key(s))")
        else:
            stdout.print(f"up to date: {name}")
    if conflicts:
        return EXIT_BAD_INPUT
    return 1 if args.check and pending else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jdl", description="Justice-Data-Lab-style reoffending evaluations")
    parser.add_argument("--version", action="version", version=f"jdl {__import__('jdl').__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True)

    run = verbs.add_parser("run", help="run one evaluation")
    run.add_argument("spec")
    run.add_argument("--out", help="run directory (default runs/<id>/<run-id>/)")
    run.add_argument("--scheduler", help="address of an existing Dask scheduler")
    run.add_argument("--quiet", action="store_true", help="print only the result")
    run.add_argument("--cache-dir", help="feature cache folder (default $JDL_CACHE_DIR, else ~/.cache/jdl)")
    run.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")
    run.add_argument("--local-scheduler", choices=("threads", "processes", "synchronous"),
                     help="how to run on this machine when no --scheduler is given: threads (default, "
                     "one per CPU; or $JDL_LOCAL_SCHEDULER), processes (a LocalCluster, one worker "
                     "process per CPU) or synchronous (one thread, for debugging)")
    run.set_defaults(func=_cmd_run)

    cache = verbs.add_parser("cache", help="the feature cache")
    cache_verbs = cache.add_subparsers(dest="cache_verb", required=True)
    cache_clear = cache_verbs.add_parser("clear", help="empty the feature cache (and the input fingerprints)")
    cache_clear.add_argument("--cache-dir", help="the cache folder (default $JDL_CACHE_DIR, else ~/.cache/jdl)")
    cache_clear.set_defaults(func=_cmd_cache_clear)
    cache_info = cache_verbs.add_parser("info", help="where the cache is and what it holds")
    cache_info.add_argument("--cache-dir", help="the cache folder (default $JDL_CACHE_DIR, else ~/.cache/jdl)")
    cache_info.set_defaults(func=_cmd_cache_info)

    validate = verbs.add_parser("validate", help="check specs without reading data")
    validate.add_argument("specs", nargs="+")
    validate.set_defaults(func=_cmd_validate)

    schema = verbs.add_parser("schema", help="print the JSON Schema of the spec")
    schema.set_defaults(func=_cmd_schema)

    synth = verbs.add_parser("synth", help="write synthetic national records with a planted effect")
    synth.add_argument("--people", type=int, required=True)
    synth.add_argument("--out", required=True)
    synth.add_argument("--seed", type=int, default=2013)
    synth.add_argument("--quiet", action="store_true")
    synth.add_argument("--no-employment", action="store_true",
                       help="skip the optional employment and benefits tables")
    synth.set_defaults(func=_cmd_synth)

    reproduce = verbs.add_parser(
        "reproduce", help="re-run a recorded run and prove its results are the same, or say why not",
        description="Re-runs the resolved spec recorded in RUN_DIR/manifest.json and checks that "
        "results.json is byte-identical. Exit 0 when reproduced, 1 when not (with every cause found), "
        "2 for a bad run directory.")
    reproduce.add_argument("run_dir")
    reproduce.add_argument("--out", help="folder for the re-run (default: a temporary folder, kept only "
                           "when the run is not reproduced)")
    reproduce.add_argument("--current-spec", action="store_true",
                           help="re-run the spec file as it is now instead of the recorded resolved spec")
    reproduce.add_argument("--ignore-versions", action="store_true",
                           help="accept different package versions when the results are identical")
    reproduce.add_argument("--scheduler", help="address of an existing Dask scheduler")
    reproduce.add_argument("--quiet", action="store_true", help="print only the verdict")
    reproduce.set_defaults(func=_cmd_reproduce)

    diff = verbs.add_parser("diff", help="differences in method and results between two runs")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when the runs differ")
    diff.set_defaults(func=_cmd_diff)

    batch = verbs.add_parser("batch", help="run many specs; write summary.csv and summary.html")
    batch.add_argument("specs", nargs="+", metavar="DIR_OR_SPEC",
                       help="spec files, or folders searched recursively for *.yaml")
    batch.add_argument("--out", default=str(Path("runs") / "batch"),
                       help="batch folder: one run folder per spec plus the summaries (default runs/batch)")
    batch.add_argument("--scheduler", help="address of an existing Dask scheduler")
    batch.add_argument("--quiet", action="store_true", help="do not print each failure's message")
    batch.set_defaults(func=_cmd_batch)

    migrate = verbs.add_parser("migrate", help="rewrite old spec keys to the current spec_version, "
                               "keeping comments")
    migrate.add_argument("specs", nargs="+")
    migrate.add_argument("--check", action="store_true",
                         help="change nothing; exit 1 when a spec needs migrating")
    migrate.set_defaults(func=_cmd_migrate)
    return parser


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Spec migration and other jdl warnings as one plain line, not Python's warning format."""
    console.print("[yellow]warning:[/yellow] ", end="")
    console.print(str(message), markup=False)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return int(args.func(args))
    except JdlUserError as error:
        console.print("[bold red]error:[/bold red] ", end="")
        console.print(error.render(), markup=False)
        return error.exit_status
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
