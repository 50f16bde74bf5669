"""Run the project's tests in a child process and read back what it wrote.

Every run of user code goes through `run_tests`: in a scratch copy of the project (a test
that writes files never touches the user's tree), a per-test timeout inside the child
(SIGALRM, so the trace up to that point is kept), and a wall-clock limit on the whole
run enforced from here (kill, then report what was written before).

A test that kills the child (a segfault, `os._exit`, a signal) is reported as "crashed",
and a new child runs the tests not yet run. A test that times out only under tracing or
coverage is run again untraced: when it passes then, it is "slow" (slow under tracing),
not failing.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tracefix.errors import UserError
from tracefix.tracer.project import python_files
from tracefix.tracer.scratch import scratch_copy

# pytest's exit codes
PYTEST_OK, PYTEST_FAILED, PYTEST_INTERRUPTED, PYTEST_INTERNAL, PYTEST_USAGE, PYTEST_NO_TESTS = range(6)

# Outcomes that count as a failure everywhere (counts, exit codes, diagnostics, ranking).
BAD_OUTCOMES = ("failed", "error", "timeout", "crashed")
# A suite where every test kills the interpreter would restart a child per test: past this
# many crashes the rest is reported as not run.
MAX_RESTARTS = 20


@dataclass(frozen=True)
class TestOutcome:
    nodeid: str
    outcome: str  # passed | failed | error | timeout | crashed | slow | skipped | xfailed | xpassed
    message: str = ""
    longrepr: str = ""
    frames: tuple[tuple[str, int, str], ...] = ()  # project frames of the failure: (path, line, function)
    duration: float = 0.0

    @property
    def bad(self) -> bool:
        return self.outcome in BAD_OUTCOMES


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None  # pytest's exit code; None when the child died or was killed
    outcomes: tuple[TestOutcome, ...]
    collection_errors: tuple[str, ...] = ()
    session: Any = None  # what the mode's session returned at the end
    per_test: dict = field(default_factory=dict)  # nodeid -> what the session returned for it
    crashed: str | None = None  # why the child produced no summary
    stderr_tail: str = ""

    @property
    def failing(self) -> list[TestOutcome]:
        return [o for o in self.outcomes if o.bad]

    @property
    def passing(self) -> list[TestOutcome]:
        return [o for o in self.outcomes if o.outcome == "passed"]

    @property
    def slow(self) -> list[TestOutcome]:
        """Tests that timed out under tracing or coverage but pass untraced (reported apart)."""
        return [o for o in self.outcomes if o.outcome == "slow"]


# The child imports tracefix from a directory that holds nothing but a link to this package,
# then takes that directory off sys.path again: the user's own `tracer`, `repair` or `tests`
# modules never meet tracefix's (an editable install's parent folder also holds `tests/`,
# `bench/`, `fixtures/`), and PYTHONPATH stays exactly as the user set it.
_BOOT = ("import sys; sys.path.insert(0, {home!r}); import {module} as child; "
         "sys.path.remove({home!r}); sys.exit(child.main({config!r}))")


def _current_test(path: Path) -> str | None:
    """The test the child was running when it stopped (None before the first one)."""
    return (path.read_text() if path.exists() else "") or None


def child_command(python: str | None, config_path: Path, module: str = "tracefix.tracer.child") -> list[str]:
    """The child's command line; `module` is its entry (`tracer.child`, or `tracer.worker_child`)."""
    home = str(_child_home())
    # The scratch copy keeps the user's __pycache__ (tracer.scratch); a hash-based .pyc made
    # "unchecked" would otherwise hide a candidate's edit from the import.
    return [python or sys.executable, "--check-hash-based-pycs", "always", "-c",
            _BOOT.format(home=home, module=module, config=str(config_path))]


