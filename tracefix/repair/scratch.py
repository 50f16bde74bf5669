"""Scratch copies live in `tracer.scratch` (every test run uses one); repair imports them from here too."""

from tracefix.tracer.scratch import MAX_BYTES, MAX_FILES, scratch_copy

__all__ = ["MAX_BYTES", "MAX_FILES", "scratch_copy"]
