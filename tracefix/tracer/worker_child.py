"""Entry point of the validation worker's child (started by `worker.Worker`, like `runner.child_command`).

It imports the project and collects the given tests once (one `pytest.main`), then, from
inside pytest's run loop, serves candidates one JSON line at a time on a private pipe:
compile the new function, swap the `__code__` of the live function object (so names bound
by `from mod import f` see it too), rerun the collected items with pytest's own
`runtestprotocol` under a per-test SIGALRM, restore the code, answer pass/fail per test.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import textwrap
import types
from pathlib import Path

import pytest
from _pytest.runner import runtestprotocol

from tracefix.tracer.plugin import CoverageReportOff, TestTimeout, XdistOff


class Unsupported(Exception):
    """The candidate cannot be swapped in place; the caller runs it in a fresh process instead."""


class ServePlugin:
    def __init__(self, root: Path, requests, answers, test_timeout: float, order=()) -> None:
        self.root = root
        self.order = list(order)
        # Parametrized arguments are the same objects on every rerun: a mutant that changes an
        # input list in place would spoil it for every later candidate. Each run gets a copy.
        self._params: dict[str, dict] = {}
        self.requests = requests
        self.answers = answers
        self.test_timeout = test_timeout
        self.collection_errors: list[str] = []
        self._timed_out = False

    def pytest_collection_modifyitems(self, session, config, items) -> None:
        # In the order asked (the failing tests first): with first_failure a wrong candidate
        # stops at the first test, which is then most likely to fail.
        order = {nodeid: i for i, nodeid in enumerate(self.order)}
        items.sort(key=lambda item: order.get(item.nodeid, len(order)))
        for item in items:
            params = getattr(getattr(item, "callspec", None), "params", None)
            if params:
                self._params[item.nodeid] = _copied(params)

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.collection_errors.append(report.nodeid or ".")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        if self.collection_errors or not session.items:
            self._send({"status": "error", "why": f"collection failed: {self.collection_errors or 'no tests'}"})
            return True
        self._send({"status": "ready", "tests": [item.nodeid for item in session.items]})
        for line in self.requests:
            request = json.loads(line)
            if request.get("quit"):
                break
            self._send(self._serve(session, request))
        return True

    def _serve(self, session, request: dict) -> dict:
        try:
            func = live_function(self.root / request["path"], request["qualname"])
            code = compiled_function(request["source"], request["first_line"], func)
        except Unsupported as exc:
            return {"status": "unsupported", "why": str(exc)}
        original = func.__code__
        func.__code__ = code
        try:
            timeout = request.get("test_timeout") or self.test_timeout
            return {"status": "ok", "tests": self._run_all(session.items, request.get("first_failure", False),
                                                           timeout)}
        finally:
            func.__code__ = original

    def _run_all(self, items, first_failure: bool, timeout: float) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        for item in items:
            if first_failure and any(o != "passed" for o in outcomes.values()):
                outcomes[item.nodeid] = "not_run"
            else:
                outcomes[item.nodeid] = self._run(item, timeout)
        return outcomes

    def _run(self, item, timeout: float) -> str:
        self._timed_out = False
        self._timeout = timeout
        if item.nodeid in self._params:
            item.callspec.params.update(_copied(self._params[item.nodeid]))
        previous = signal.signal(signal.SIGALRM, self._on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            reports = runtestprotocol(item, nextitem=None, log=False)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        if self._timed_out:
            return "timeout"
        if any(r.failed for r in reports):
            return "failed" if any(r.failed and r.when == "call" for r in reports) else "error"
        return "skipped" if any(r.skipped for r in reports) else "passed"

    def _on_alarm(self, signum, frame):
        self._timed_out = True
        signal.setitimer(signal.ITIMER_REAL, 0)  # teardown must not be interrupted again
        raise TestTimeout(f"test ran longer than {self._timeout:g}s (per-test timeout)")

    def _send(self, answer: dict) -> None:
        self.answers.write(json.dumps(answer) + "\n")
        self.answers.flush()


def live_function(path: Path, qualname: str) -> types.FunctionType:
    """The function object `qualname` of the loaded module whose file is `path`."""
    target = path.resolve()
    module = next((m for m in list(sys.modules.values())
                   if isinstance(getattr(m, "__file__", None), str) and _same(m.__file__, target)), None)
    if module is None:
        raise Unsupported(f"{path.name} is not imported by the tests")
    obj = module
    for part in qualname.split("."):
        if part == "<locals>":
            raise Unsupported("a nested function has no live object to swap")
        obj = vars(obj).get(part) if hasattr(obj, "__dict__") else None
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if obj is None:
            raise Unsupported(f"{qualname} not found in {module.__name__}")
    if not isinstance(obj, types.FunctionType):
        raise Unsupported(f"{qualname} is a {type(obj).__name__}, not a plain function")
    return obj


def compiled_function(source: str, first_line: int, func: types.FunctionType) -> types.CodeType:
    """The code object of the new function source, at its original line numbers."""
    text = "\n" * (first_line - 1) + textwrap.dedent(source)
    try:
        module_code = compile(text, func.__code__.co_filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise Unsupported(f"does not compile alone: {exc}") from None
    code = next((c for c in module_code.co_consts if isinstance(c, types.CodeType)
                 and c.co_name == func.__code__.co_name), None)
    if code is None:
        raise Unsupported("no function of that name in the source")
    if code.co_freevars != func.__code__.co_freevars:
        raise Unsupported(f"free variables differ ({code.co_freevars} vs {func.__code__.co_freevars})")
    owner = func.__qualname__.split(".")[0]
    # Private names inside a class body are mangled; compiled alone they would not be.
    if "." in func.__qualname__ and any(n.startswith(f"_{owner.lstrip('_')}__") for n in func.__code__.co_names):
        raise Unsupported("a method with class-private names")
    return code


def _copied(params: dict) -> dict:
    out = {}
    for name, value in params.items():
        try:
            out[name] = copy.deepcopy(value)
        except Exception:  # an uncopyable object: shared, as pytest shares it
            out[name] = value
    return out


def _same(filename: str, target: Path) -> bool:
    try:
        return Path(filename).resolve() == target
    except OSError:
        return False


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    root = Path(config["root"]).resolve()
    os.chdir(root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    requests = os.fdopen(config["read_fd"], "r", encoding="utf-8")
    answers = os.fdopen(config["write_fd"], "w", encoding="utf-8")
    plugin = ServePlugin(root, requests, answers, config["test_timeout"], config["test_ids"])
    args = ["-p", "no:cacheprovider", "-q", "--no-header", "-rN", "--tb=no",
            *config.get("pytest_args", []), *config["test_ids"]]
    pytest.main(args, plugins=[plugin, CoverageReportOff(), XdistOff()])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
