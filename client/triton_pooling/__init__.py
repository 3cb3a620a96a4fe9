"""triton-pooling: vLLM's pooling API on NVIDIA Triton Inference Server.

The client classes load lazily, so `import triton_pooling_contract.tasks` (used by the Triton backend)
pulls in neither numpy nor tritonclient.
"""

from importlib import import_module

from triton_pooling_contract.tasks import PoolingTask, PoolingType, parse_task

# Public name → module that defines it (imported on first access).
_LAZY = {
    "PoolingClient": "client",
    "AsyncPoolingClient": "async_client",
    "PoolingOutput": "outputs",
    "PoolingRequestOutput": "outputs",
    "SparseEmbeddingOutput": "outputs",
    "ScoringOutput": "outputs",
    "ScoringRequestOutput": "outputs",
    "ModelInfo": "discovery",
    "PoolingClientError": "errors",
    "InvalidRequestError": "errors",
    "UnknownTaskError": "errors",
    "TaskNotServedError": "errors",
    "ModelNotFoundError": "errors",
    "ServerUnavailableError": "errors",
    "PoolingTimeoutError": "errors",
    "InternalServerError": "errors",
}

__all__ = ["PoolingTask", "PoolingType", "parse_task", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'triton_pooling' has no attribute {name!r}")
