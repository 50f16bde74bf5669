"""The `sys.monitoring` back end (Python 3.12+).

PY_START is a global event, answered with DISABLE for every code object that is not a
target, so a non-target function costs one callback in the whole run. Target code
objects get LINE and PY_RETURN as local events (PY_UNWIND can only be global). A line is DISABLEd once its
block holds `max_visits` recorded visits (or when it runs in a light call), which is what
keeps a hot loop near full speed; `restart_events()` turns the lines back on when a new
fully recorded call starts or control returns into one. The price: visits after the
bound are not counted, so elided ranges are open-ended. A generator stays one open call
across its yields (PY_YIELD, a local event, tells the recorder; resumptions need no event:
its frame is the same).

Tool id 4: ids 0-2 are the debugger, coverage and profiler (pdb, pytest-cov), 5 is the
optimizer; tracefix must coexist with them.
"""

from __future__ import annotations

import sys

from tracefix.tracer.recorder import Recorder
from tracefix.tracer.types import RECORDER_TOOL_ID



class MonitoringBackend:
    counts_elided = False

    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder
        self.mon = sys.monitoring
        self._instrumented: dict[int, object] = {}  # id(code) -> code, to clear its events at stop
        self._disabled_some = False
        # Code objects whose lines a light call disabled: a fully recorded call of the same
        # code further up the stack (recursion) needs them back when control returns to it.
        self._light_disabled: set[int] = set()

    def start(self) -> None:
        mon = self.mon
        if mon.get_tool(RECORDER_TOOL_ID) is not None:
            raise RuntimeError(f"sys.monitoring tool id {RECORDER_TOOL_ID} is taken by {mon.get_tool(RECORDER_TOOL_ID)}")
        mon.use_tool_id(RECORDER_TOOL_ID, "tracefix")
        ev = mon.events
        mon.register_callback(RECORDER_TOOL_ID, ev.PY_START, self._on_start)
        mon.register_callback(RECORDER_TOOL_ID, ev.LINE, self._on_line)
        mon.register_callback(RECORDER_TOOL_ID, ev.PY_RETURN, self._on_return)
        mon.register_callback(RECORDER_TOOL_ID, ev.PY_YIELD, self._on_yield)
        mon.register_callback(RECORDER_TOOL_ID, ev.PY_UNWIND, self._on_unwind)
        # PY_UNWIND can only be a global event; it fires only while an exception propagates.
        mon.set_events(RECORDER_TOOL_ID, ev.PY_START | ev.PY_UNWIND)
        # DISABLE outlives set_events(0) and free_tool_id (3.12, 3.13): without this, lines a
        # previous recording turned off, and starts of code that was no target then, stay off.
        mon.restart_events()

    def stop(self) -> None:
        mon = self.mon
        mon.set_events(RECORDER_TOOL_ID, 0)
        # Local events also outlive free_tool_id: left on, recorded code keeps paying for them.
        for code in self._instrumented.values():
            mon.set_local_events(RECORDER_TOOL_ID, code, 0)
        self._instrumented.clear()
        for event in (mon.events.PY_START, mon.events.LINE, mon.events.PY_RETURN, mon.events.PY_YIELD,
                      mon.events.PY_UNWIND):
            mon.register_callback(RECORDER_TOOL_ID, event, None)
        mon.free_tool_id(RECORDER_TOOL_ID)

    def _on_start(self, code, offset):
        target = self.rec.target_of(code)
        if target is None:
            return self.mon.DISABLE
        frame = sys._getframe(1)
        call = self.rec.call_started(target, frame)
        if call is None:
            return None
        if id(code) not in self._instrumented:
            self._instrumented[id(code)] = code
            ev = self.mon.events
            self.mon.set_local_events(RECORDER_TOOL_ID, code, ev.LINE | ev.PY_RETURN | ev.PY_YIELD)
        elif call.full:
            self._restart()
        return None

    def _restart(self) -> None:
        if self._disabled_some or self._light_disabled:
            self._disabled_some = False
            self._light_disabled.clear()
            self.mon.restart_events()

    def _on_line(self, code, line):
        frame = sys._getframe(1)
        call = self.rec.open_calls.get(id(frame))
        if call is None or not call.full:
            self._light_disabled.add(id(code))
            return self.mon.DISABLE
        if call.line(line, frame):
            return None
        self._disabled_some = True
        return self.mon.DISABLE

    def _on_return(self, code, offset, value):
        frame = sys._getframe(1)
        call = self.rec.open_calls.get(id(frame))
        if call is None:
            return None
        self.rec.call_ended(frame, value=value)
        self._resume_caller(call, frame)
        return None

    def _on_yield(self, code, offset, value):
        frame = sys._getframe(1)
        call = self.rec.open_calls.get(id(frame))
        if call is not None:
            call.suspend(frame, value)  # it stays open: a resumption continues on the same frame
        return None

    def _on_unwind(self, code, offset, exc):
        frame = sys._getframe(1)
        call = self.rec.open_calls.get(id(frame))
        if call is None:
            return None
        self.rec.call_ended(frame, exc=exc, line=frame.f_lineno)
        self._resume_caller(call, frame)
        return None

    def _resume_caller(self, call, frame) -> None:
        # A light or full call may have disabled lines its fully recorded caller still needs.
        back = frame.f_back
        if back is None or id(back.f_code) not in self._light_disabled:
            return
        caller = self.rec.open_calls.get(id(back))
        if caller is not None and caller.full:
            self._restart()
