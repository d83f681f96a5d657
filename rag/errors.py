"""The one error type users see: its message names the bad value and the fix."""


class RagError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits 1."""
