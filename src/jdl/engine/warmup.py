"""Modules a run needs only after its pass over the records, imported on a background thread.

Estimation (scipy.stats, statsmodels) and the report (matplotlib, Jinja) take over a second to
import, all of it holding the GIL on one core. Imported at start-up they delay the first Dask
work by that much; imported on a thread while matching runs (numpy, BLAS and numba work that
leaves a core idle about half the time), they mostly fill time a core would otherwise spend
waiting. The stages still import what they use themselves: a module the thread has not
finished is waited for (Python's per-module import lock), one it failed to import is imported
again and fails there, as before.
"""

from __future__ import annotations

import importlib
import os
import threading

from jdl.spec import Spec

# Imported on the calling thread before the background thread starts: each adds process-wide
# warning filters when imported (statsmodels: show its warnings always; scipy.sparse: ignore
# np.matrix's PendingDeprecationWarning). Added while another thread is inside
# warnings.catch_warnings(), a filter would be dropped when that block ends.
FILTER_SETTING = ("scipy.sparse", "statsmodels.tools.sm_exceptions")

# What every evaluation imports after the pass: estimation's distributions, power, multiplicity
# and survival curves, then the report's renderer (matplotlib, Jinja templates).
AFTER_THE_PASS = (
    "scipy.stats",
    "scipy.optimize",
    "statsmodels.stats.power",
    "statsmodels.stats.proportion",
    "statsmodels.stats.multitest",
    "statsmodels.duration.survfunc",
    "jdl.report.render",
)
OUTCOME_MODEL_ESTIMATORS = frozenset({"aipw"})
META_LEARNERS = frozenset({"s_learner", "t_learner", "x_learner", "dr_learner"})
# The stage whose start starts the imports: matching, after the pass over the records, which
# leaves a core idle about half of its time (the thread count sampled at 10M: 1.4 runnable on
# average, against 2.0 in the pass and 1.8 in the linkage). Started with the pass the imports
# held the GIL against its Arrow reads and kernels' glue (features +0.7 to +1.2 s at 10M); started
# with the run, against the linkage (+1 s at 1M). Matching grows too (about +0.8 s at 10M on a
# quiet machine), so the gain at 10M is within run-to-run noise; at 1M it is about 0.3 s.
# $JDL_BACKGROUND_IMPORTS names another stage, "start" (as soon as the spec is checked) or "off"
# (each stage imports what it uses).
START_STAGE = "matching"
START_STAGE_ENV = "JDL_BACKGROUND_IMPORTS"
LEARNER_MODULES = {
    "linear": "sklearn.linear_model",
    "gradient_boosting": "sklearn.ensemble",
    "random_forest": "sklearn.ensemble",
}


def modules_for(spec: Spec) -> tuple[str, ...]:
    """The modules `spec`'s run imports after the pass, in the order it needs them."""
    modules = list(AFTER_THE_PASS)
    if spec.estimator.method in OUTCOME_MODEL_ESTIMATORS:
        modules.insert(0, "statsmodels.api")
    if spec.estimator.method in META_LEARNERS:
        # causalml itself is left to the estimator, which imports it under a warning filter
        # (shap's PendingDeprecationWarnings) that a second thread cannot set without a race
        modules.insert(0, LEARNER_MODULES.get(spec.estimator.learner.model, "sklearn.linear_model"))
    return tuple(modules)


def start_stage() -> str:
    return os.environ.get(START_STAGE_ENV) or START_STAGE


class BackgroundImports:
    """Imports `modules` in order on a thread of their own, from `start` on; `join` waits for it."""

    def __init__(self, modules: tuple[str, ...]) -> None:
        self.modules = modules
        self.failed: list[str] = []
        # not a daemon: an interpreter that exits mid-import can crash in a daemon thread
        self._thread = threading.Thread(target=self._run, name="jdl-background-imports")
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start importing (a second call does nothing)."""
        with self._lock:
            if self._thread.ident is not None:
                return
            for name in FILTER_SETTING:
                _try_import(name, self.failed)
            self._thread.start()

    def _run(self) -> None:
        for name in self.modules:
            _try_import(name, self.failed)

    def join(self) -> None:
        with self._lock:
            started = self._thread.ident is not None
        if started:
            self._thread.join()


def _try_import(name: str, failed: list[str]) -> None:
    try:
        importlib.import_module(name)
    except Exception:  # the stage that needs it imports it again and reports the error there
        failed.append(name)


__all__ = ["BackgroundImports", "modules_for", "start_stage"]
