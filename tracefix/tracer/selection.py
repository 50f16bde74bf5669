"""Which functions a trace records: the ones the traced tests ran, most suspicious first.

The coverage run behind the ranking (tracer/localize.py) also tells, test by test, which
project functions each test's call phase ran. A trace records those, in rank order:

- by default, the FUNCTIONS_RECORDED most suspicious of them; then, test by test, the
  recorded functions are kept in rank order while the test's trace holds at most
  `max_snapshots` snapshots (a call or a block visit). A function that does not fit is left
  out and the next one tried; the test's most suspicious function is always kept.
- with `--suspects N`, the N most suspicious of them, whatever their size.

Every function a traced test ran that its trace leaves out is named in the trace
(`TestTrace.unrecorded`) with its rank and why: the culprit is in the trace, or the trace
says it is not and which `--suspects N` records it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from tracefix.errors import UserError
from tracefix.tracer.localize import Localization, code_of, covered_lines
from tracefix.tracer.records import CallRecord, TestTrace, Unrecorded
from tracefix.tracer.runner import RunResult

# A count bound only so that recording time stays bounded on a large project; the snapshot
# bound decides what a trace shows. 50 is five times the count that used to drop an 11th
# function the failing test ran.
FUNCTIONS_RECORDED = 50
# Per test: room for ten functions called ten times each (what the old count of 10 recorded on
# such a test). The text view shows about 0.8 lines per snapshot (it prints at most six calls
# per function; bench/trace_selection.py, syn30hot): about 800 lines of one test there.
SNAPSHOT_BUDGET = 1000


@dataclass(frozen=True)
class Selection:
    order: tuple[str, ...]  # FunctionInfo keys the traced tests ran, most suspicious first
    ranks: dict[str, int]  # key -> rank in the localization (functions no failing test ran have none)
    ran: dict[str, frozenset[str]]  # nodeid -> keys of the functions its call phase ran
    suspects: int | None = None  # record the top N, whatever their size
    max_snapshots: int | None = None  # else the per-test bound

    @property
    def recorded(self) -> tuple[str, ...]:
        """The functions the recorder watches."""
        return self.order[:self.suspects or FUNCTIONS_RECORDED]

    def applied(self, trace: TestTrace, dropped_by_function: dict[str, int] | None = None) -> TestTrace:
        """`trace` within the snapshot bound, naming every function its test ran that it leaves out."""
        over: dict[str, int] = {}
        if self.suspects is None and self.max_snapshots is not None:
            over = over_budget(trace, self.order, self.max_snapshots)
            trace = without(trace, set(over), dropped_by_function or {})
        position = {key: i for i, key in enumerate(self.order)}
        recorded = set(self.recorded)
        left = [Unrecorded(key, self.ranks.get(key), "snapshots", over[key]) for key in over]
        left += [Unrecorded(key, self.ranks.get(key), "rank") for key in self.ran.get(trace.nodeid, ())
                 if key not in recorded and key in position]
        left.sort(key=lambda u: position.get(u.function, len(position)))
        return replace(trace, unrecorded=tuple(left))

    def include(self, traces) -> str | None:
        """The option that records every function `traces` left out, or None when none is."""
        position = {key: i for i, key in enumerate(self.order)}
        last = max((position[u.function] for t in traces for u in t.unrecorded if u.function in position),
                   default=None)
        return None if last is None else f"--suspects {last + 1}"


def selection_for(loc: Localization, run: RunResult, root: Path, nodeids, *, suspects: int | None = None,
                  max_snapshots: int | None = None) -> Selection:
    """The selection for tracing `nodeids`, from the ranking `loc` and the coverage run it ranked."""
    ran = functions_ran(run, root)
    ranks = {s.function: s.rank for s in loc.functions if s.function}
    wanted = set().union(*(ran.get(n, frozenset()) for n in nodeids))
    if not wanted:
        # Test ids that name no test of the coverage run as spelled: the failing tests' functions.
        wanted = set(ranks)
    ranked = [key for key in ranks if key in wanted]  # loc.functions is already in rank order
    order = tuple(ranked + sorted(wanted - set(ranks)))
    return Selection(order, ranks, ran, suspects, max_snapshots)


def functions_ran(run: RunResult, root: Path) -> dict[str, frozenset[str]]:
    """nodeid -> the project functions whose lines that test's call phase ran."""
    paths = sorted({p for data in run.per_test.values() for p in (data or {}).get("lines", {})})
    code = code_of(Path(root), paths)
    starts = code.starts()
    out = {}
    for nodeid in run.per_test:
        infos = (code.function_at(path, line) for path, line in covered_lines(run, nodeid, starts))
        out[nodeid] = frozenset(info.key for info in infos if info is not None)
    return out


