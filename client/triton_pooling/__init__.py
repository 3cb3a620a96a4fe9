"""triton-pooling: vLLM's pooling API on NVIDIA Triton Inference Server."""

from .tasks import PoolingTask, PoolingType, parse_task

__all__ = ["PoolingTask", "PoolingType", "parse_task"]
