"""Records that cross module and package lines: frozen dataclasses with plain fields.

Everything here serializes to JSON through `to_json` and back through the `from_json`
class methods; the trace schema is documented in docs/trace-schema.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The major number changes when a field is removed or changes meaning, the minor when fields
# are added (1.1: `selection`, and `unrecorded` in each test; 1.2: `call_line`, `yields` and
# `yielded` in each call, `call_counts` in each test; 1.3: `marked` in each test): a reader
# checks the major.
TRACE_SCHEMA = "tracefix.trace/1.3"


@dataclass(frozen=True)
class Block:
    """A basic block: a maximal straight-line run of statements inside one function.

    `lines` holds every source line whose execution belongs to this block (the runtime
    recorder maps line events to blocks through it); `start`/`end` bound the block's text.
    """

    index: int
    start: int
    end: int
    lines: tuple[int, ...]
    kind: str = "body"  # "body" | "condition" | "loop" | "handler" | "return" | ...
    successors: tuple[int, ...] = ()


@dataclass(frozen=True)
class FunctionInfo:
    """A function, method or nested function found in a project file."""

    key: str  # "<relative path>::<qualname>"
    path: str  # relative to the project root, with forward slashes
    qualname: str
    name: str
    first_line: int  # equals code.co_firstlineno: the first decorator's line, else the def line
    def_line: int
    end_line: int
    params: tuple[str, ...]
    docstring: str | None
    blocks: tuple[Block, ...]
    is_async: bool = False
    docstring_end: int | None = None  # last line of the docstring; it never runs

    def block_at(self, line: int) -> Block | None:
        for block in self.blocks:
            if line in block.lines:
                return block
        return None


@dataclass(frozen=True)
class BlockVisit:
    """One execution of one block during one call.

    `before` holds every local at the call's first recorded visit and only the variables
    that changed since the previous recorded snapshot afterwards; `after` holds the
    variables the block changed.
    """

    block: int
    index: int  # the nth visit of this block within the call, from 1
    before: dict[str, str]
    after: dict[str, str]


@dataclass(frozen=True)
class Elided:
    """Visits of a block that were counted but not recorded (bounded memory)."""

    block: int
    first: int  # first visit index not recorded
    last: int | None  # last visit index not recorded; None when the back end stopped counting


@dataclass(frozen=True)
class CallRecord:
    """One call of a recorded function, with its bounded block trace."""

    id: int
    parent: int | None  # the nearest recorded caller
    function: str  # FunctionInfo.key
    depth: int
    args: dict[str, str]
    visits: tuple[BlockVisit, ...]
    elided: tuple[Elided, ...] = ()
    returned: str | None = None
    raised: str | None = None  # "ExcType: message"
    raised_line: int | None = None
    exit_locals: dict[str, str] = field(default_factory=dict)
    finished: bool = True  # False when the run was stopped (timeout) inside this call
    call_line: int | None = None  # the line of the parent's function that was running when this call began
    yields: int = 0  # a generator or coroutine: times it suspended (its resumptions are this same record)
    yielded: tuple[str, ...] = ()  # the first values it yielded


@dataclass(frozen=True)
class Unrecorded:
    """A function the test's call phase ran (per-test coverage says so) that its trace leaves out."""

    function: str  # FunctionInfo.key
    rank: int | None  # in the ranking of the failing tests (`tracefix locate`); None: no failing test ran it
    reason: str  # "rank": past the functions recorded; "snapshots": over the test's snapshot bound
    snapshots: int | None = None  # "snapshots" only: the calls and block visits it would have added


@dataclass(frozen=True)
class TraceSelection:
    """Which functions a trace run records, and the flag that records what it left out."""

    by: str  # "ranking" (the default) | "suspects" (--suspects N) | "all" (every project function) | "given"
    suspects: int | None = None  # N of --suspects N
    max_snapshots: int | None = None  # the per-test bound of "ranking"
    include: str | None = None  # the option that records every unrecorded function, e.g. "--suspects 13"


@dataclass(frozen=True)
class TestTrace:
    """Everything recorded for one test."""

    nodeid: str
    outcome: str  # "passed" | "failed" | "error" | "timeout" | "crashed" (no calls) | "skipped"
    message: str  # one-line failure summary ("AssertionError: assert 3 == 4")
    longrepr: str  # pytest's failure text, bounded
    functions: tuple[FunctionInfo, ...]
    calls: tuple[CallRecord, ...]
    dropped_calls: int = 0  # calls beyond the per-function bound, not recorded
    duration: float = 0.0
    unrecorded: tuple[Unrecorded, ...] = ()  # functions the test ran that are not recorded, most suspicious first
    call_counts: dict[str, int] = field(default_factory=dict)  # FunctionInfo.key -> every call the recorder saw

    @property
    def stopped_by(self) -> str:
        """What ended the calls that never returned, as the test's own failure tells."""
        if self.outcome == "timeout":
            return "the per-test timeout"
        if self.message.startswith("RecursionError"):
            # On 3.10/3.11 the stack overflows inside the tracer, and CPython drops it.
            return "a RecursionError: the stack overflowed"
        return "the end of the recording"


def call_result(finished: bool, raised: str | None, returned: str | None, stopped_by: str) -> tuple[str, str]:
    """How a call ended, as (kind, words): ("stopped", "did not return (stopped by ...)"),
    ("raised", "raised E(...)") or ("returned", "returned V"). The trace view, the prompts
    and the hierarchical judge all word it from here."""
    if not finished:
        return "stopped", f"did not return (stopped by {stopped_by})"
    if raised is not None and raised != "":
        return "raised", f"raised {raised}"
    if returned is None:  # a generator closed or left suspended before its end
        return "suspended", "stopped at a yield (its consumer did not run it to the end)"
    return "returned", f"returned {returned}"


def to_json(obj: Any) -> Any:
    """Plain JSON-ready data from nested records."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_json(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    return obj


def from_json(cls: type, data: Any) -> Any:
    """Rebuild a record of type `cls` from `to_json` output (nested records included)."""
    import typing

    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        kwargs[f.name] = _coerce(hints[f.name], data[f.name])
    return cls(**kwargs)


def _coerce(hint: Any, value: Any) -> Any:
    import typing

    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple:
        inner = args[0] if args else Any
        return tuple(_coerce(inner, v) for v in value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for arg in args:
            if arg is type(None):
                continue
            return _coerce(arg, value)
    if dataclasses.is_dataclass(hint):
        return from_json(hint, value)
    return value
