"""Which tests vouch for a validated fix besides the failing ones it was made for.

A fix passes the failing tests by construction; only the tests that passed before and run
the edited function can tell it from an edit that merely fits them (one visible test, a
flipped comparison). When none does, the report says so: run 5's plausible-but-wrong fixes
were all of this kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

from tracefix.repair.diff import replacements_in
from tracefix.tracer.localize import code_of, counted
from tracefix.tracer.runner import RunResult
from tracefix.tracer.selection import functions_ran


def edited_lines(diff: str) -> dict[str, set[int]]:
    """{path: old line numbers} a unified diff replaces, or (for a pure insertion) inserts after."""
    out: dict[str, set[int]] = {}
    for r in replacements_in(diff):
        lines = range(r.start, r.start + len(r.old)) if r.old else (max(r.start - 1, 1),)
        out.setdefault(r.path, set()).update(lines)
    return out


FunctionsRan = Callable[[], Mapping[str, frozenset[str]]]  # nodeid -> functions it ran, asked for when needed


def weakly_checked(root: Path, diff: str, coverage: RunResult | None, ran: FunctionsRan | None = None) -> bool:
    """Whether no test that passed before the fix runs a function it edits (False when the
    coverage run or the edited functions are unknown: nothing to say then). `ran` gives the
    coverage run's functions per test when a caller keeps them (`Start.functions_ran`): on a
    large suite reading them is the costly part."""
    if coverage is None or not diff:
        return False
    edits = edited_lines(diff)
    code = code_of(Path(root), sorted(edits))
    edited = {info.key for path, lines in edits.items() for line in lines
              if (info := code.function_at(path, line)) is not None}
    if not edited:
        return False
    by_test = ran() if ran is not None else functions_ran(coverage, Path(root))
    return not any(edited & by_test.get(o.nodeid, frozenset()) for o in coverage.outcomes if counted(o) == "pass")


def unchecked_warning(root: Path, diff: str, coverage: RunResult | None, failing,
                      ran: FunctionsRan | None = None) -> str | None:
    """A warning when no test that passed before the fix runs a function it edits."""
    if not weakly_checked(root, diff, coverage, ran):
        return None
    n = len(failing)
    return (f"weakly checked: no test that passed before runs the edited code, so only the {n} failing "
            f"test{'s' if n != 1 else ''} it was made for check{'s' if n == 1 else ''} this fix; read it "
            f"before applying, or add a test")
