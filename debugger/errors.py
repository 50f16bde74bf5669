"""Re-export of the project's one user-facing error type (defined at the bottom layer, in tracer)."""

from tracer.errors import TracefixError

__all__ = ["TracefixError"]
