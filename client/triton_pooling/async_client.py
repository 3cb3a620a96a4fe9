"""AsyncPoolingClient: the asyncio twin of PoolingClient, over tritonclient's aio clients."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, TypeVar

from .batching import EncodeOptions, EncodePlan
from .client_base import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, ClientBase
from .deprecation import warn_reward_deprecated
from .discovery import ModelCatalog, ModelInfo
from .errors import PoolingClientError
from .outputs import PoolingRequestOutput, ScoringRequestOutput
from .progress import progress_bar
from .retry import DEFAULT_BACKOFF, DEFAULT_MAX_BACKOFF, DEFAULT_RETRIES, acall_with_retry
from .scoring import score_plan
from triton_pooling_contract.tasks import PoolingTask
from .transport import Wire, response_arrays

T = TypeVar("T")


class AsyncPoolingClient(ClientBase):
    """Same calls and arguments as PoolingClient, awaited. Use `async with` or `await close()`."""

    def __init__(self, url: str | None = None, protocol: str = "grpc", *, timeout: float | None = DEFAULT_TIMEOUT,
                 retries: int = DEFAULT_RETRIES, backoff: float = DEFAULT_BACKOFF, max_backoff: float = DEFAULT_MAX_BACKOFF,
                 max_concurrency: int = DEFAULT_CONCURRENCY, max_request_size: int | None = None):
        super().__init__(url, protocol, timeout=timeout, retries=retries, backoff=backoff, max_backoff=max_backoff,
                         max_concurrency=max_concurrency, max_request_size=max_request_size)
        self._wire = Wire(self.protocol, aio=True)
        self._triton = None  # created inside the running loop (aiohttp / grpc.aio bind to it)
        self._catalog_lock: asyncio.Lock | None = None

    async def close(self) -> None:
        client, self._triton = self._triton, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> "AsyncPoolingClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def catalog(self, refresh: bool = False) -> ModelCatalog:
        if self._catalog_lock is None:
            self._catalog_lock = asyncio.Lock()
        async with self._catalog_lock:  # concurrent first calls read the index once
            if self._catalog is None or refresh:
                client = self._client()
                index = await self._call(lambda: self._wire.loaded_models(client, self.timeout), "listing the loaded models")
                configs = [await self._call(lambda n=n: self._wire.model_config(client, n, self.timeout),
                                            f"reading {n!r}'s config") for n in self._model_names(index)]
                self._catalog = self._catalog_from(configs)
            return self._catalog

    async def models(self, refresh: bool = False) -> dict[str, ModelInfo]:
        return dict((await self.catalog(refresh)).models)

    async def refresh(self) -> ModelCatalog:
        return await self.catalog(refresh=True)

    async def encode(self, prompts: Any, task: str | PoolingTask | None = None, model: str | None = None, *,
                     dimensions: int | None = None, use_activation: bool | None = None,
                     truncate_prompt_tokens: int | None = None, prompt_name: str | None = None,
                     use_tqdm: Any = None) -> list[PoolingRequestOutput]:
        options = EncodeOptions(dimensions, use_activation, truncate_prompt_tokens, prompt_name)
        return await self._encode(prompts, task, model, options, use_tqdm)

    async def embed(self, prompts: Any, model: str | None = None, *, dimensions: int | None = None,
                    use_activation: bool | None = None, truncate_prompt_tokens: int | None = None,
                    prompt_name: str | None = None, use_tqdm: Any = None) -> list[PoolingRequestOutput]:
        options = EncodeOptions(dimensions, use_activation, truncate_prompt_tokens, prompt_name)
        return await self._encode(prompts, PoolingTask.EMBED, model, options, use_tqdm, kind="dense")

    async def embed_sparse(self, texts: Any, model: str | None = None, *, prompt_name: str | None = None,
                           truncate_prompt_tokens: int | None = None, use_activation: bool | None = None,
                           return_tokens: bool = False, use_tqdm: Any = None) -> list[dict]:
        """PoolingClient.embed_sparse, awaited."""
        options = EncodeOptions(None, use_activation, truncate_prompt_tokens, prompt_name)
        outputs = await self._encode(texts, PoolingTask.EMBED, model, options, use_tqdm, kind="sparse",
                                     return_tokens=return_tokens)
        return [o.outputs.data for o in outputs]

    async def classify(self, prompts: Any, model: str | None = None, **options) -> list[PoolingRequestOutput]:
        return await self.encode(prompts, PoolingTask.SEQ_CLASSIFY, model, **options)

    async def score(self, queries: Any, documents: Any, *, task: str | PoolingTask | None = None,
                    model: str | None = None, use_activation: bool | None = None,
                    truncate_prompt_tokens: int | None = None, use_tqdm: Any = None) -> list[ScoringRequestOutput]:
        plan = await self._with_catalog(
            lambda catalog: score_plan(self._score_model(catalog, task, model), queries, documents))
        outputs = [o for prompts, role in plan.groups for o in await self.encode(
            prompts, model=plan.model.name, use_activation=use_activation, truncate_prompt_tokens=truncate_prompt_tokens,
            prompt_name=role, use_tqdm=use_tqdm)]
        return plan.finish(outputs)

    async def reward(self, prompts: Any, model: str | None = None, **options) -> list[PoolingRequestOutput]:
        """Deprecated: encode(task="token_classify"), unchanged."""
        warn_reward_deprecated(stacklevel=3)
        return await self.encode(prompts, PoolingTask.TOKEN_CLASSIFY, model, **options)

    def _client(self):
        if self._triton is None:
            self._triton = self._wire.new_client(self.url, self.timeout, self.max_concurrency)
        return self._triton

    async def _call(self, call: Callable[[], Awaitable[T]], context: str) -> T:
        # One deadline for both protocols (the aio HTTP client has no per-call one).
        return await acall_with_retry(lambda: asyncio.wait_for(call(), self.timeout), self.retry, context)

    async def _encode(self, prompts: Any, task, model: str | None, options: EncodeOptions, use_tqdm: Any,
                      kind: str | None = None, return_tokens: bool = False) -> list[PoolingRequestOutput]:
        plan = await self._with_catalog(
            lambda catalog: self._plan(catalog, prompts, task, model, options, kind, return_tokens))
        return plan.assemble(await self._send_all(plan, use_tqdm))

    async def _with_catalog(self, use: Callable[[ModelCatalog], T]) -> T:
        cached = self._catalog is not None
        try:
            return use(await self.catalog())
        except PoolingClientError as e:
            if not (cached and self._worth_refreshing(e)):
                raise
        return use(await self.catalog(refresh=True))

    async def _send_all(self, plan: EncodePlan, use_tqdm: Any) -> list[dict]:
        if not plan.requests:
            return []
        names = plan.outputs
        bar = progress_bar(use_tqdm, len(plan.prompts), f"encode {plan.model.name}")
        limit = asyncio.Semaphore(self.max_concurrency)

        async def send(request) -> dict:
            async with limit:
                result = await self._call(
                    lambda: self._wire.infer(self._client(), plan.model.name, request.tensors, self.timeout, names),
                    f"model {plan.model.name!r}")
            bar.update(len(request.indices))
            return response_arrays(result, names)

        tasks = [asyncio.ensure_future(send(r)) for r in plan.requests]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            raise
        finally:
            bar.close()
