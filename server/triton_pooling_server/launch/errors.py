"""The one error the launcher raises: `serve` prints its message and exits non-zero."""


class ServerError(RuntimeError):
    """tritonserver could not be found, started, kept healthy, or did not become ready."""
