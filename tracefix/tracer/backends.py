"""The recorder back end for this interpreter, chosen here and nowhere else (like coverage.py's
collector choosing its tracer): `sys.monitoring` on 3.12+, `sys.settrace` before."""

from __future__ import annotations

import gc
import os
import sys

from tracefix.tracer.monitoring import MonitoringBackend
from tracefix.tracer.recorder import Recorder
from tracefix.tracer.settrace import SettraceBackend
from tracefix.tracer.types import RecorderBackend


def backend_name(has_monitoring: bool | None = None) -> str:
    """The back end used on an interpreter (this one unless told whether it has
    `sys.monitoring`): chosen here and nowhere else."""
    forced = os.environ.get("TRACEFIX_BACKEND")
    if forced in ("settrace", "monitoring"):
        return forced
    if has_monitoring is None:
        has_monitoring = hasattr(sys, "monitoring")
    return "monitoring" if has_monitoring else "settrace"


class Recording:
    """A started recording: `stop()` ends it. GC is paused meanwhile (see below)."""

    def __init__(self, recorder: Recorder, backend: RecorderBackend) -> None:
        self.recorder = recorder
        self.backend = backend
        # Snapshots are many small dicts of strings; letting the cyclic GC scan them while
        # recording doubles their cost. They hold no cycles, so pause it.
        self._gc_was_enabled = gc.isenabled()
        self._running = True
        gc.disable()
        backend.start()

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self.backend.stop()
        if self._gc_was_enabled:
            gc.enable()

    @property
    def running(self) -> bool:
        return self._running

    @property
    def open_ended(self) -> bool:
        return self.backend.counts_elided is False


def start_recording(recorder: Recorder, backend: str | None = None) -> Recording:
    name = backend or backend_name()
    chosen = MonitoringBackend if name == "monitoring" else SettraceBackend
    return Recording(recorder, chosen(recorder))
