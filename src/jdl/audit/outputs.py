"""Writing a run directory so that an interrupted run never looks complete.

Everything is written to a hidden staging folder inside the run directory and
moved into place at the end, `results.json` last: its presence means the run
finished.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pandas as pd


class RunWriter:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.staging = run_dir / f".staging-{uuid.uuid4().hex[:8]}"
        self.staging.mkdir()
        self._staged: list[str] = []

    def text(self, name: str, content: str) -> None:
        (self.staging / name).write_text(content, encoding="utf-8")
        self._staged.append(name)

    def csv(self, name: str, frame: pd.DataFrame) -> None:
        frame.to_csv(self.staging / name, index=False, lineterminator="\n")
        self._staged.append(name)

    def parquet(self, name: str, frame: pd.DataFrame) -> None:
        frame.to_parquet(self.staging / name, index=False)
        self._staged.append(name)

    def adopt(self, name: str) -> Path:
        """A file that something else writes into the staging folder directly (e.g. the log)."""
        self._staged.append(name)
        return self.staging / name

    def commit(self, last: str | None = "results.json") -> list[Path]:
        """Move staged files into the run directory, `last` at the very end."""
        order = [n for n in self._staged if n != last] + ([last] if last in self._staged else [])
        if last is not None and (self.run_dir / last).exists():
            (self.run_dir / last).unlink()
        moved = []
        for name in order:
            target = self.run_dir / name
            os.replace(self.staging / name, target)
            moved.append(target)
        shutil.rmtree(self.staging, ignore_errors=True)
        self._staged.clear()
        return moved

    def abandon(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
