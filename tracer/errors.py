"""The one error type a user can cause. The CLI prints its message on one line and exits 2.

It lives in `tracer` because that is the bottom of the import line; `debugger.errors`
re-exports it.
"""


class TracefixError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""
