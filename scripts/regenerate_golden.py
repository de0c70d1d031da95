"""Regenerate the report golden files from tests/golden/report/results_example.json.

Run after an intended change to the report templates, wording or charts, then
review the diff of tests/golden/report/ before committing it:

    .venv/bin/python scripts/regenerate_golden.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

from jdl.report import render_report

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "report"
EXAMPLE = GOLDEN / "results_example.json"
OUTPUTS: dict[Literal["html", "markdown"], Path] = {
    "html": GOLDEN / "report_example.html",
    "markdown": GOLDEN / "report_example.md",
}


def main() -> int:
    results = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    for fmt, path in OUTPUTS.items():
        text = render_report(results, fmt=fmt, templates_root=ROOT / "report_templates")
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        print(f"wrote {path.relative_to(ROOT)} ({len(text.encode('utf-8')):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
