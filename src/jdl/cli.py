"""The `jdl` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
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
                             scheduler=scheduler, on_stage=on_stage)
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
    summary = generate(args.people, Path(args.out), seed=args.seed,
                       on_progress=None if args.quiet else (lambda m: console.print(f"[dim]{m}[/dim]")))
    stdout.print(f"wrote synthetic records to {args.out} in {time.perf_counter() - started:.1f} s: {summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jdl", description="Justice-Data-Lab-style reoffending evaluations")
    parser.add_argument("--version", action="version", version=f"jdl {__import__('jdl').__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True)

    run = verbs.add_parser("run", help="run one evaluation")
    run.add_argument("spec")
    run.add_argument("--out", help="run directory (default runs/<id>/<run-id>/)")
    run.add_argument("--scheduler", help="address of an existing Dask scheduler")
    run.add_argument("--quiet", action="store_true", help="print only the result")
    run.set_defaults(func=_cmd_run)

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
    synth.set_defaults(func=_cmd_synth)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
