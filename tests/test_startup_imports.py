"""What a run imports, and when: work that a run never needs is not paid for at start-up."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path


def _imported_after(code: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter; it prints a JSON object as its last line."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_local_schedulers_compute_without_importing_distributed() -> None:
    # dask imports distributed (0.4 s) on each compute with a scheduler *name*, to look for a client
    seen = _imported_after("""
        import json, sys
        import dask
        from jdl.engine.run import dask_context
        results = {}
        for kind in ("threads", "synchronous"):
            with dask_context(None, local=kind) as executor:
                results[executor] = dask.compute(dask.delayed(sum)([1, 2, 3]))[0]
        print(json.dumps({"results": results, "distributed": "distributed" in sys.modules}))
    """)
    assert seen == {"results": {f"local-threads ({_cpus()} threads)": 6, "local-synchronous": 6},
                    "distributed": False}


def _cpus() -> int:
    from jdl.engine.run import local_worker_count

    return local_worker_count()


# estimation's and the report's libraries: imported by the stages that use them, never by checking a
# spec
LATER = ("scipy.stats", "scipy.optimize", "statsmodels.stats.power", "statsmodels.duration.survfunc",
         "matplotlib", "jinja2.sandbox", "sklearn", "causalml", "ruamel.yaml", "jdl.report")
FIXTURES = Path(__file__).parent / "fixtures" / "specs"
_LATER_LOADED = f"[m for m in {LATER!r} if m in sys.modules]"


def test_importing_the_run_leaves_estimation_and_report_libraries_for_later() -> None:
    seen = _imported_after(f"""
        import json, sys
        import jdl.engine.run
        print(json.dumps({{"later": {_LATER_LOADED}}}))
    """)
    assert seen == {"later": []}


def test_validate_imports_no_estimation_or_report_library() -> None:
    seen = _imported_after(f"""
        import json, sys
        from jdl.cli import main
        status = main(["validate", {str(FIXTURES / "minimal_records.yaml")!r}])
        print(json.dumps({{"status": status, "later": {_LATER_LOADED}}}))
    """)
    assert seen == {"status": 0, "later": []}


def test_an_unknown_estimator_still_fails_validation_before_any_data_is_read(tmp_path: Path) -> None:
    spec = tmp_path / "unknown_estimator.yaml"
    spec.write_text((FIXTURES / "minimal_records.yaml").read_text() + "estimator: {method: no_such_estimator}\n")
    validate = subprocess.run([sys.executable, "-m", "jdl.cli", "validate", str(spec)], capture_output=True,
                              text=True, cwd=tmp_path)
    assert validate.returncode == 2
    assert "estimator.method" in validate.stderr and "no_such_estimator" in validate.stderr
    assert "weighted_difference" in validate.stderr  # the registry lists the names it has
    # the run stops at the same check: its data paths do not exist, so reading them would fail otherwise
    seen = _imported_after(f"""
        import json, sys
        from jdl.cli import main
        status = main(["run", {str(spec)!r}, "--out", {str(tmp_path / "run")!r}, "--quiet"])
        print(json.dumps({{"status": status, "later": {_LATER_LOADED}}}))
    """)
    assert seen == {"status": 2, "later": []}
    assert not (tmp_path / "run").exists()
