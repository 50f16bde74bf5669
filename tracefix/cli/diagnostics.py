"""Findings as compiler-style lines: `path:line:col: severity: message`.

One line per finding, paths relative to the project root with forward slashes, so that
editors (the VS Code problem matcher in `debugger/integrations.py`), terminals and CI
annotators can jump to it. Severities: `error` for a failing test (at the line of the
test that failed) and for an exception raised in recorded code, `warning` for a suspect
from fault localization, `info` for a validated fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from tracefix.tracer.localize import Suspect
from tracefix.tracer.records import TestTrace
from tracefix.tracer.runner import BAD_OUTCOMES, TestOutcome

SEVERITIES = ("error", "warning", "info")

# The one pattern for a diagnostic line, written in the subset of regular expression syntax
# that JavaScript (VS Code's problem matcher) and Python's `re` read alike. Groups: path,
# line, column, severity, message. The path is matched lazily so a message holding
# "x:1:2: error: " cannot pull the path along.
LINE_PATTERN = r"^(.+?):(\d+):(\d+): (error|warning|info): (.*)$"

MAX_MESSAGE = 400  # characters; pytest's assertion explanations can run to pages
BAD = BAD_OUTCOMES


@dataclass(frozen=True)
class Diagnostic:
    path: str  # relative to the project root, forward slashes
    line: int  # 1-based
    column: int  # 1-based
    severity: str  # "error" | "warning" | "info"
    message: str  # one line

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.severity}: {self.message}"


def diagnostic_lines(root: Path, *, outcomes: Iterable[TestOutcome] = (), traces: Iterable[TestTrace] = (),
                     suspects: Iterable[Suspect] = (), formula: str = "", fixed: Iterable[str] = (),
                     edited: Mapping[str, str] | None = None) -> list[str]:
    """The diagnostic lines for whatever a command found, in this order, without repeats:

    - `outcomes`: every failing test (error at the test's own line on the failure's stack);
    - `traces`: the raising line of the deepest recorded call that raised (error);
    - `suspects`: fault-localization suspects, as ranked (warning with rank and score);
    - `fixed`: function keys ("path::qualname") of a validated fix (info at the def line,
      looked up in `edited` - the new file texts - when given, else on disk).
    """
    root = Path(root)
    found: list[Diagnostic] = []
    found += failure_diagnostics(root, outcomes)
    found += raise_diagnostics(root, traces)
    found += suspect_diagnostics(root, suspects, formula)
    for key in fixed:
        diagnostic = fix_diagnostic(root, key, edited)
        if diagnostic is not None:
            found.append(diagnostic)
    return _unique(str(d) for d in found)


def failure_diagnostics(root: Path, outcomes: Iterable[TestOutcome]) -> list[Diagnostic]:
    """An error per failing, erroring or timed-out test, at the test's line on its stack."""
    out = []
    for outcome in outcomes:
        if outcome.outcome not in BAD and outcome.outcome != "slow":
            continue
        path, line = failing_test_line(outcome)
        message = f"{outcome.nodeid} {outcome.outcome}: {outcome.message or 'no message'}"
        # slow under tracing: passes untraced, so a warning, not a failure
        out.append(_at(root, path, line, "error" if outcome.outcome in BAD else "warning", message))
    return out


def failing_test_line(outcome: TestOutcome) -> tuple[str, int]:
    """(path, line) of the failing statement in the test itself.

    The failure's project frames run outermost first: the test function's own frame is the
    one named after it in its file (an assert, or the call that raised deeper down). A
    failure in a fixture has no such frame: its innermost frame in the test file, then its
    innermost frame anywhere, then the test file's first line.
    """
    file, name = _test_file_and_name(outcome.nodeid)
    frames = list(outcome.frames)
    for want in (lambda p, n: p == file and n == name, lambda p, n: p == file, lambda p, n: True):
        hits = [(p, line) for p, line, n in frames if want(p, n)]
        if hits:
            return hits[-1]
    return file, 1


def _test_file_and_name(nodeid: str) -> tuple[str, str]:
    parts = nodeid.split("::")
    name = re.sub(r"\[.*\]$", "", parts[-1]) if len(parts) > 1 else ""
    return parts[0], name


def raise_diagnostics(root: Path, traces: Iterable[TestTrace]) -> list[Diagnostic]:
    """An error per failing traced test at the raising line of its deepest recorded call
    that raised (where the exception left the user's code, not where pytest noticed)."""
    out = []
    for trace in traces:
        if trace.outcome not in BAD:
            continue
        raised = [c for c in trace.calls if c.raised and c.raised_line]
        if not raised:
            continue
        call = max(raised, key=lambda c: (c.depth, c.id))
        path, _, qualname = call.function.partition("::")
        message = f"{call.raised} raised in {qualname or path} ({trace.nodeid})"
        out.append(_at(root, path, call.raised_line, "error", message))
    return out


def suspect_diagnostics(root: Path, suspects: Iterable[Suspect], formula: str = "") -> list[Diagnostic]:
    """A warning per suspect at its first line: rank, kind, score and the test counts."""
    out = []
    for s in suspects:
        where = s.qualname or "module level"
        if s.kind == "block" and s.block is not None:
            where = f"block {s.block} of {where}"
        elif s.kind == "line":
            where = f"line in {where}"
        score = f"{formula} {s.score:.3f}" if formula else f"score {s.score:.3f}"
        message = (f"suspect #{s.rank}: {where} ({score}; run by {s.failing_covering} failing, "
                   f"{s.passing_covering} passing tests)")
        out.append(_at(root, s.path, s.line, "warning", message))
    return out


def fix_diagnostic(root: Path, key: str, edited: Mapping[str, str] | None = None,
                   message: str = "") -> Diagnostic | None:
    """An info line at the def line of a fixed function; None when the function is gone."""
    from tracefix.tracer.cfg import functions_in

    path, _, qualname = key.partition("::")
    text = (edited or {}).get(path)
    if text is None:
        try:
            text = (Path(root) / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    try:
        infos = functions_in(text, path)
    except SyntaxError:
        return None
    info = next((i for i in infos if i.qualname == qualname), None)
    if info is None:
        return None
    message = message or f"validated fix for {qualname}: the failing tests pass with it (see the diff)"
    return _at(root, path, info.def_line, "info", message, text)


def parse_line(line: str) -> Diagnostic | None:
    """The Diagnostic a line holds, read back with LINE_PATTERN; None for other lines."""
    match = re.match(LINE_PATTERN, line)
    if not match:
        return None
    path, row, col, severity, message = match.groups()
    return Diagnostic(path, int(row), int(col), severity, message)


# --- helpers ----------------------------------------------------------------------------

def _at(root: Path, path: str, line: int, severity: str, message: str, text: str | None = None) -> Diagnostic:
    path = path.replace("\\", "/")
    return Diagnostic(path, max(int(line), 1), _column(root, path, line, text), severity, _one_line(message))


def _column(root: Path, path: str, line: int, text: str | None) -> int:
    """The statement's first column, so an editor's squiggle starts at the code, not at the
    indentation. pytest reports no columns; 1 when the file cannot be read."""
    if text is None:
        try:
            text = (Path(root) / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return 1
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return 1
    source = lines[line - 1]
    return len(source) - len(source.lstrip()) + 1 if source.strip() else 1


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 3] + "..."


def _unique(lines: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for line in lines:
        seen.setdefault(line, None)
    return list(seen)


def lines_text(lines: Sequence[str]) -> str:
    """What a command writes to stdout: the lines, each ended by a newline."""
    return "".join(line + "\n" for line in lines)
