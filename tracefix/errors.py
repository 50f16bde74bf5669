"""The two kinds of exceptions tracefix raises, at the bottom of the import line.

- `UserError`: the user's input or environment is wrong (a missing path, a test id that
  matches nothing, an unreachable model). The CLI prints its message on one line and exits 2.
- `InternalSignal`: something the tool tried did not work out (a malformed model answer, a
  rejected candidate, an edit that does not apply). The code that tried catches it and moves
  on; one that escapes is reported as tracefix's failure to repair, never as the user's fault.

A broad `except UserError` therefore never swallows a bad model answer, and the reverse.
"""


class UserError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


class InternalSignal(Exception):
    """An attempt of the tool's own that failed; the caller decides what to try next."""
