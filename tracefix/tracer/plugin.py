"""The pytest plugin loaded in the child process: outcomes, per-test timeouts, session hooks.

A *session* (recorder, coverage contexts, or nothing) is told when each test begins and
ends. Each finished test is written at once as one JSON line, so a run killed from outside
still leaves everything before the test that hung or crashed; the id of the test about to
run is written first, so the runner knows which test a crash killed.

Only the process that started the session reports: a test that forks a child which returns
into pytest would otherwise run (and report) the rest of the suite a second time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import pytest

MAX_LONGREPR = 6000
MAX_DEFERRALS = 100  # 10 ms each: a timeout is late by at most a second
# Where tracefix's and coverage's code lives, as frames name it (the child imports tracefix
# through a linked folder, see runner.child_command) and as it really is.
def _tool_packages() -> tuple[Path, ...]:
    packages = [Path(__import__("tracefix").__file__).parent]
    # coverage.py is needed only by its collector (the project's interpreter may lack it):
    # found, not imported, since importing it cost 70 ms of every run that does not measure.
    spec = importlib.util.find_spec("coverage")
    if spec is not None and spec.origin:
        packages.append(Path(spec.origin).parent)
    return tuple(packages)


_TOOL_PACKAGES = _tool_packages()
_TOOL_DIRS = tuple(dict.fromkeys(str(p) for d in _TOOL_PACKAGES for p in (d, d.resolve())))
_TRACEFIX_CHECKOUT = _TOOL_PACKAGES[0].resolve().parent


def _in_tool_code(frame) -> bool:
    return frame is not None and frame.f_code.co_filename.startswith(_TOOL_DIRS)


_modules_seen = 0


def _hide_tool_frames() -> None:
    """Mark tracefix's and coverage.py's loaded modules so pytest leaves their frames out of a
    failure report (pytest reads `__tracebackhide__` from a frame's globals too).

    The tracer runs on the user's stack: an endless recursion overflows it inside the
    recorder, and the report, which the repair prompt quotes, would end in tracefix's code.
    """
    global _modules_seen
    if len(sys.modules) == _modules_seen:
        return
    _modules_seen = len(sys.modules)
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.startswith(_TOOL_DIRS):
            module.__tracebackhide__ = True


class TestTimeout(BaseException):
    """Raised in the test's thread when it runs past the per-test timeout.

    A BaseException so that user code catching `Exception` cannot swallow it; pytest
    still reports it as a failure of that test.
    """


class NullSession:
    def skip_files(self, paths) -> None: ...
    def begin_test(self, nodeid: str) -> None: ...
    def stop_test(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def end_test(self, nodeid: str, outcome: dict) -> dict | None: return None
    def on_timeout(self, frame) -> None: ...
    def close(self) -> dict: return {}


class CoverageReportOff:
    """Switches pytest-cov off in tracefix's runs, where it is installed and loads.

    A project's `--cov` addopts would otherwise write `.coverage` (and any report it asks
    for) into the user's tree, and fail the run on `--cov-fail-under` when tracefix's own
    tracer hides lines from it. `--no-cov` on the command line does the same, but pytest
    refuses it as an unknown argument where the project switches the plugin off
    (`-p no:pytest_cov`); the option pytest-cov reads is set only where pytest-cov defined it.
    """

    # A wrapper runs before pytest-cov's own tryfirst hook, which starts coverage.
    @pytest.hookimpl(hookwrapper=True)
    def pytest_load_initial_conftests(self, early_config, parser, args):
        options = early_config.known_args_namespace
        if hasattr(options, "no_cov"):
            options.no_cov = True
        yield


class XdistOff:
    """Runs the tests in tracefix's child itself where the project's `addopts` ask pytest-xdist
    for workers (`-n auto`, `--dist loadfile`).

    xdist's workers are other processes: a test there escapes the recorder, the per-test
    coverage, the per-test timeout and the outcome stream, and the child would report that
    pytest collected nothing. `-n 0` on the command line does the same, but pytest refuses it
    as an unknown argument where xdist is not installed or is switched off (`-p no:xdist`).
    """

    # A wrapper runs before xdist's own tryfirst hook, which turns `-n` into workers.
    @pytest.hookimpl(hookwrapper=True)
    def pytest_cmdline_main(self, config):
        options = config.option
        if hasattr(options, "numprocesses"):
            options.numprocesses = 0
            options.dist = "no"
            if hasattr(options, "distload"):
                options.distload = False
        yield


class OutcomePlugin:
    def __init__(self, root: Path, out, current_path: Path, session, test_timeout: float) -> None:
        self.root = Path(root).resolve()
        self.out = out
        self.current_path = current_path
        self._current = None  # kept open: a file opened per test cost ~2 ms each on a shared VM
        self.session = session
        self.test_timeout = test_timeout
        self.collection_errors: list[str] = []
        self._outcome: dict = {}
        # Debugging tracefix itself: its frames are the user's code then, and stay in reports.
        self._hides_tool_frames = _TRACEFIX_CHECKOUT != self.root
        self.pid = os.getpid()
        self._paths: dict[str, str | None] = {}  # code file -> project-relative path (None: not the project's)

    def pytest_collection_finish(self, session) -> None:
        # The runner restarts a crashed child with the tests it had not run yet.
        (self.current_path.parent / "collected.json").write_text(json.dumps([i.nodeid for i in session.items]))
        self.session.skip_files(test_code_files(session))
        _quiet_assertion_reprs(self.session)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        self._mark_current(item.nodeid)
        self._outcome = {"nodeid": item.nodeid, "outcome": "passed", "message": "", "longrepr": "",
                         "frames": [], "duration": 0.0}
        started = time.perf_counter()
        previous = self._arm_timeout()
        try:
            yield
        finally:
            if os.getpid() != self.pid:
                # A process the test forked came back into pytest: it must neither report nor
                # run the rest of the session. os._exit skips pytest's and atexit's output.
                os._exit(0)
            self._disarm_timeout(previous)
            self._outcome["duration"] = round(time.perf_counter() - started, 4)
            extra = self.session.end_test(item.nodeid, self._outcome)
            line = dict(self._outcome, **({"session": extra} if extra is not None else {}))
            self.out.write(json.dumps(line) + "\n")
            self.out.flush()

    def _mark_current(self, nodeid: str) -> None:
        """Name the running test where the runner finds it if this process dies: rewritten in
        place and flushed, so a crash (the kernel keeps the written page) leaves it readable."""
        if self._current is None:
            self._current = open(self.current_path, "w", encoding="utf-8")
        self._current.seek(0)
        self._current.write(nodeid)
        self._current.truncate()
        self._current.flush()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        # Only the test function's own run is evidence: fixtures' setup and teardown, and the
        # report pytest builds afterwards (reprs of the values compared), are not.
        self.session.begin_test(item.nodeid)
        try:
            yield
        finally:
            self.session.stop_test()

    def _arm_timeout(self):
        self._deferrals = 0
        if not self.test_timeout or not hasattr(signal, "SIGALRM"):
            return None
        previous = signal.signal(signal.SIGALRM, self._on_alarm)
        signal.setitimer(signal.ITIMER_REAL, self.test_timeout)
        return previous

    def _disarm_timeout(self, previous) -> None:
        if previous is None:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    def _on_alarm(self, signum, frame):
        __tracebackhide__ = True  # the failure should point at the user's loop, not here
        # Raising inside tracefix's recorder or coverage.py would leave their state (and
        # coverage's data lock) half-updated: wait until control is back in user code.
        if _in_tool_code(frame) and self._deferrals < MAX_DEFERRALS:
            self._deferrals += 1
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            return
        self.session.on_timeout(frame)
        # Stop the clock: teardown must not be interrupted a second time.
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise TestTimeout(f"test ran longer than {self.test_timeout:g}s (per-test timeout)")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        if os.getpid() != self.pid:
            os._exit(0)  # a forked test process back in pytest: out before it runs the test's teardown
        if self._hides_tool_frames:  # for every test: a unittest failure reaches `call` only later
            _hide_tool_frames()
        outcome = yield
        report = outcome.get_result()
        if call.excinfo is not None and report.failed:
            self._note_failure(report, call.excinfo)

    def _note_failure(self, report, excinfo) -> None:
        if self._outcome.get("outcome") not in ("passed", None):
            return  # keep the first failure (call before teardown)
        timed_out = excinfo.errisinstance(TestTimeout)
        if timed_out:
            self._outcome["outcome"] = "timeout"
        else:
            self._outcome["outcome"] = "failed" if report.when == "call" else "error"
        try:
            message = excinfo.exconly().strip().splitlines()
        except Exception:
            message = [excinfo.typename]
        if timed_out:
            message = [f"timeout: {excinfo.value}"]
        self._outcome["message"] = " ".join(m.strip() for m in message[:3])[:500]
        self._outcome["frames"] = self._project_frames(excinfo.tb)
        if timed_out:
            # pytest's report would end inside tracefix's signal handler or tracer: say
            # where the user's code was instead.
            lines = [f"{path}:{line} in {name}" for path, line, name in self._outcome["frames"]]
            self._outcome["longrepr"] = "\n".join([*lines, self._outcome["message"]])
        else:
            self._outcome["longrepr"] = str(report.longrepr)[-MAX_LONGREPR:]

    def _project_frames(self, tb) -> list[list]:
        # No source lines are read (extract_tb would load every file of the traceback), and each
        # file is resolved once: this runs in every failing test's own time.
        frames = []
        for frame, lineno in traceback.walk_tb(tb):
            rel = self._project_path(frame.f_code.co_filename)
            if rel is not None:
                frames.append([rel, lineno, frame.f_code.co_name])
        return frames

    def _project_path(self, filename: str) -> str | None:
        """The project-relative path of a code file, None outside the project or in a venv in it."""
        if filename not in self._paths:
            try:
                rel = Path(filename).resolve().relative_to(self.root)
                self._paths[filename] = None if "site-packages" in rel.parts else rel.as_posix()
            except (ValueError, OSError):
                self._paths[filename] = None
        return self._paths[filename]

    def pytest_runtest_logreport(self, report) -> None:
        if report.skipped and report.when in ("setup", "call") and self._outcome.get("outcome") == "passed":
            self._outcome["outcome"] = "skipped"
        if report.when == "call" and hasattr(report, "wasxfail"):
            self._outcome["outcome"] = "xfailed" if report.skipped else "xpassed"

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            text = str(report.longrepr)
            self.collection_errors.append(f"{report.nodeid or '.'}: {_last_error_line(text)}")


def test_code_files(session) -> list[str]:
    """Absolute paths of what pytest collected as test modules, and of the conftest files it
    loaded: whatever `python_files` says, test code is never a suspect nor recorded."""
    files = {getattr(getattr(item, "module", None), "__file__", None) for item in session.items}
    for plugin in session.config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if isinstance(path, str) and os.path.basename(path) == "conftest.py":
            files.add(path)
    return sorted(f for f in files if isinstance(f, str))


# The helpers a rewritten `assert` calls to build its failure message: they call the
# compared values' __repr__ (and __eq__ for diffs), which is pytest's doing, not the test's.
_ASSERTION_HELPERS = ("_saferepr", "_call_reprcompare", "_format_assertmsg")


def _quiet_assertion_reprs(session) -> None:
    """Pause the session while pytest's assertion rewriting builds a message. Rewritten
    modules look the helpers up on `_pytest.assertion.rewrite` at each call, so a wrapper
    set there is the one they call."""
    try:
        from _pytest.assertion import rewrite
    except ImportError:
        return
    for name in _ASSERTION_HELPERS:
        helper = getattr(rewrite, name, None)
        if helper is not None:  # a second session in one process wraps the original again
            rewrite.__dict__[name] = _paused_while(getattr(helper, "__wrapped__", helper), session)


def _paused_while(helper, session):
    def quiet(*args, **kwargs):
        session.pause()
        try:
            return helper(*args, **kwargs)
        finally:
            session.resume()

    quiet.__wrapped__ = helper
    return quiet


def _last_error_line(text: str) -> str:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("E "):
            return line[1:].strip()
    return text.strip().splitlines()[-1] if text.strip() else "collection error"

