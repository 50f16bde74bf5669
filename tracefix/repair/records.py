"""The records every repair strategy shares: candidates, judgments, the final report.

They cross from `repair/` to the CLI, the benchmarks and the JSON output, so they are frozen
dataclasses of plain fields, kept apart from any strategy that fills them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from tracefix.debugger.answers import Verdict
from tracefix.debugger.hierarchy import Hierarchy
from tracefix.debugger.llm import Usage
from tracefix.repair.validate import Outcome
from tracefix.tracer.localize import Suspect


@dataclass(frozen=True)
class Candidate:
    iteration: int
    function: str  # FunctionInfo.key
    code: str
    outcome: Outcome | None  # None when rejected before any test ran
    rejected: str = ""  # why it never reached the tests (bad answer, signature change, ...)


@dataclass(frozen=True)
class Judgment:
    iteration: int
    function: str
    verdicts: tuple[Verdict, ...]
    note: str = ""  # e.g. "malformed answer twice: continuing without verdicts"


@dataclass(frozen=True)
class FixReport:
    status: str  # "fixed" | "no_fix" | "nothing_failing"
    root: str
    failing: tuple[str, ...]
    suspects: tuple[Suspect, ...]
    judgments: tuple[Judgment, ...]
    candidates: tuple[Candidate, ...]
    diff: str
    edited: dict[str, str] = field(default_factory=dict)
    applied: tuple[str, ...] = ()
    usage: Usage | None = None
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    outcomes: tuple = ()  # every test's outcome before the fix (tracer.runner.TestOutcome)
    hierarchy: Hierarchy | None = None  # bottom-up call verdicts (hierarchical strategy)
    stopped_by: str = ""  # the budget that ended a run without a fix: "tokens" | "usd" | "seconds"


Progress = Callable[[str], None]


def since(started: float) -> float:
    """Seconds since `started` (a perf_counter reading), as reports give them."""
    return round(time.perf_counter() - started, 3)
