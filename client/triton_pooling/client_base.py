"""What the sync and async clients share: settings, the model catalog cache, planning, resolution."""

from __future__ import annotations

from typing import Any, Iterable

from .batching import EncodeOptions, EncodePlan, plan_requests
from .discovery import ModelCatalog, ModelInfo, model_info, ready_model_names
from .errors import InvalidRequestError, ModelNotFoundError, TaskNotServedError
from .prompts import normalize_prompts
from .retry import RetryPolicy
from triton_pooling_contract.tasks import PoolingTask
from .transport import DEFAULT_PORTS, check_protocol, config_dict, index_rows

DEFAULT_TIMEOUT = 120.0  # seconds per request
DEFAULT_CONCURRENCY = 4  # requests in flight per encode call


class ClientBase:
    def __init__(self, url: str | None, protocol: str, *, timeout: float | None, retries: int,
                 backoff: float, max_backoff: float, max_concurrency: int, max_request_size: int | None):
        self.protocol = check_protocol(protocol)
        self.url = url or f"localhost:{DEFAULT_PORTS[self.protocol]}"
        if timeout is not None and timeout <= 0:
            raise InvalidRequestError(f"timeout must be > 0 seconds or None; got {timeout!r}")
        if max_concurrency < 1:
            raise InvalidRequestError(f"max_concurrency must be >= 1; got {max_concurrency!r}")
        self.timeout = timeout
        self.retry = RetryPolicy(retries, backoff, max_backoff)
        self.max_concurrency = max_concurrency
        self.max_request_size = max_request_size
        self._catalog: ModelCatalog | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, protocol={self.protocol!r})"

    @staticmethod
    def _model_names(index: Any) -> list[str]:
        return ready_model_names(index_rows(index))

    @staticmethod
    def _catalog_from(configs: Iterable[Any]) -> ModelCatalog:
        infos = (model_info(config_dict(raw)) for raw in configs)
        return ModelCatalog(i for i in infos if i is not None)

    def _plan(self, catalog: ModelCatalog, prompts: Any, task, model: str | None, options: EncodeOptions,
              kind: str | None = None, return_tokens: bool = False) -> EncodePlan:
        """`kind`: "dense" refuses a sparse model (embed()), "sparse" picks one (embed_sparse()), None takes any."""
        if kind == "sparse":
            info = catalog.sparse_model(model)
        elif kind == "dense":
            info = catalog.dense_model(task, model)
        else:
            info = catalog.resolve(task, model)
        return plan_requests(normalize_prompts(prompts), info, options, self.max_request_size, return_tokens)

    @staticmethod
    def _worth_refreshing(error: Exception) -> bool:
        """A model or task we do not know may have been loaded since the catalog was read."""
        return isinstance(error, (ModelNotFoundError, TaskNotServedError))

    @staticmethod
    def _score_model(catalog: ModelCatalog, task, model: str | None) -> ModelInfo:
        if model is not None and task is None:
            return catalog.resolve(None, model)  # the model's own task decides how pairs are scored
        return catalog.resolve(task or PoolingTask.EMBED, model)  # default: bi-encoder cosine
