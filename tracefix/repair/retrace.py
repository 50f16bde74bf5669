"""Trace a rejected candidate: how the failing test ran on the new code.

The next prompt shows the model its own attempt executing block by block, so it can see
what its change did instead of guessing again from the old trace.
"""

from __future__ import annotations

from pathlib import Path

from tracefix.debugger.prompts import calls_worth_showing, trace_text
from tracefix.tracer.scratch import scratch_copy
from tracefix.repair.validate import TestSettings, write_edited
from tracefix.errors import UserError
from tracefix.tracer.tracing import trace_tests

MAX_VISITS = 12  # the new trace shares the prompt with the old one: keep it short


def retrace_candidate(root: Path, edited: dict[str, str], nodeid: str, function: str,
                      settings: TestSettings) -> str | None:
    """The block trace, as prompt text, of `function` when the failing test runs the edited code."""
    with scratch_copy(root) as scratch:
        write_edited(scratch, edited)
        try:
            run = trace_tests(scratch, [nodeid], functions=[function], test_timeout=settings.test_timeout,
                              run_timeout=settings.run_timeout, pytest_args=settings.pytest_args,
                              python=settings.python)
        except UserError:
            return None  # the candidate broke collection: the test result already says so
        for trace in run.traces:
            info = next((f for f in trace.functions if f.key == function), None)
            if info is not None:
                # rendered here: the block sources live in the scratch copy
                shown = calls_worth_showing(trace, function)[:1]
                return trace_text(scratch, info, shown, MAX_VISITS, trace)
    return None
