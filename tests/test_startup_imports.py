"""What a run imports, and when: work that a run never needs is not paid for at start-up."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


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
