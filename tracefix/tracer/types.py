"""The tracer's back-end interfaces, declared once (as coverage.py's `types.py` declares its
`Tracer`), and the `sys.monitoring` tool ids tracefix takes.

    RecorderBackend   settrace.SettraceBackend | monitoring.MonitoringBackend, chosen in backends.py
    LineCollector     coverage_session.CoverageLines | coverage_session.MonitoringLines, chosen there too
    ChildSession      what the child's pytest plugin drives per test: plugin.NullSession,
                      trace_session.TraceSession, coverage_session.CoverageSession (child.py picks)
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

# sys.monitoring tool ids. 0-2 are claimed by convention (PEP 669: debugger, coverage,
# profiler) and 5 by the optimizer; pdb or coverage.py's sysmon core can run beside tracefix.
COVERAGE_TOOL_ID = 3  # the per-test line collector (coverage_session.MonitoringLines)
RECORDER_TOOL_ID = 4  # the block recorder (monitoring.MonitoringBackend)


class RecorderBackend(Protocol):
    """Feeds a `recorder.Recorder` with calls, lines and returns of the functions it targets."""

    # True: every visit is seen, so elided ranges have exact ends; False: lines are switched
    # off once seen (sys.monitoring DISABLE), so the trace says where a count is open-ended.
    counts_elided: bool

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LineCollector(Protocol):
    """Per-test executed lines of the project's files."""

    name: str

    def skip(self, paths) -> None: ...  # measure none of these files (test code pytest collected)

    def start(self) -> None: ...

    def begin(self, nodeid: str) -> None: ...

    def timed_out(self) -> None: ...

    def end(self, nodeid: str) -> dict[str, list[int]]: ...

    def stop(self) -> None: ...


class ChildSession(Protocol):
    """What a mode of the child process does around each test; `close` is the run's summary."""

    def begin_test(self, nodeid: str) -> None: ...

    def end_test(self, nodeid: str, outcome: dict) -> Optional[dict]: ...

    def on_timeout(self, frame: Any) -> None: ...

    def close(self) -> dict: ...
