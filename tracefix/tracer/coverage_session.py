"""The child-side session that records which project lines each test runs.

Each test's lines go out with that test's outcome line ({"lines": {relpath: [line, ...]}}),
so a run killed from outside keeps every test before the one that hung.

Two collectors behind one interface, chosen once in `collector_for`:
- "coverage": coverage.py with one dynamic context per test (the pytest-cov way). Its
  C tracer is a settrace hook: every line event of a measured file costs a C call.
- "monitoring" (3.12+): a sys.monitoring LINE collector that DISABLEs each line after
  its first event and turns them all back on at the next test, so a line costs one
  callback per test however hot the loop. coverage.py's own sysmon core cannot switch
  contexts, which is why this one exists. bench/LOCALIZE.md has the measurements.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import CodeType

from tracefix.errors import UserError
from tracefix.tracer.project import source_files
from tracefix.tracer.types import COVERAGE_TOOL_ID, LineCollector



class CoverageSession:
    def __init__(self, root: Path, options: dict) -> None:
        self.root = Path(root).resolve()
        files = options.get("files") or source_files(self.root)
        self.collector = collector_for(options.get("collector"), self.root, files)
        self.started = False

    def begin_test(self, nodeid: str) -> None:
        if not self.started:
            # Started at the first test, not before: measuring pytest's start-up (plugin
            # imports, assertion rewriting, collection) cost ~0.2 s a run and no test owns
            # those lines. Functions imported earlier are still seen when a test calls them.
            self.collector.start()
            self.started = True
        self.collector.begin(nodeid)

    def skip_files(self, paths) -> None:
        self.collector.skip(paths)

    def stop_test(self) -> None:
        if self.started:
            self.collector.pause()

    def pause(self) -> None:
        if self.started:
            self.collector.pause()

    def resume(self) -> None:
        if self.started:
            self.collector.resume()

    def on_timeout(self, frame) -> None:
        """The lines run so far are read in end_test like any test's."""
        self.collector.timed_out()

    def end_test(self, nodeid: str, outcome: dict) -> dict:
        return {"lines": self.collector.end(nodeid)}

    def close(self) -> dict:
        if self.started:
            self.collector.stop()
        return {"collector": self.collector.name}


def check_collector(name: str | None, interpreter=None) -> str | None:
    """`name` when the Python that runs the tests (`interpreter`, else this one) can run that
    collector (None: the default), else a UserError naming the option; checked in tracefix's
    process, before any test runs."""
    if name not in (None, "coverage", "monitoring"):
        raise UserError(f"unknown collector {name!r}: use coverage or monitoring")
    monitoring = interpreter.has_monitoring if interpreter is not None else hasattr(sys, "monitoring")
    if name == "monitoring" and not monitoring:
        version = interpreter.version if interpreter is not None else sys.version.split()[0]
        raise UserError(f"--collector monitoring needs Python 3.12+ (the tests run on {version})")
    return name


def collector_for(name: str | None, root: Path, files: list[str]) -> LineCollector:
    """The line collector named, or the cheapest one this Python has: chosen here only."""
    name = check_collector(name) or ("monitoring" if _monitoring_free() else "coverage")
    return MonitoringLines(root, files) if name == "monitoring" else CoverageLines(root, files)


def _monitoring_free() -> bool:
    return hasattr(sys, "monitoring") and sys.monitoring.get_tool(COVERAGE_TOOL_ID) is None


class _Paths:
    """Project-relative paths of the measured files, from whatever spelling Python used."""

    def __init__(self, root: Path, files: list[str]) -> None:
        self.root = root
        self.by_abs = {os.path.normcase(str(root / rel)): rel for rel in files}
        self._cache: dict[str, str | None] = {}

    def skip(self, paths) -> None:
        """Measure none of these files (the test modules pytest collected, conftest files)."""
        for path in paths:
            for spelling in (os.path.abspath(path), os.path.realpath(path)):
                self.by_abs.pop(os.path.normcase(spelling), None)
        self._cache.clear()

    def lines_by_rel(self, hits: dict[str, set[int]]) -> dict[str, list[int]]:
        """{filename: lines} as {project-relative path: sorted lines}: files outside the project
        and empty ones left out, two spellings of one file merged."""
        out: dict[str, set[int]] = {}
        for filename, lines in hits.items():
            rel = self.rel(filename)
            if rel is not None and lines:
                out.setdefault(rel, set()).update(lines)
        return {rel: sorted(lines) for rel, lines in out.items()}

    def rel(self, filename: str) -> str | None:
        try:
            return self._cache[filename]
        except KeyError:
            pass
        path = os.path.normcase(os.path.abspath(filename))
        rel = self.by_abs.get(path)
        if rel is None:
            rel = self.by_abs.get(os.path.normcase(os.path.realpath(filename)))
        self._cache[filename] = rel
        return rel


