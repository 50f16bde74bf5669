"""Helper-level regression checks: a patched function must still give its recorded passing-test results.

Hierarchical debugging records the real calls of the suspect functions in passing tests. A
call whose arguments are plain Python literals becomes a check: call the patched function
with those arguments in the scratch copy and compare `tracer.snapshot.summarize(result)`
with the recorded summary (or the recorded exception type). The checks run as one small
pytest file next to the targeted failing tests, in the same child process, so a helper fix
that breaks a passing test's call is rejected before the whole suite runs.

Only calls that can be rebuilt exactly are used: every argument summary must
`ast.literal_eval` to a value that summarizes back to the same text (so nothing cut with
"...", no objects, no `self`). The checks are run once against the unpatched code and only
the ones that pass there are kept: a function that depends on time, randomness or state set
up by the test must not reject every candidate.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tracefix.tracer.scratch import scratch_copy
from tracefix.tracer.records import FunctionInfo
from tracefix.tracer.runner import RunResult, run_tests
from tracefix.tracer.snapshot import summarize

CHECK_FILE = "test_tracefix_helper_checks.py"  # written at the scratch copy's root, removed after its run
MAX_CHECKS = 8  # per function


@dataclass(frozen=True)
class HelperCheck:
    function: str  # FunctionInfo.key
    module: str  # import name of the function's module ("shipping.units")
    path: str  # the module's file, relative to the project
    qualname: str
    args: dict[str, str]  # literal summaries
    returned: str | None  # summary of the recorded result
    raised: str | None  # "ExcType: message" when the recorded call raised
    test: str  # the passing test that made the call

    def call_text(self) -> str:
        return f"{self.qualname}({', '.join(f'{k}={v}' for k, v in self.args.items())})"


def checks_from(root: Path, info: FunctionInfo, pairs: Iterable) -> tuple[HelperCheck, ...]:
    """Checks for `info` from recorded pairs (objects with test/args/returned/raised/finished)."""
    if "<locals>" in info.qualname:
        return ()
    module = module_name(Path(root), info.path)
    out: list[HelperCheck] = []
    for pair in pairs:
        if not pair.finished or len(out) >= MAX_CHECKS:
            continue
        if pair.returned is None and pair.raised is None:  # a generator stopped at a yield: no result
            continue
        if not all(literal_summary(v) for v in pair.args.values()):
            continue
        out.append(HelperCheck(info.key, module, info.path, info.qualname, dict(pair.args), pair.returned,
                               pair.raised, pair.test))
    return tuple(out)


def literal_summary(text: str) -> bool:
    """Whether the summary `text` rebuilds the value it summarizes: a literal, not cut."""
    if "..." in text:
        return False
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return summarize(value) == text


def module_name(root: Path, rel: str) -> str:
    """The dotted import name of the file `rel`: its package chain up to the first folder without
    __init__.py ("src/pkg/mod.py" -> "pkg.mod")."""
    parts = rel.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    keep = [parts[-1]]
    for i in range(len(parts) - 1, 0, -1):
        if not (root / "/".join(parts[:i]) / "__init__.py").is_file():
            break
        keep.insert(0, parts[i - 1])
    return ".".join(keep)


# --- the check file ---------------------------------------------------------------------------------

_TEMPLATE = '''"""Written by tracefix: recorded calls from passing tests that a patched function must still satisfy."""
import ast
import importlib
import inspect
import json
import os

import pytest

from tracefix.tracer.snapshot import summarize

CHECKS = json.loads({data!r})


def _function(check):
    try:
        module = importlib.import_module(check["module"])
    except ImportError:
        pytest.skip(f"cannot import {{check['module']}}")
    if os.path.realpath(module.__file__) != os.path.realpath(check["path"]):
        pytest.skip(f"{{check['module']}} is not {{check['path']}}")
    obj = module
    for part in check["qualname"].split("."):
        obj = getattr(obj, part)
    return obj


def _arguments(function, args):
    positional, keywords = [], {{}}
    for name, parameter in inspect.signature(function).parameters.items():
        if name not in args:
            continue
        value = ast.literal_eval(args[name])
        if parameter.kind is parameter.VAR_POSITIONAL:
            positional.extend(value)
        elif parameter.kind is parameter.VAR_KEYWORD:
            keywords.update(value)
        elif parameter.kind is parameter.KEYWORD_ONLY:
            keywords[name] = value
        else:
            positional.append(value)
    return positional, keywords


@pytest.mark.parametrize("index", range(len(CHECKS)))
def test_recorded_call(index):
    check = CHECKS[index]
    function = _function(check)
    positional, keywords = _arguments(function, check["args"])
    shown = check["qualname"] + "(" + ", ".join(f"{{k}}={{v}}" for k, v in check["args"].items()) + ")"
    try:
        result = function(*positional, **keywords)
    except Exception as exc:
        if check["raised"] is not None and check["raised"].split(":")[0] == type(exc).__name__:
            return
        raise AssertionError(f"{{shown}} raised {{type(exc).__name__}}: {{exc}}; in {{check['test']}} it "
                             f"{{_recorded(check)}}") from None
    got = summarize(result)
    if check["raised"] is not None or got != check["returned"]:
        raise AssertionError(f"{{shown}} returned {{got}}; in {{check['test']}} it {{_recorded(check)}}")


def _recorded(check):
    return f"raised {{check['raised']}}" if check["raised"] is not None else f"returned {{check['returned']}}"
'''


def write_check_file(scratch: Path, checks: Iterable[HelperCheck]) -> str:
    """Write the check file into the scratch copy; its project-relative path."""
    data = json.dumps([{"module": c.module, "path": c.path, "qualname": c.qualname, "args": c.args,
                        "returned": c.returned, "raised": c.raised, "test": c.test} for c in checks])
    (Path(scratch) / CHECK_FILE).write_text(_TEMPLATE.format(data=data), encoding="utf-8")
    return CHECK_FILE


def remove_check_file(scratch: Path) -> None:
    (Path(scratch) / CHECK_FILE).unlink(missing_ok=True)


def failed_checks(run: RunResult, checks: tuple[HelperCheck, ...]) -> list[tuple[HelperCheck, str]]:
    """(check, failure message) for each check the run reports as failed (skipped ones are not)."""
    out = []
    for outcome in run.outcomes:
        if not outcome.nodeid.startswith(CHECK_FILE + "::") or not outcome.bad:
            continue
        index = _index_of(outcome.nodeid)
        if index is not None and index < len(checks):
            out.append((checks[index], outcome.message.removeprefix("AssertionError: ")))
    return out


def _index_of(nodeid: str) -> int | None:
    inside = nodeid.rpartition("[")[2].rstrip("]")
    return int(inside) if inside.isdigit() else None


def stable_checks(root: Path, checks: tuple[HelperCheck, ...], *, test_timeout: float = 10.0,
                  run_timeout: float = 300.0, pytest_args=(), python: str | None = None) -> tuple[HelperCheck, ...]:
    """The checks that pass against the unpatched code (run once, in a scratch copy)."""
    if not checks:
        return ()
    with scratch_copy(root) as scratch:
        rel = write_check_file(scratch, checks)
        run = run_tests(scratch, test_ids=[rel], test_timeout=test_timeout, run_timeout=run_timeout,
                        pytest_args=pytest_args, python=python, in_place=True)
    passed = {_index_of(o.nodeid) for o in run.outcomes if o.outcome == "passed"}
    return tuple(c for i, c in enumerate(checks) if i in passed)
