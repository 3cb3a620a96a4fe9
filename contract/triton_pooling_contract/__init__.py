"""The vocabulary every part of triton-pooling shares: task names, tensor names, config keys and
their allowed values. Standard library only, so the thin client, the launcher, the builder and the
in-stub backend can all import it without pulling each other in."""

from .tasks import PoolingTask, PoolingType, parse_task

__all__ = ["PoolingTask", "PoolingType", "parse_task"]