class CoverageLines:
    """coverage.py, its data flushed at each test's end; nothing written to disk."""

    name = "coverage"

    def __init__(self, root: Path, files: list[str]) -> None:
        import coverage

        self.paths = _Paths(root, files)
        # config_file=False: the user's .coveragerc must not change what we measure or
        # where data goes; data_file=None keeps the data in memory.
        self.cov = coverage.Coverage(data_file=None, config_file=False, branch=False, include=self._include())
        # Dynamic contexts need a tracer core: coverage's sysmon core (its default from
        # 3.14) cannot switch contexts and would silently merge every test.
        self.cov.set_option("run:core", "ctrace")
        self.cov.set_option("run:disable_warnings", ["no-data-collected", "module-not-measured",
                                                     "module-not-imported", "no-ctracer"])
        self.context: str | None = None  # the test whose lines a flush holds, None between tests
        self.paused = False
        self.lines: dict[str, set[int]] = {}  # the current test's, by measured file
        self.flushes_seen = False  # coverage.py called add_lines with lines at least once
        self.queried = False  # it stored data without it: each test's lines are queried back
        self.interrupted = False

    def _include(self) -> list[str]:
        return sorted(self.paths.by_abs) or [str(self.paths.root / "__no_source__")]

    def skip(self, paths) -> None:
        """Before the start, coverage is told too: test modules with custom names (pytest's
        python_files) are otherwise traced line by line, at the suite's cost, and dropped after."""
        self.paths.skip(paths)
        self.cov.set_option("run:include", self._include())

    def start(self) -> None:
        self.cov.start()
        # Each test's lines are taken as coverage.py flushes them (it does at every
        # switch_context) instead of being written to its SQLite data and queried back per
        # measured file: those writes and queries were 0.45 s of sqlparse's 1.0 s suite.
        # coverage.py 5.0-7.x flush through CoverageData.add_lines; should one store its data
        # another way, its data fills up and `end` reads it back per test instead.
        self.cov.get_data().add_lines = self._flushed

    def _flushed(self, line_data) -> None:
        """coverage.py's flush of the lines run since the last switch_context: the current
        test's while one runs unpaused, else code no test owns."""
        if line_data:
            self.flushes_seen = True
        if self.context is None or self.paused:
            return
        for filename, lines in line_data.items():
            self.lines.setdefault(filename, set()).update(lines)

    def timed_out(self) -> None:
        self.interrupted = True

    def _release_stale_lock(self) -> None:
        """Free coverage's data lock if a timeout left it held.

        The per-test timeout is a Python SIGALRM handler that raises; it can run inside
        the lock_data/unlock_data callbacks CTracer calls from C, and then the lock is
        never released and the next switch_context deadlocks (about 1 run in 10 of
        QuixBugs' longest_common_subsequence, whose slow test times out). The test is
        over and its tracer idle, so a lock still held after a short wait is stale.
        """
        lock = getattr(getattr(self.cov, "_collector", None), "data_lock", None)
        if lock is None:
            return
        lock.acquire(timeout=0.2)  # ours if free; if not, the stale holder's
        lock.release()

    def begin(self, nodeid: str) -> None:
        self.context, self.paused, self.lines = None, False, {}
        self.cov.switch_context(nodeid)  # flushes what ran between tests: dropped
        self.context = nodeid

    def pause(self) -> None:
        if self.context is not None and not self.paused:
            self.cov.switch_context("")  # flushes the test's lines so far
            self.paused = True

    def resume(self) -> None:
        if self.context is not None and self.paused:
            self.cov.switch_context(self.context)  # flushes what ran paused: dropped
            self.paused = False

    def end(self, nodeid: str) -> dict[str, list[int]]:
        if self.interrupted:
            self.interrupted = False
            self._release_stale_lock()
        self.cov.switch_context("")  # flushes the rest of the test's lines
        # Code that runs between tests (fixture teardown of a wider scope) belongs to no test.
        self.context, self.paused = None, False
        if not self.flushes_seen and not self.queried:
            self.queried = bool(self.cov.get_data().measured_files())
        lines, self.lines = (self._query(nodeid) if self.queried else self.lines), {}
        return self.paths.lines_by_rel(lines)

    def _query(self, nodeid: str) -> dict[str, set[int]]:
        """The test's lines from coverage.py's own data, under the test's dynamic context."""
        data = self.cov.get_data()
        data.set_query_context(nodeid)
        return {filename: set(data.lines(filename) or ()) for filename in data.measured_files()}

    def stop(self) -> None:
        self.cov.stop()


