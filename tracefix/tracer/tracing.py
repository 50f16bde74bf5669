"""Trace the failing tests of a project: find them, then rerun them under the recorder."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from tracefix.tracer.records import TRACE_SCHEMA, TestTrace, TraceSelection, Unrecorded, from_json, to_json
from tracefix.tracer.backends import backend_name
from tracefix.tracer.interpreter import described
from tracefix.tracer.localize import Localization, locate_with_run, top_lines_run_by
from tracefix.tracer.runner import RunResult, TestOutcome, check_usable, run_tests
from tracefix.tracer.selection import Selection, matching, selection_for


@dataclass(frozen=True)
class TraceRun:
    root: str
    backend: str
    python: str
    outcomes: tuple[TestOutcome, ...]  # every test of the first run
    traces: tuple[TestTrace, ...]  # one per traced (failing or named) test
    warnings: tuple[str, ...] = ()
    selection: TraceSelection = TraceSelection("all")  # which functions were recorded
    localization: Localization | None = None  # the ranking that chose them, when one ran
    # Per traced test, the ranking's top MARKED_LINES lines among those that test ran.
    marked: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict, hash=False)

    def unrecorded(self) -> list[Unrecorded]:
        """Each function some traced test ran and its trace left out, once, most suspicious first."""
        seen: dict[str, Unrecorded] = {}
        for trace in self.traces:
            for u in trace.unrecorded:
                seen.setdefault(u.function, u)
        return sorted(seen.values(), key=lambda u: (u.rank is None, u.rank or 0, u.function))

    @property
    def failing(self) -> list[TestOutcome]:
        return [o for o in self.outcomes if o.bad]


MARKED_LINES = 3  # the lines of the ranking a trace marks, per test

# The functions the traced repair records: it edits only recorded functions, and its prompt
# is bounded by tokens, not by a snapshot count (the bare report uses `trace`'s selection).
SUSPECTS_TRACED = 10


def trace_tests(root: Path, test_ids=(), *, functions: list[str] | None = None, files: list[str] | None = None,
                test_timeout: float = 10.0, run_timeout: float = 300.0, pytest_args=(), bounds: dict | None = None,
                backend: str | None = None, baseline: RunResult | None = None,
                suspects: int | None = None, max_snapshots: int | None = None,
                python: str | None = None, ranking: tuple[Localization, RunResult] | None = None) -> TraceRun:
    """Record the failing tests (or the named ones). `functions` limits recording to those keys.

    With `suspects` = N or `max_snapshots` = B the code is ranked first (tracer/selection.py):
    only functions the traced tests ran are recorded, most suspicious first: the top N, or as
    many as fit in B snapshots per test. Each trace names the functions it leaves out.
    `ranking`, a finished `locate_with_run` (of the suite, or of these tests), is used instead
    of running one.
    """
    root = Path(root).resolve()
    warnings: list[str] = []
    interpreter = described(python, "the python given") if python else None
    version = interpreter.version if interpreter else sys.version.split()[0]
    # The child picks its back end on its own interpreter: name that one, not tracefix's.
    used = backend or backend_name(interpreter.has_monitoring if interpreter else None)
    ranked = bool(suspects or max_snapshots) and functions is None
    if ranked and interpreter and not (interpreter.has_coverage or interpreter.has_monitoring):
        # No collector to rank with there: record every project function instead.
        warnings.append(f"coverage.py is not installed in {interpreter.path}: no ranking first, every "
                        "project function recorded")
        ranked = False
    selection = loc = None
    if ranked:
        # The ranking comes first: its coverage run tells which functions each traced test ran.
        # Named tests are ranked over themselves only: the whole suite's coverage run made
        # `trace IDS` cost 10-18x plain pytest on real suites; the order among what they ran
        # then comes from the tracebacks, and `tracefix trace` without ids ranks over the suite.
        loc, coverage = ranking or locate_with_run(root, test_ids=test_ids, test_timeout=test_timeout,
                                                   run_timeout=run_timeout, pytest_args=pytest_args, python=python)
        warnings.extend(w for w in loc.warnings if not (test_ids and w.startswith("every test fails")))
        if test_ids:
            targets = list(test_ids)
            outcomes: tuple[TestOutcome, ...] = ()
            nodeids = matching(test_ids, [o.nodeid for o in loc.outcomes])
        else:
            outcomes = loc.outcomes
            targets = nodeids = [o.nodeid for o in outcomes if o.bad]
            if not targets:
                return TraceRun(str(root), used, version, outcomes, (), tuple(warnings))
        selection = selection_for(loc, coverage, root, nodeids, suspects=suspects or None,
                                  max_snapshots=max_snapshots)
        if selection.recorded:
            functions = list(selection.recorded)
        else:  # the tests ran no project function that coverage saw: record every one
            selection = None
    elif test_ids:
        targets = list(test_ids)
        outcomes = ()
    else:
        first = baseline or run_tests(root, test_timeout=test_timeout, run_timeout=run_timeout,
                                      pytest_args=pytest_args, python=python)
        check_usable(first, root=root)
        outcomes = first.outcomes
        targets = [o.nodeid for o in first.failing]
        if first.collection_errors:
            warnings.extend(f"collection error: {e}" for e in first.collection_errors)
        if not targets:
            return TraceRun(str(root), used, version, outcomes, (), tuple(warnings))
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
            trace = from_json(TestTrace, data)
            traces.append(selection.applied(trace, data.get("dropped_by_function")) if selection else trace)
        elif outcome.outcome == "crashed":
            # The process died with the recording: the trace holds the outcome and no calls.
            traces.append(TestTrace(outcome.nodeid, outcome.outcome, outcome.message, outcome.longrepr, (), (),
                                    duration=outcome.duration))
    timed_out = [o.nodeid for o in run.outcomes if o.outcome == "timeout"]
    warnings.extend(f"{n}: stopped after {test_timeout:g}s (infinite loop or recursion?)" for n in timed_out)
    warnings.extend(f"{o.nodeid}: {o.message}; not traced (raise test_timeout to trace it)"
                    for o in run.outcomes if o.outcome == "slow")
    marked = top_lines_run_by(loc, coverage, root, [t.nodeid for t in traces], MARKED_LINES) if loc else {}
    return TraceRun(str(root), used, version, outcomes,
                    tuple(traces), tuple(warnings), chosen(selection, traces, functions), loc, marked)


def chosen(selection: Selection | None, traces, functions) -> TraceSelection:
    """How the run chose what to record, for its readers."""
    if selection is None:
        return TraceSelection("given" if functions else "all")
    if selection.suspects:
        return TraceSelection("suspects", selection.suspects, None, selection.include(traces))
    return TraceSelection("ranking", None, selection.max_snapshots, selection.include(traces))


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
        "selection": to_json(run.selection),
        "tests": [dict(to_json(t), marked=[{"path": path, "line": line} for path, line in run.marked.get(t.nodeid, ())])
                  for t in run.traces],
    }


