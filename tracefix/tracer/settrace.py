"""The `sys.settrace` back end (Python 3.10 and 3.11).

The global trace function only looks at "call" events and answers None for code that is
not a target, so line events are switched on only inside recorded functions. Light calls
(beyond the per-function bound) turn their line events off with `f_trace_lines = False`.

A generator's frame reports "return" at each yield and "call" at each resumption; both are
told apart from a real return and a first start by the instruction the frame stands at, so
the recorder keeps one call per generator.
"""

from __future__ import annotations

import dis
import inspect
import sys
import threading

from tracefix.tracer.recorder import Call, Recorder

_SUSPENDING = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
_YIELD_OPS = frozenset(dis.opmap[name] for name in ("YIELD_VALUE", "YIELD_FROM", "SEND") if name in dis.opmap)
_RESUME = dis.opmap.get("RESUME")  # 3.11+: its argument is 0 at a first start, > 0 after a yield


def _at_yield(frame) -> bool:
    """The frame stands at a yield: a "return" there suspends it, a "call" there is a throw()
    or close() into it."""
    lasti = frame.f_lasti
    if lasti < 0:
        return False
    code = frame.f_code.co_code
    # 3.13 reports a yield's "return" at the RESUME after the YIELD_VALUE (argument > 0).
    return code[lasti] in _YIELD_OPS or (code[lasti] == _RESUME and code[lasti + 1] != 0)


def _resuming(frame) -> bool:
    """A "call" event of a generator frame that had yielded (3.10: any start past the first
    instruction; 3.11+: a RESUME whose argument is not 0)."""
    lasti = frame.f_lasti
    if lasti < 0:
        return False
    code = frame.f_code.co_code
    if code[lasti] == _RESUME:
        return code[lasti + 1] != 0
    return _RESUME is None or code[lasti] in _YIELD_OPS


class SettraceBackend:
    counts_elided = True  # every visit is seen, so elided ranges have exact ends

    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder
        self._previous = None
        self._on_call = _global_tracer(recorder)

    def start(self) -> None:
        self._previous = sys.gettrace()
        sys.settrace(self._on_call)
        threading.settrace(self._on_call)

    def stop(self) -> None:
        sys.settrace(self._previous)
        threading.settrace(self._previous)  # type: ignore[arg-type]


def _global_tracer(rec: Recorder):
    """The global trace function: it runs at every Python call of the process, recorded or
    not, so the common answer (None: not a target, seen before) is one set lookup in a
    closure. A method calling `rec.target_of` made this hook ~1.7x the cost of a bare one on
    call-heavy code (sqlparse's lexer), and the hook is most of a short test's tracing cost."""
    not_targets = rec.not_targets
    target_of = rec.target_of

    def on_call(frame, event, arg):
        code = frame.f_code
        if id(code) in not_targets or event != "call":
            return None
        target = target_of(code)
        if target is None:
            return None
        call = None
        if code.co_flags & _SUSPENDING and _resuming(frame):
            call = rec.call_resumed(target, frame)
        if call is None:
            call = rec.call_started(target, frame)
        if call is None:
            return None
        if not call.full:
            frame.f_trace_lines = False
        return _local_tracer(rec, call)

    return on_call


def _local_tracer(rec: Recorder, call: Call):
    """The trace function of one recorded frame.

    A closure, not a bound method: it runs for every line of a recorded call, and a bound
    method would be created anew for each event (a trace function returns itself) and look
    up `self.call` each time; this is ~18% of the recorder's own cost per line on 3.11.
    """
    line = call.line

    def trace(frame, event, arg):
        if event == "line":
            line(frame.f_lineno, frame)
        elif event == "exception":
            # Remember it: a "return" event right after means the exception escaped.
            call.pending_exc = (arg[1], frame.f_lineno)
        elif event == "return":
            # On 3.10/3.11 an escaping exception returns None; a caught one clears
            # pending_exc at the next line event (full calls) or returns a value.
            pending = call.pending_exc
            if pending is not None and arg is None:
                rec.call_ended(frame, exc=pending[0], line=pending[1])
            elif frame.f_code.co_flags & _SUSPENDING and _at_yield(frame):
                rec.call_suspended(frame, arg)
            else:
                rec.call_ended(frame, value=arg)
        return trace

    return trace