class MonitoringLines:
    """A sys.monitoring line collector: each line reports once per test, then is DISABLEd.

    Only project code gets LINE events, set on its code objects as their modules execute:
    an audit hook sees every `exec` of a module's code (importlib runs modules with exec,
    lazy imports inside a test included) and instruments it and the code nested in it.
    A global PY_START event found them before, but `restart_events()`, which turns each
    test's DISABLEd lines back on, turned it back on for every function in the process:
    half the callbacks of a run (164k of 328k on sqlparse's suite) re-reported pytest's and
    the stdlib's functions at each test.
    """

    name = "monitoring"

    def __init__(self, root: Path, files: list[str]) -> None:
        self.paths = _Paths(root, files)
        self.mon = sys.monitoring
        # Keep instrumented code objects alive so their ids are never reused by others.
        self._instrumented: dict[int, object] = {}
        self._executed: list = []  # module code run before the first test, instrumented then
        self.started = self.stopped = False
        self._hits: list = []  # (code, line) of the current test, each once (then DISABLEd)
        self._on_line = self._line_callback(self._hits.append, self.mon.DISABLE)
        # Installed now, in the child before pytest collects: the project's modules are
        # imported by the test modules, before any test. Audit hooks cannot be removed,
        # so after `stop` it returns at once.
        sys.addaudithook(self._on_audit)

    @staticmethod
    def _line_callback(record, disable):
        def on_line(code, line):
            record((code, line))
            return disable
        return on_line

    def _on_audit(self, event: str, args) -> None:
        if event != "exec" or self.stopped:
            return
        code = args[0]
        if isinstance(code, CodeType) and self.paths.rel(code.co_filename) is not None:
            if self.started:
                self._instrument(code)
            else:
                self._executed.append(code)

    def _instrument(self, code: CodeType) -> None:
        """LINE events on `code` and every function, class body and comprehension in it."""
        todo = [code]
        while todo:
            code = todo.pop()
            if id(code) in self._instrumented:
                continue
            # Events first: a timeout raised between the two lines must not leave the code
            # marked as instrumented without its LINE events.
            self.mon.set_local_events(COVERAGE_TOOL_ID, code, self.mon.events.LINE)
            self._instrumented[id(code)] = code
            todo.extend(c for c in code.co_consts if isinstance(c, CodeType))

    def start(self) -> None:
        mon = self.mon
        if mon.get_tool(COVERAGE_TOOL_ID) is not None:
            raise RuntimeError(f"sys.monitoring tool id {COVERAGE_TOOL_ID} is taken by "
                               f"{mon.get_tool(COVERAGE_TOOL_ID)}")
        mon.use_tool_id(COVERAGE_TOOL_ID, "tracefix-coverage")
        self.started = True
        executed, self._executed = self._executed, []
        for code in executed:  # test modules are no longer project paths (`skip`)
            if self.paths.rel(code.co_filename) is not None:
                self._instrument(code)
        self.pause()

    def skip(self, paths) -> None:
        self.paths.skip(paths)

    def timed_out(self) -> None:
        """Nothing to repair: the callbacks take no lock."""

    def pause(self) -> None:
        # No callback: lines run while paused stay enabled, the test may run them later.
        self.mon.register_callback(COVERAGE_TOOL_ID, self.mon.events.LINE, None)

    def resume(self) -> None:
        self.mon.register_callback(COVERAGE_TOOL_ID, self.mon.events.LINE, self._on_line)

    def begin(self, nodeid: str) -> None:
        self._hits.clear()
        # Turns back on every line DISABLEd during the previous test (all tools': in a
        # coverage run no other tracefix tool is active).
        self.mon.restart_events()
        self.resume()

    def end(self, nodeid: str) -> dict[str, list[int]]:
        self.pause()
        hits: dict[str, set[int]] = {}
        for code, line in self._hits:
            hits.setdefault(code.co_filename, set()).add(line)
        self._hits.clear()
        return self.paths.lines_by_rel(hits)

    def stop(self) -> None:
        mon = self.mon
        self.stopped = True
        for code in self._instrumented.values():
            mon.set_local_events(COVERAGE_TOOL_ID, code, 0)
        mon.register_callback(COVERAGE_TOOL_ID, mon.events.LINE, None)
        mon.free_tool_id(COVERAGE_TOOL_ID)
