"""Run the project's tests in a child process and read back what it wrote.

Every run of user code goes through `run_tests`: a per-test timeout inside the child
(SIGALRM, so the trace up to that point is kept), and a wall-clock limit on the whole
child enforced from here (kill, then report what was written before).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracefix.errors import UserError
from tracefix.tracer.project import python_files

# pytest's exit codes
PYTEST_OK, PYTEST_FAILED, PYTEST_INTERRUPTED, PYTEST_INTERNAL, PYTEST_USAGE, PYTEST_NO_TESTS = range(6)


@dataclass(frozen=True)
class TestOutcome:
    nodeid: str
    outcome: str  # passed | failed | error | timeout | skipped | xfailed | xpassed
    message: str = ""
    longrepr: str = ""
    frames: tuple[tuple[str, int, str], ...] = ()  # project frames of the failure: (path, line, function)
    duration: float = 0.0

    @property
    def bad(self) -> bool:
        return self.outcome in ("failed", "error", "timeout")


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


# The child imports tracefix from a directory that holds nothing but a link to this package,
# then takes that directory off sys.path again: the user's own `tracer`, `repair` or `tests`
# modules never meet tracefix's (an editable install's parent folder also holds `tests/`,
# `bench/`, `fixtures/`), and PYTHONPATH stays exactly as the user set it.
_BOOT = ("import sys; sys.path.insert(0, {home!r}); import {module} as child; "
         "sys.path.remove({home!r}); sys.exit(child.main({config!r}))")


def child_command(python: str | None, config_path: Path, module: str = "tracefix.tracer.child") -> list[str]:
    """The child's command line; `module` is its entry (`tracer.child`, or `tracer.worker_child`)."""
    home = str(_child_home())
    return [python or sys.executable, "-c", _BOOT.format(home=home, module=module, config=str(config_path))]


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
              python: str | None = None) -> RunResult:
    root = Path(root).resolve()
    with tempfile.TemporaryDirectory(prefix="tracefix-run-") as tmp:
        out_dir = Path(tmp)
        config = {"root": str(root), "out_dir": str(out_dir), "mode": mode, "test_ids": list(test_ids),
                  "options": options or {}, "test_timeout": test_timeout, "pytest_args": list(pytest_args)}
        (out_dir / "config.json").write_text(json.dumps(config))
        env = dict(os.environ)
        # Never write into the user's tree: no bytecode caches (pytest's cache is off too).
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTEST_ADDOPTS", None)
        cmd = child_command(python, out_dir / "config.json")
        crashed = None
        with open(out_dir / "stdout", "wb") as so, open(out_dir / "stderr", "wb") as se:
            proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=so, stderr=se, start_new_session=True)
            try:
                code = proc.wait(timeout=run_timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                code = None
                crashed = f"the test run took longer than {run_timeout:g}s and was stopped"
        return _read_back(out_dir, code, crashed)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


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
        current = out_dir / "current"
        where = f" while running {current.read_text()}" if current.exists() else ""
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        crashed = f"the test process died{where} ({how})"
    return RunResult(None, tuple(outcomes), (), None, per_test, crashed, stderr_tail)


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
