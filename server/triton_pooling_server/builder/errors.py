"""The one error a build raises: the CLI prints its message and exits non-zero."""


class BuildError(ValueError):
    """A checkpoint, option or target folder that cannot make a model; the message says which and why."""


def listing(values) -> str:
    return ", ".join(repr(str(v)) for v in values)