def matching(test_ids, nodeids) -> list[str]:
    """The nodeids that pytest runs for `test_ids` (files, folders, classes, parametrized tests)."""
    def selects(test_id: str, nodeid: str) -> bool:
        test_id = test_id.rstrip("/")
        if test_id in ("", "."):
            return True
        return nodeid == test_id or nodeid.startswith((test_id + "::", test_id + "[", test_id + "/"))

    return [n for n in nodeids if any(selects(t, n) for t in test_ids)]


def snapshots_of(calls) -> Counter:
    """FunctionInfo key -> the snapshots its calls hold: one per call, one per block visit."""
    cost: Counter = Counter()
    for call in calls:
        cost[call.function] += 1 + len(call.visits)
    return cost


def over_budget(trace: TestTrace, order, max_snapshots: int) -> dict[str, int]:
    """key -> snapshots of each recorded function that does not fit in `max_snapshots`, trying them
    in rank order (`order`); the first recorded one always fits."""
    cost = snapshots_of(trace.calls)
    recorded = [key for key in order if cost[key]] + sorted(set(cost) - set(order))
    used, over = 0, {}
    for i, key in enumerate(recorded):
        if i and used + cost[key] > max_snapshots:
            over[key] = cost[key]
        else:
            used += cost[key]
    return over


def without(trace: TestTrace, keys: set[str], dropped_by_function: dict[str, int]) -> TestTrace:
    """`trace` without the calls of `keys`: their callees move up to the nearest kept caller, one
    level of depth less for each call left out above them, as if the recorder had not watched them."""
    if not keys:
        return trace
    by_id = {c.id: c for c in trace.calls}
    kept_parent: dict[int, int | None] = {}  # call id -> its nearest kept caller
    removed_above: dict[int, int] = {}  # call id -> calls left out above it
    kept_line: dict[int, int | None] = {}  # call id -> the line of its nearest kept caller that led to it
    calls: list[CallRecord] = []
    for call in sorted(trace.calls, key=lambda c: c.id):  # a caller's id is below its callees'
        parent = by_id.get(call.parent) if call.parent is not None else None
        if parent is None:
            kept_parent[call.id], removed_above[call.id] = call.parent, 0
            kept_line[call.id] = call.call_line
        elif parent.function in keys:
            kept_parent[call.id] = kept_parent[parent.id]
            removed_above[call.id] = removed_above[parent.id] + 1
            kept_line[call.id] = kept_line[parent.id]  # its own line is in the call left out
        else:
            kept_parent[call.id], removed_above[call.id] = parent.id, removed_above[parent.id]
            kept_line[call.id] = call.call_line
        if call.function not in keys:
            calls.append(replace(call, parent=kept_parent[call.id], depth=call.depth - removed_above[call.id],
                                 call_line=kept_line[call.id]))
    dropped = trace.dropped_calls - sum(dropped_by_function.get(k, 0) for k in keys)
    return replace(trace, calls=tuple(calls), functions=tuple(f for f in trace.functions if f.key not in keys),
                   dropped_calls=max(dropped, 0))


def functions_named(root: Path, names) -> list[str]:
    """The FunctionInfo keys `--function NAME` means: a key as the JSON spells it
    (`pkg/mod.py::Class.method`), a qualified name (`Class.method`) or a bare name (`method`),
    each matching every project function of that name. A name that matches none is a
    UserError naming the closest ones."""
    from difflib import get_close_matches

    from tracefix.tracer.trace_session import project_functions

    infos = project_functions(Path(root))
    chosen: list[str] = []
    for name in names:
        name = name.strip()
        found = [i.key for i in infos if name in (i.key, i.qualname, i.name)]
        if not found:
            spellings = [i.key for i in infos] + [i.qualname for i in infos]
            near = get_close_matches(name, spellings, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise UserError(f"--function {name}: no function of that name in the project's source files{hint}")
        chosen.extend(k for k in found if k not in chosen)
    return chosen
