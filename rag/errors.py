"""The one error type users see: its message names the bad value and the fix."""


class RagError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits 1."""


class NotFound(RagError):
    """An unknown collection or document (HTTP 404 in the API)."""


class IndexBusy(RagError):
    """The index is missing or another process is building it: try again later (HTTP 503 in the API)."""


def why(e: BaseException, width: int = 120) -> str:
    """`Type: first line of the message` (or just the type), short enough for a one-line error."""
    text = str(e).splitlines()[0][:width] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
