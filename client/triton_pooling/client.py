"""PoolingClient: vLLM's pooling calls (encode / embed / classify / score / reward) against Triton."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from .batching import EncodeOptions, EncodePlan
from .client_base import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, ClientBase
from .deprecation import warn_reward_deprecated
from .discovery import ModelCatalog, ModelInfo
from .errors import PoolingClientError
from .outputs import PoolingRequestOutput, ScoringRequestOutput
from .progress import progress_bar
from .retry import DEFAULT_BACKOFF, DEFAULT_MAX_BACKOFF, DEFAULT_RETRIES, call_with_retry
from .scoring import score_plan
from triton_pooling_contract.tasks import PoolingTask
from .transport import Wire, response_arrays

T = TypeVar("T")


class PoolingClient(ClientBase):
    """A blocking client. `url` is 'host:port' (default localhost:8001 for gRPC, :8000 for HTTP).

    `timeout` is per request (seconds, None for none); `retries` / `backoff` / `max_backoff` apply
    only while the server is unavailable; `max_concurrency` bounds the requests in flight per call;
    `max_request_size` caps texts per request below the model's max_batch_size.
    """

    def __init__(self, url: str | None = None, protocol: str = "grpc", *, timeout: float | None = DEFAULT_TIMEOUT,
                 retries: int = DEFAULT_RETRIES, backoff: float = DEFAULT_BACKOFF, max_backoff: float = DEFAULT_MAX_BACKOFF,
                 max_concurrency: int = DEFAULT_CONCURRENCY, max_request_size: int | None = None):
        super().__init__(url, protocol, timeout=timeout, retries=retries, backoff=backoff, max_backoff=max_backoff,
                         max_concurrency=max_concurrency, max_request_size=max_request_size)
        self._wire = Wire(self.protocol)
        # tritonclient's HTTP client is not thread-safe: each worker thread gets its own.
        self._local = threading.local()
        self._clients: list = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            pool, clients, self._pool, self._clients = self._pool, self._clients, None, []
        if pool is not None:
            pool.shutdown(wait=True)
        for client in clients:
            client.close()

    def __enter__(self) -> "PoolingClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- discovery -------------------------------------------------------------------------------
    def catalog(self, refresh: bool = False) -> ModelCatalog:
        """The server's pooling models and their tasks, read once (or again with refresh=True)."""
        if self._catalog is None or refresh:
            client = self._client()
            index = self._call(lambda: self._wire.loaded_models(client, self.timeout), "listing the loaded models")
            configs = [self._call(lambda n=n: self._wire.model_config(client, n, self.timeout), f"reading {n!r}'s config")
                       for n in self._model_names(index)]
            self._catalog = self._catalog_from(configs)
        return self._catalog

    def models(self, refresh: bool = False) -> dict[str, ModelInfo]:
        return dict(self.catalog(refresh).models)

    def refresh(self) -> ModelCatalog:
        return self.catalog(refresh=True)

    # -- pooling calls ---------------------------------------------------------------------------
    def encode(self, prompts: Any, task: str | PoolingTask | None = None, model: str | None = None, *,
               dimensions: int | None = None, use_activation: bool | None = None,
               truncate_prompt_tokens: int | None = None, prompt_name: str | None = None,
               use_tqdm: Any = None) -> list[PoolingRequestOutput]:
        """vLLM's LLM.encode(prompts, pooling_task=task): one output per prompt, in input order. A sparse model's
        outputs are SparseEmbeddingOutput (`.data` a {token_id: weight} dict)."""
        options = EncodeOptions(dimensions, use_activation, truncate_prompt_tokens, prompt_name)
        return self._encode(prompts, task, model, options, use_tqdm)

    def embed(self, prompts: Any, model: str | None = None, *, dimensions: int | None = None,
              use_activation: bool | None = None, truncate_prompt_tokens: int | None = None,
              prompt_name: str | None = None, use_tqdm: Any = None) -> list[PoolingRequestOutput]:
        """encode(task="embed") on a dense model (a sparse one is refused, naming embed_sparse);
        `out.outputs.embedding` as in vLLM."""
        options = EncodeOptions(dimensions, use_activation, truncate_prompt_tokens, prompt_name)
        return self._encode(prompts, PoolingTask.EMBED, model, options, use_tqdm, kind="dense")

    def embed_sparse(self, texts: Any, model: str | None = None, *, prompt_name: str | None = None,
                     truncate_prompt_tokens: int | None = None, use_activation: bool | None = None,
                     return_tokens: bool = False, use_tqdm: Any = None) -> list[dict]:
        """One {token_id: weight} per text from a sparse (SPLADE) embed model ({token: weight} with return_tokens);
        without `model`, the server's one sparse model. use_activation=True L2-normalizes the vectors."""
        options = EncodeOptions(None, use_activation, truncate_prompt_tokens, prompt_name)
        outputs = self._encode(texts, PoolingTask.EMBED, model, options, use_tqdm, kind="sparse",
                               return_tokens=return_tokens)
        return [o.outputs.data for o in outputs]

    def classify(self, prompts: Any, model: str | None = None, **options) -> list[PoolingRequestOutput]:
        """encode(task="seq_classify"); `out.outputs.probs` as in vLLM."""
        return self.encode(prompts, PoolingTask.SEQ_CLASSIFY, model, **options)

    def score(self, queries: Any, documents: Any, *, task: str | PoolingTask | None = None, model: str | None = None,
              use_activation: bool | None = None, truncate_prompt_tokens: int | None = None,
              use_tqdm: Any = None) -> list[ScoringRequestOutput]:
        """One score per (query, document) pair: 1 query with N documents, or N with N.

        The model's task decides how (cosine for embed, cross-encoder for a one-label seq_classify,
        MaxSim for token_embed); without `model` the task defaults to embed."""
        plan = self._with_catalog(lambda catalog: score_plan(self._score_model(catalog, task, model), queries, documents))
        outputs = [o for prompts, role in plan.groups for o in self.encode(
            prompts, model=plan.model.name, use_activation=use_activation, truncate_prompt_tokens=truncate_prompt_tokens,
            prompt_name=role, use_tqdm=use_tqdm)]
        return plan.finish(outputs)

    def reward(self, prompts: Any, model: str | None = None, **options) -> list[PoolingRequestOutput]:
        """Deprecated: encode(task="token_classify"), unchanged (as vLLM's LLM.reward)."""
        warn_reward_deprecated(stacklevel=3)
        return self.encode(prompts, PoolingTask.TOKEN_CLASSIFY, model, **options)

    # -- internals -------------------------------------------------------------------------------
    def _client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._wire.new_client(self.url, self.timeout)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _call(self, call: Callable[[], T], context: str) -> T:
        return call_with_retry(call, self.retry, context)

    def _encode(self, prompts: Any, task, model: str | None, options: EncodeOptions, use_tqdm: Any,
                kind: str | None = None, return_tokens: bool = False) -> list[PoolingRequestOutput]:
        plan = self._with_catalog(
            lambda catalog: self._plan(catalog, prompts, task, model, options, kind, return_tokens))
        return plan.assemble(self._send_all(plan, use_tqdm))

    def _with_catalog(self, use: Callable[[ModelCatalog], T]) -> T:
        """use(catalog); if a model or task is unknown to a catalog read earlier, re-read it once."""
        cached = self._catalog is not None
        try:
            return use(self.catalog())
        except PoolingClientError as e:
            if not (cached and self._worth_refreshing(e)):
                raise
        return use(self.catalog(refresh=True))

    def _send_all(self, plan: EncodePlan, use_tqdm: Any) -> list[dict]:
        if not plan.requests:
            return []
        names = plan.outputs
        bar = progress_bar(use_tqdm, len(plan.prompts), f"encode {plan.model.name}")

        def send(request) -> dict:
            result = self._call(lambda: self._wire.infer(self._client(), plan.model.name, request.tensors, self.timeout,
                                                         names), f"model {plan.model.name!r}")
            bar.update(len(request.indices))
            return response_arrays(result, names)

        try:
            if len(plan.requests) == 1 or self.max_concurrency == 1:
                return [send(r) for r in plan.requests]
            futures = [self._executor().submit(send, r) for r in plan.requests]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        finally:
            bar.close()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="triton-pooling")
            return self._pool