def _child_home() -> Path:
    """A private folder whose only entry is a link named `tracefix` to this package, one per
    installed copy (keyed by its path), made once and shared by concurrent runs."""
    package = Path(__file__).resolve().parent.parent
    key = hashlib.sha1(str(package).encode()).hexdigest()[:12]
    home = Path(tempfile.gettempdir()) / f"tracefix-child-{os.getuid()}-{key}"
    link = home / "tracefix"
    if link.is_symlink() and link.resolve() == package:
        return home
    home.mkdir(mode=0o700, exist_ok=True)
    staged = home / f".tracefix-{os.getpid()}"
    staged.unlink(missing_ok=True)
    staged.symlink_to(package, target_is_directory=True)
    os.replace(staged, link)  # atomic: a concurrent run sees the old link or the new one
    return home


def run_tests(root: Path, *, mode: str = "outcomes", test_ids=(), options: dict | None = None,
              test_timeout: float = 10.0, run_timeout: float = 300.0, pytest_args=(),
              python: str | None = None, in_place: bool = False) -> RunResult:
    """Run the tests of `root`, in a scratch copy of it unless `in_place` (the caller's
    `root` is a scratch copy already). Paths in what comes back name `root`, not the copy."""
    root = Path(root).resolve()
    deadline = time.monotonic() + run_timeout
    with nullcontext(root) if in_place else scratch_copy(root) as where:
        where = Path(where).resolve()
        spec = _Spec(where, root, mode, options or {}, test_timeout, pytest_args, python)
        result = _run_to_the_end(spec, list(test_ids), deadline, run_timeout)
        if mode != "outcomes":
            result = _untraced_rerun_of_timeouts(spec, result, deadline, run_timeout)
    return result


@dataclass(frozen=True)
class _Spec:
    where: Path  # the folder the child runs in
    root: Path  # the user's project, as reported
    mode: str
    options: dict
    test_timeout: float
    pytest_args: tuple
    python: str | None


