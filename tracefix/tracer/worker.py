"""A persistent child process that reruns a few tests against candidate functions, fast.

`run_tests` starts a pytest process per run (about a second of imports and collection).
A search over hundreds of small candidates instead starts one `Worker`: its child
(`worker_child`, started like `runner.child_command` so the project cannot shadow tracefix)
collects the tests once and then swaps each candidate's code into the live function.

A candidate that hangs past the per-test timeout in C code, recurses the C stack away or
calls `os._exit` costs only itself: the answer does not come in time or the pipe closes,
the child is killed and started again for the next candidate, and this one is "crashed".
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tracefix.tracer.runner import child_command

START_TIMEOUT = 60.0  # imports and collection of the tests
SLACK = 5.0  # seconds on top of the per-test timeouts before a silent child is killed


@dataclass(frozen=True)
class WorkerAnswer:
    status: str  # "ok" | "unsupported" (swap impossible: run it another way) | "crashed" | "timeout"
    outcomes: tuple[tuple[str, str], ...] = ()  # (nodeid, passed|failed|error|timeout|skipped)
    why: str = ""

    @property
    def all_passed(self) -> bool:
        return self.status == "ok" and bool(self.outcomes) and all(o == "passed" for _, o in self.outcomes)


class Worker:
    """One child serving candidates for the given tests; restarted after a crash."""

    def __init__(self, root: Path, test_ids, *, test_timeout: float = 2.0, pytest_args=(),
                 python: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.test_ids = list(test_ids)
        self.test_timeout = test_timeout
        self.pytest_args = list(pytest_args)
        self.python = python
        self.tests: tuple[str, ...] = ()
        self.starts = 0
        self.error = ""
        self._proc: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="tracefix-worker-")
        self._buffer = b""
        self._closed = False

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> bool:
        """Start the child and wait until it has collected the tests; False (and `error`) if not."""
        self._stop()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        config = {"root": str(self.root), "test_ids": self.test_ids, "test_timeout": self.test_timeout,
                  "pytest_args": self.pytest_args, "read_fd": to_child_r, "write_fd": from_child_w}
        config_path = Path(self._tmp.name) / "config.json"
        config_path.write_text(json.dumps(config))
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTEST_ADDOPTS", None)
        self._proc = subprocess.Popen(
            child_command(self.python, config_path, "tracefix.tracer.worker_child"), cwd=self.root, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(to_child_r, from_child_w), start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self._write = os.fdopen(to_child_w, "w", encoding="utf-8")
        self._read_fd = from_child_r
        self._buffer = b""
        self.starts += 1
        hello = self._answer(START_TIMEOUT)
        if hello is None or hello.get("status") != "ready":
            self.error = (hello or {}).get("why", "the worker did not start")
            self._stop()
            return False
        self.tests = tuple(hello["tests"])
        return True

    def try_candidate(self, path: str, qualname: str, source: str, first_line: int, *,
                      first_failure: bool = True, test_timeout: float | None = None) -> WorkerAnswer:
        """Run the tests with `qualname` of `path` (project-relative) replaced by `source`;
        with `first_failure`, the tests after the first one that fails are not run;
        `test_timeout` replaces the worker's per-test timeout for this candidate."""
        # A child that once failed to collect the tests fails again: do not pay for it per candidate.
        if self._proc is None and (self.error or not self.start()):
            return WorkerAnswer("unsupported", why=self.error)
        request = {"path": path, "qualname": qualname, "source": source, "first_line": first_line,
                   "first_failure": first_failure, "test_timeout": test_timeout}
        try:
            self._write.write(json.dumps(request) + "\n")
            self._write.flush()
        except (BrokenPipeError, OSError):
            self._stop()
            return WorkerAnswer("crashed", why="the worker was gone")
        limit = len(self.tests) * ((test_timeout or self.test_timeout) + 1.0) + SLACK
        answer = self._answer(limit)
        if answer is None:
            closed = self._closed
            self._stop()
            if not closed:
                return WorkerAnswer("timeout", why=f"no answer within {limit:g}s")
            return WorkerAnswer("crashed", why="the worker died running the candidate")
        if answer["status"] != "ok":
            return WorkerAnswer(answer["status"], why=answer.get("why", ""))
        return WorkerAnswer("ok", tuple(answer["tests"].items()))

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._write.write(json.dumps({"quit": True}) + "\n")
                self._write.flush()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._stop()
        self._tmp.cleanup()

    def _answer(self, timeout: float) -> dict | None:
        """The next JSON line from the child, or None when it closes the pipe or stays silent."""
        deadline = time.monotonic() + timeout
        self._closed = False
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._read_fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._read_fd, 65536)
            if not chunk:
                self._closed = True
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
        proc.wait()
        for closer in (self._write.close, lambda: os.close(self._read_fd)):
            try:
                closer()
            except OSError:
                pass
