"""Trace the failing tests of a project: find them, then rerun them under the recorder."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from tracefix.tracer.records import TRACE_SCHEMA, TestTrace, from_json, to_json
from tracefix.tracer.backends import backend_name
from tracefix.tracer.interpreter import described
from tracefix.tracer.localize import Localization, locate
from tracefix.tracer.runner import RunResult, TestOutcome, check_usable, run_tests


@dataclass(frozen=True)
class TraceRun:
    root: str
    backend: str
    python: str
    outcomes: tuple[TestOutcome, ...]  # every test of the first run
    traces: tuple[TestTrace, ...]  # one per traced (failing or named) test
    warnings: tuple[str, ...] = ()
    localization: Localization | None = None  # the ranking that chose the recorded functions, when one ran

    @property
    def failing(self) -> list[TestOutcome]:
        return [o for o in self.outcomes if o.bad]


SUSPECTS_TRACED = 10  # functions recorded in full by default: the top of the ranking


def trace_tests(root: Path, test_ids=(), *, functions: list[str] | None = None, files: list[str] | None = None,
                test_timeout: float = 10.0, run_timeout: float = 300.0, pytest_args=(), bounds: dict | None = None,
                backend: str | None = None, baseline: RunResult | None = None,
                suspects: int | None = None, python: str | None = None) -> TraceRun:
    """Record the failing tests (or the named ones). `functions` limits recording to those keys;
    `suspects` = N ranks the code first and records only the top N suspect functions."""
    root = Path(root).resolve()
    warnings: list[str] = []
    interpreter = described(python, "the python given") if python else None
    version = interpreter.version if interpreter else sys.version.split()[0]
    if suspects and interpreter and not (interpreter.has_coverage or interpreter.has_monitoring):
        # No collector to rank with there: record every project function instead.
        warnings.append(f"coverage.py is not installed in {interpreter.path}: no ranking first, every "
                        "project function recorded")
        suspects = None
    loc = None
    if test_ids:
        targets = list(test_ids)
        outcomes: tuple[TestOutcome, ...] = ()
    elif suspects:
        # The ranking comes first: only the top suspects are recorded in full, which is what
        # keeps recording cheap on a large suite.
        loc = locate(root, test_timeout=test_timeout, run_timeout=run_timeout, pytest_args=pytest_args,
                     python=python)
        outcomes = loc.outcomes
        targets = [o.nodeid for o in outcomes if o.bad]
        warnings.extend(loc.warnings)
        if not targets:
            return TraceRun(str(root), backend or backend_name(), version, outcomes, (), tuple(warnings))
        functions = [s.function for s in loc.functions if s.function][:suspects] or None
    else:
        first = baseline or run_tests(root, test_timeout=test_timeout, run_timeout=run_timeout,
                                      pytest_args=pytest_args, python=python)
        check_usable(first, root=root)
        outcomes = first.outcomes
        targets = [o.nodeid for o in first.failing]
        if first.collection_errors:
            warnings.extend(f"collection error: {e}" for e in first.collection_errors)
        if not targets:
            return TraceRun(str(root), backend or backend_name(), version, outcomes, (), tuple(warnings))
    options = dict(bounds or {})
    if functions:
        options["functions"] = list(functions)
    if files is not None:
        options["files"] = list(files)
    if backend:
        options["backend"] = backend
    run = run_tests(root, mode="trace", test_ids=targets, options=options, test_timeout=test_timeout,
                    run_timeout=run_timeout, pytest_args=pytest_args, python=python)
    check_usable(run, test_ids, root)
    if run.crashed:
        warnings.append(run.crashed)
    if not outcomes:
        outcomes = run.outcomes
    traces = []
    for outcome in run.outcomes:
        data = run.per_test.get(outcome.nodeid)
        if data:
            traces.append(from_json(TestTrace, data))
        elif outcome.outcome == "crashed":
            # The process died with the recording: the trace holds the outcome and no calls.
            traces.append(TestTrace(outcome.nodeid, outcome.outcome, outcome.message, outcome.longrepr, (), (),
                                    duration=outcome.duration))
    timed_out = [o.nodeid for o in run.outcomes if o.outcome == "timeout"]
    warnings.extend(f"{n}: stopped after {test_timeout:g}s (infinite loop or recursion?)" for n in timed_out)
    warnings.extend(f"{o.nodeid}: {o.message}; not traced (raise test_timeout to trace it)"
                    for o in run.outcomes if o.outcome == "slow")
    return TraceRun(str(root), options.get("backend") or backend_name(), version, outcomes,
                    tuple(traces), tuple(warnings), loc)


def trace_run_json(run: TraceRun) -> dict:
    """The documented, versioned JSON form of a trace run (docs/trace-schema.md)."""
    return {
        "schema": TRACE_SCHEMA,
        "root": run.root,
        "backend": run.backend,
        "python": run.python,
        "summary": {
            "tests": len(run.outcomes),
            "failing": len(run.failing),
            "traced": len(run.traces),
        },
        "warnings": list(run.warnings),
        "tests": [to_json(t) for t in run.traces],
    }


