"""The runtime recorder: bounded calls and block visits of the project's functions.

`Recorder` holds what was seen and enforces every bound; a back end (`tracer/settrace.py`
on 3.10/3.11, `tracer/monitoring.py` where `sys.monitoring` exists) feeds it events. The
back end is chosen once, in `start_recording`, the way coverage.py's collector picks its
tracer.

Bounds, so memory stays flat whatever the test does:
- the first `max_visits` visits of each block in a call are recorded with variable
  snapshots; later visits are only counted (settrace) or not seen at all (sys.monitoring
  disables their lines), and appear as an `Elided` range;
- the state at the end of every call (return value or exception, and the locals at that
  moment) is always kept, so the state at a failure is never lost;
- the first `max_calls` calls of each function are recorded in full; later calls are kept
  "light" (arguments and result only): the last `max_calls` of them, plus every one that
  raised; at most `max_total_calls` light calls are looked at per test.

A generator (or coroutine) is one call however often it suspends: a back end reports each
yield (`suspended`), and on 3.10/3.11, where every resumption is a new "call" event, each
resumption (`resumed`); its visits go on in the same record.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

from tracefix.tracer.records import BlockVisit, CallRecord, Elided, FunctionInfo
from tracefix.tracer.snapshot import summarize, summarize_exception, summarize_locals


class Target:
    """A function the recorder watches, with its line -> block map."""

    __slots__ = ("info", "line_block", "n_calls", "light_tail", "dropped")

    def __init__(self, info: FunctionInfo) -> None:
        self.info = info
        self.line_block = {line: b.index for b in info.blocks for line in b.lines}
        self.n_calls = 0
        self.light_tail: deque[Call] = deque()
        self.dropped = 0


class Call:
    """One call in progress. `full` calls record block visits; light ones only the result."""

    __slots__ = (
        "rec", "target", "id", "parent", "depth", "args", "full", "cur",
        "counts", "visits", "open", "prev_state", "returned", "raised", "raised_line",
        "exit_locals", "finished", "pending_exc", "call_line", "yields", "yielded",
    )

    def __init__(self, rec: Recorder, target: Target, call_id: int, parent: Call | None, frame, full: bool,
                 call_line: int | None = None):
        self.rec = rec
        self.target = target
        self.id = call_id
        self.parent = parent.id if parent else None
        self.depth = parent.depth + 1 if parent else 0
        self.call_line = call_line
        self.yields = 0
        self.yielded: list[str] = []
        params = target.info.params
        f_locals = frame.f_locals
        self.args = {p: summarize(f_locals[p]) for p in params if p in f_locals}
        self.full = full
        self.cur = -1
        self.counts: dict[int, int] = {}
        self.visits: list[BlockVisit] = []
        self.open: tuple | None = None
        self.prev_state: dict[str, str] | None = None
        self.returned: str | None = None
        self.raised: str | None = None
        self.raised_line: int | None = None
        self.exit_locals: dict[str, str] = {}
        self.finished = False
        self.pending_exc = None

    def line(self, lineno: int, frame) -> bool:
        """Note a line event; False when this line need not be reported again (block full)."""
        block = self.target.line_block.get(lineno)
        if block is None:
            return True
        # A new visit starts when control reaches another block. Jumps back inside a block
        # are not visits: a multi-line statement reports its first line again, and so do
        # comprehensions inlined on 3.12+. The price: a block that loops onto itself without
        # passing another block (`while True:` with a one-block body) is one long visit.
        if block != self.cur:
            self._enter(block, frame)
        self.pending_exc = None
        return self.open is not None

    def _enter(self, block: int, frame) -> None:
        state = None
        if self.open is not None:
            state = summarize_locals(frame.f_locals)
            self._close(state)
        n = self.counts.get(block, 0) + 1
        self.counts[block] = n
        self.cur = block
        if n > self.rec.max_visits:
            self.open = None
            return
        if state is None:
            state = summarize_locals(frame.f_locals)
        before = state if self.prev_state is None else _changed(self.prev_state, state)
        self.open = (block, n, before, state)

    def _close(self, state: dict[str, str]) -> None:
        block, n, before, entry = self.open
        self.visits.append(BlockVisit(block, n, before, _changed(entry, state)))
        self.prev_state = state
        self.open = None

    def exit(self, frame, *, value=None, exc: BaseException | None = None, line: int | None = None) -> None:
        state = summarize_locals(frame.f_locals)
        if self.open is not None:
            self._close(state)
        self.exit_locals = state
        self.finished = True
        if isinstance(exc, GeneratorExit) and self.yields:
            return  # closed at a yield by its consumer (or the GC): stopped early, not a failure
        if exc is not None:
            self.raised = summarize_exception(exc)
            self.raised_line = line
        else:
            self.returned = summarize(value)

    def suspend(self, frame, value) -> None:
        """The generator yielded `value`: its visit ends here, and a resumption starts a new one."""
        if self.open is not None:
            self._close(summarize_locals(frame.f_locals))
        self.cur = -1
        self.yields += 1
        if self.full and len(self.yielded) < self.rec.max_visits:
            self.yielded.append(summarize(value))

    def stopped(self, frame) -> None:
        """The run was stopped (timeout) with this call on the stack: keep its state."""
        state = summarize_locals(frame.f_locals)
        if self.open is not None:
            self._close(state)
        self.exit_locals = state
        self.raised_line = frame.f_lineno

    def record(self, elided_open_ended: bool, suspended: bool = False) -> CallRecord:
        limit = self.rec.max_visits
        elided = tuple(
            Elided(b, limit + 1, None if elided_open_ended else n)
            for b, n in sorted(self.counts.items())
            if n > limit
        )
        visits = list(self.visits)
        if self.open is not None:  # a call that never ended: its last visit, without an after
            block, n, before, _entry = self.open
            visits.append(BlockVisit(block, n, before, {}))
        return CallRecord(
            id=self.id, parent=self.parent, function=self.target.info.key, depth=self.depth,
            args=self.args, visits=tuple(visits), elided=elided, returned=self.returned,
            raised=self.raised, raised_line=self.raised_line, exit_locals=self.exit_locals,
            finished=self.finished or suspended, call_line=self.call_line, yields=self.yields,
            yielded=tuple(self.yielded),
        )


def _changed(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in new.items() if old.get(k) != v}


class Recorder:
    """Bounded store of calls of the target functions, fed by one back end."""

    def __init__(self, functions, root: Path, *, max_visits: int = 5, max_calls: int = 20,
                 max_total_calls: int = 2000) -> None:
        self.root = Path(root).resolve()
        self.max_visits = max_visits
        self.max_calls = max_calls
        self.max_total_calls = max_total_calls
        self.functions = {f.key: f for f in functions}
        self._by_location: dict[tuple[str, int, str], Target] = {}
        for info in functions:
            path = os.path.normcase(str(self.root / info.path))
            self._by_location[(path, info.first_line, info.name)] = Target(info)
        # id(code) -> (code, Target | None); the code object is kept so its id is not reused.
        # Keyed by id: hashing a code object costs ~1.4 us on 3.12.
        self._code_cache: dict[int, tuple] = {}
        self.not_targets: set[int] = set()  # ids of cached code objects that are no target
        self.open_calls: dict[int, Call] = {}  # id(frame) -> call
        # id(frame) -> a generator call suspended at a yield (settrace: until its frame resumes).
        # A suspended generator owns its frame, so the id cannot be reused meanwhile.
        self.suspended: dict[int, Call] = {}
        self.done: list[Call] = []
        self.next_id = 1
        self.light_calls = 0
        self.dropped = 0

    def target_of(self, code) -> Target | None:
        hit = self._code_cache.get(id(code))
        if hit is not None:
            return hit[1]
        path = os.path.normcase(os.path.abspath(code.co_filename))
        target = self._by_location.get((path, code.co_firstlineno, code.co_name))
        self._code_cache[id(code)] = (code, target)
        if target is None:
            self.not_targets.add(id(code))
        return target

    def call_started(self, target: Target, frame) -> Call | None:
        # Each function's first max_calls calls are always recorded in full (that is bounded
        # by the number of functions); only light calls draw on the shared budget, so one hot
        # function cannot starve the others.
        target.n_calls += 1
        full = target.n_calls <= self.max_calls
        if not full:
            if self.light_calls >= self.max_total_calls:
                self.dropped += 1
                target.dropped += 1
                return None
            self.light_calls += 1
        caller, line = self._caller_of(frame)
        call = Call(self, target, self.next_id, caller, frame, full, line)
        self.next_id += 1
        self.open_calls[id(frame)] = call
        return call

    def call_ended(self, frame, **result) -> None:
        call = self.open_calls.pop(id(frame), None)
        if call is None:
            return
        call.exit(frame, **result)
        if call.full:
            self.done.append(call)
            return
        # Light calls: keep the last max_calls, and every one that raised.
        if call.raised is not None:
            self.done.append(call)
            return
        tail = call.target.light_tail
        tail.append(call)
        if len(tail) > self.max_calls:
            tail.popleft()
            self.dropped += 1
            call.target.dropped += 1

    def call_suspended(self, frame, value) -> None:
        """A back end saw `frame` yield (settrace: its "return" event at a yield)."""
        call = self.open_calls.pop(id(frame), None)
        if call is None:
            return
        call.suspend(frame, value)
        self.suspended[id(frame)] = call

    def call_resumed(self, target: Target, frame) -> Call | None:
        """The suspended generator call `frame` resumes, back on the stack; None when this frame
        was never seen to suspend (it started before the recording)."""
        call = self.suspended.get(id(frame))
        if call is None or call.target is not target:
            return None
        del self.suspended[id(frame)]
        self.open_calls[id(frame)] = call
        return call

    def _caller_of(self, frame) -> tuple[Call | None, int | None]:
        """The nearest recorded caller, and the line its frame was running (the call's own line,
        or that of the unrecorded call that led here)."""
        back = frame.f_back
        for _ in range(64):  # the nearest recorded caller is almost always a few frames up
            if back is None:
                return None, None
            call = self.open_calls.get(id(back))
            if call is not None:
                return call, back.f_lineno
            back = back.f_back
        return None, None

    def stop_in(self, frame) -> None:
        """Called when the run is interrupted (timeout): close every call on the stack."""
        while frame is not None:
            call = self.open_calls.pop(id(frame), None)
            if call is not None:
                call.stopped(frame)
                self.done.append(call)
            frame = frame.f_back

    def records(self, elided_open_ended: bool = False) -> tuple[list[CallRecord], int]:
        # Calls still open never reported their end: a RecursionError inside the trace
        # function makes CPython drop the tracer. What they recorded is kept, unfinished.
        # A generator left at a yield is not a call that never returned: its consumer stopped.
        # sys.monitoring keeps it among the open calls (it sees yields, not resumptions).
        calls = list(self.done) + [c for c in self.open_calls.values() if c.full] + list(self.suspended.values())
        for target in self._by_location.values():
            calls.extend(target.light_tail)
        calls.sort(key=lambda c: c.id)
        suspended = {id(c) for c in self.suspended.values()}
        suspended.update(id(c) for c in self.open_calls.values() if c.yields)
        return [c.record(elided_open_ended, id(c) in suspended) for c in calls], self.dropped

    def call_counts(self) -> dict[str, int]:
        """FunctionInfo key -> the calls of it seen, recorded or not."""
        return {t.info.key: t.n_calls for t in self._by_location.values() if t.n_calls}

    def dropped_by_function(self) -> dict[str, int]:
        """FunctionInfo key -> calls of it past the bounds (the parts of `dropped`)."""
        return {t.info.key: t.dropped for t in self._by_location.values() if t.dropped}

    def used_functions(self) -> list[FunctionInfo]:
        keys = {c.target.info.key for c in self.done}
        keys.update(c.target.info.key for c in self.open_calls.values() if c.full)
        keys.update(c.target.info.key for c in self.suspended.values())
        keys.update(t.info.key for t in self._by_location.values() if t.light_tail)
        return [self.functions[k] for k in sorted(keys)]