def _run_to_the_end(spec: _Spec, test_ids: list[str], deadline: float, run_timeout: float) -> RunResult:
    """One child, and after each crash inside a test one more for the tests not yet run."""
    outcomes: list[TestOutcome] = []
    per_test: dict = {}
    errors: list[str] = []
    collected: list[str] | None = None
    ids = test_ids
    for _attempt in range(MAX_RESTARTS + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            return _joined(None, outcomes, errors, None, per_test,
                           f"the test run took longer than {run_timeout:g}s and was stopped", "")
        one, first_collected, current, code, stderr = _child_run(spec, ids, left, run_timeout)
        outcomes.extend(one.outcomes)
        per_test.update(one.per_test)
        errors.extend(e for e in one.collection_errors if e not in errors)
        if collected is None:
            collected = first_collected
        done = {o.nodeid for o in outcomes}
        # Done: a finished session, the run timeout (code None), or a death outside any test.
        if one.crashed is None or code is None or current is None or current in done:
            return _joined(one.exit_code, outcomes, errors, one.session, per_test, one.crashed, one.stderr_tail)
        text, frames = _crash_report(stderr, spec.root)
        message = f"the test process was {how_it_ended(code)}"
        outcomes.append(TestOutcome(current, "crashed", message, f"{message}\n{text}".strip(), frames))
        done.add(current)
        ids = [n for n in collected or () if n not in done]
        if not ids:
            return _joined(PYTEST_FAILED, outcomes, errors, one.session, per_test, None, one.stderr_tail)
    return _joined(None, outcomes, errors, None, per_test,
                   f"more than {MAX_RESTARTS} tests crashed the test process; the rest were not run", "")


MAX_CRASH_TEXT = 3000
_FAULT_FRAME = re.compile(r'^\s*File "(.+)", line (\d+) in (\S+)')


def _crash_report(stderr: str, root: Path) -> tuple[str, tuple[tuple[str, int, str], ...]]:
    """What faulthandler (on in pytest) printed for the crash, cut to the project's frames,
    and those frames outermost first, as a failure's frames are."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Fatal Python error")), None)
    if start is None:
        return stderr[-MAX_CRASH_TEXT:], ()
    kept, frames = [], []
    for line in lines[start:]:
        match = _FAULT_FRAME.match(line)
        if match is not None and match[1].startswith("<"):
            continue  # the child's `-c` boot line
        if match is None:
            kept.append(line)
            continue
        try:
            rel = Path(match[1]).resolve().relative_to(root).as_posix()
        except (ValueError, OSError):
            continue  # pytest's, pluggy's and tracefix's frames say nothing about the crash
        if "site-packages" not in rel:
            kept.append(line)
            frames.append((rel, int(match[2]), match[3]))
    return "\n".join(kept)[-MAX_CRASH_TEXT:], tuple(reversed(frames))


def _joined(code, outcomes, errors, session, per_test, crashed, stderr_tail) -> RunResult:
    if code == PYTEST_OK and any(o.bad for o in outcomes):
        code = PYTEST_FAILED
    return RunResult(code, tuple(outcomes), tuple(errors), session, per_test, crashed, stderr_tail)


def _untraced_rerun_of_timeouts(spec: _Spec, result: RunResult, deadline: float, run_timeout: float) -> RunResult:
    """Tracing makes code slower (often 5-30x): a test that passes untraced is never reported
    failing because the recorder made it run past the per-test timeout. It is "slow" instead;
    one that hangs untraced too stays a timeout."""
    timed_out = [o.nodeid for o in result.outcomes if o.outcome == "timeout"]
    if not timed_out or deadline - time.monotonic() <= 0:
        return result
    plain = _run_to_the_end(replace(spec, mode="outcomes", options={}), timed_out, deadline, run_timeout)
    untraced = {o.nodeid: o for o in plain.outcomes}
    outcomes, per_test = [], dict(result.per_test)
    for outcome in result.outcomes:
        again = untraced.get(outcome.nodeid) if outcome.outcome == "timeout" else None
        if again is None or again.outcome == "timeout":
            outcomes.append(outcome)
        elif again.outcome == "passed":
            per_test.pop(outcome.nodeid, None)  # a cut-off recording of a passing test misleads
            outcomes.append(replace(again, outcome="slow", message=(
                f"slow under tracing: passes in {again.duration:.2f}s untraced, ran past the "
                f"{spec.test_timeout:g}s per-test timeout traced")))
        else:
            outcomes.append(again)  # it fails untraced too, in its own way
    return replace(result, outcomes=tuple(outcomes), per_test=per_test)


def _child_run(spec: _Spec, test_ids: list[str], limit: float, run_timeout: float):
    """One child process: its result, the node ids it collected, the test it was running
    when it stopped (None when it never started one), its exit status and its stderr."""
    with tempfile.TemporaryDirectory(prefix="tracefix-run-") as tmp:
        out_dir = Path(tmp)
        config = {"root": str(spec.where), "out_dir": str(out_dir), "mode": spec.mode, "test_ids": list(test_ids),
                  "options": spec.options, "test_timeout": spec.test_timeout,
                  "pytest_args": list(spec.pytest_args)}
        (out_dir / "config.json").write_text(json.dumps(config))
        env = dict(os.environ)
        # Never write into the user's tree: no bytecode caches (pytest's cache is off too).
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTEST_ADDOPTS", None)
        cmd = child_command(spec.python, out_dir / "config.json")
        crashed = None
        with open(out_dir / "stdout", "wb") as so, open(out_dir / "stderr", "wb") as se:
            proc = subprocess.Popen(cmd, cwd=spec.where, env=env, stdout=so, stderr=se, start_new_session=True)
            code = _wait(proc, limit)
            if code is None:
                crashed = f"the test run took longer than {run_timeout:g}s and was stopped"
        _as_reported(out_dir, spec.where, spec.root)
        current = out_dir / "current"
        collected = out_dir / "collected.json"
        return (_read_back(out_dir, code, crashed),
                json.loads(collected.read_text()) if collected.exists() else None,
                _current_test(current), code,
                _tail(out_dir / "stderr", 64_000))


def _as_reported(out_dir: Path, where: Path, root: Path) -> None:
    """Name the user's project, not the scratch copy, in everything the child wrote (failure
    texts quote paths, and the repair prompts quote failure texts)."""
    if where == root:
        return
    for name in ("tests.jsonl", "stdout", "stderr"):
        path = out_dir / name
        if path.exists():
            text = path.read_text(encoding="utf-8", errors="replace")
            path.write_text(text.replace(str(where), str(root)), encoding="utf-8")


def _wait(proc: subprocess.Popen, limit: float) -> int | None:
    """The child's exit status, or None when it ran past `limit` and its group was killed.

    Popen.wait(timeout) polls, sleeping up to 50 ms between looks, so a run paid 25 ms on
    average after its child had exited; here a timer kills the group and wait() blocks."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        _signal_group(proc)

    timer = threading.Timer(max(limit, 0.0), expire)
    timer.daemon = True
    timer.start()
    try:
        code = proc.wait()
    finally:
        timer.cancel()
    return None if expired.is_set() else code


