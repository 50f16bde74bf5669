"""The one error type a user can cause. The CLI prints its message on one line and exits 2."""


class TracefixError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""