def _signal_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def _read_back(out_dir: Path, code: int | None, crashed: str | None) -> RunResult:
    outcomes, per_test = [], {}
    tests_file = out_dir / "tests.jsonl"
    if tests_file.exists():
        for line in tests_file.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a killed child may be cut
            if "session" in data:
                per_test[data["nodeid"]] = data.pop("session")
            data["frames"] = tuple(tuple(f) for f in data.get("frames", []))
            outcomes.append(TestOutcome(**data))
    stderr_tail = _tail(out_dir / "stderr") + _tail(out_dir / "stdout")
    summary_file = out_dir / "summary.json"
    if summary_file.exists() and crashed is None:
        summary = json.loads(summary_file.read_text())
        return RunResult(summary["exit_code"], tuple(outcomes), tuple(summary["collection_errors"]),
                         summary.get("session"), per_test, None, stderr_tail)
    if crashed is None:
        running = _current_test(out_dir / "current")
        where = f" while running {running}" if running else ""
        crashed = f"the test process died{where} ({how_it_ended(code)})"
    return RunResult(None, tuple(outcomes), (), None, per_test, crashed, stderr_tail)


def how_it_ended(code: int | None) -> str:
    """"killed by signal SIGSEGV", "ended with exit code 3 ...": how a crash report names it."""
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"ended with exit code {code} before the session finished (os._exit?)"


def _tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def check_usable(result: RunResult, test_ids=(), root: Path | None = None) -> None:
    """Turn a run that tested nothing into one clear UserError (a located one for a syntax error)."""
    if root is not None:
        _check_syntax(Path(root), result)
    if result.crashed and not result.outcomes:
        raise UserError(f"{result.crashed}: {_last_line(result.stderr_tail)}")
    if result.collection_errors and not result.outcomes:
        raise UserError(f"tests could not be collected: {result.collection_errors[0]}")
    if result.exit_code == PYTEST_USAGE:
        detail = _last_line(result.stderr_tail)
        if test_ids:
            raise UserError(f"test id {' '.join(test_ids)} matches nothing ({detail})")
        raise UserError(f"pytest refused the arguments: {detail}")
    if result.exit_code == PYTEST_NO_TESTS or (result.exit_code is not None and not result.outcomes):
        if test_ids:
            raise UserError(f"test id {' '.join(test_ids)} matches nothing")
        raise UserError("no tests found (pytest collected nothing)")


def _check_syntax(root: Path, run: RunResult) -> None:
    texts = list(run.collection_errors) + [o.message for o in run.failing]
    if any("SyntaxError" in t or "IndentationError" in t for t in texts):
        # Only files the failing run mentions: a repository may hold broken files on purpose.
        mentioned = [rel for rel in (p.relative_to(root).as_posix() for p in python_files(root))
                     if any(Path(rel).name in t for t in texts + [o.longrepr for o in run.failing])]
        require_parseable(root, mentioned or [p.relative_to(root).as_posix() for p in python_files(root)])


def require_parseable(root: Path, files: list[str]) -> None:
    """A located one-line error for the first source file that does not parse."""
    for rel in files:
        try:
            ast.parse((root / rel).read_text(encoding="utf-8"), rel)
        except SyntaxError as exc:
            raise UserError(f"{rel}:{exc.lineno}:{exc.offset or 0}: syntax error: {exc.msg}") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise UserError(f"{rel}: cannot read as Python source: {exc}") from None


def _last_line(text: str) -> str:
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    for line in reversed(lines):
        if "ERROR" in line or "Error" in line or "error:" in line:
            return line[:300]
    return lines[-1][:300] if lines else "no output"
