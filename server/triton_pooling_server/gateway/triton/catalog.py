"""Which pooling models Triton serves and the task each serves (discovery as the client does it:
`triton_pooling.discovery`), cached, re-read when stale or when a request names a model it lacks."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

from triton_pooling.discovery import ModelCatalog, ModelInfo, model_info, ready_model_names
from triton_pooling_contract.tasks import PoolingTask

from ..errors import ErrorKind, GatewayError, invalid
from .labels import labels_of
from .pool import TritonPool

MAX_TOKENS_PARAMETER = "max_tokens"  # the contract's config key (parameters.py lists it)


@dataclasses.dataclass(frozen=True)
class ServedModel:
    info: ModelInfo
    labels: tuple[str, ...] = ()  # classifier labels by class index; () → LABEL_<i>
    max_tokens: int | None = None  # the config's max_tokens parameter; None: the checkpoint's, unknown here
    parameters: tuple[tuple[str, str], ...] = ()  # the config's string parameters (pooling_type, prompts, dtype)
    version: str = "1"  # the loaded version (its folder holds tokenizer.json)

    def parameter(self, key: str, default: str | None = None) -> str | None:
        return dict(self.parameters).get(key, default)

    @property
    def prompt_names(self) -> tuple[str, ...]:
        """The sentence-transformers prompts the config names (its `prompts` parameter, JSON name -> text)."""
        return tuple(name for name, _ in self.prompts)

    @property
    def prompts(self) -> tuple[tuple[str, str], ...]:
        try:
            mapping = json.loads(self.parameter("prompts") or "{}")
        except ValueError:
            return ()
        return tuple(sorted((str(k), str(v)) for k, v in mapping.items())) if isinstance(mapping, dict) else ()

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def sparse(self) -> bool:
        """A sparse (SPLADE) embed model: one {token_id: weight} per text instead of a dense vector."""
        return self.info.sparse

    @property
    def task(self) -> PoolingTask:
        return self.info.task


class Catalog:
    def __init__(self, pool: TritonPool, max_age: float = 30.0, min_refresh_gap: float = 1.0):
        self._pool = pool
        self._max_age = max_age
        self._min_gap = min_refresh_gap
        self._models: dict[str, ServedModel] | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def models(self, refresh: bool = False) -> dict[str, ServedModel]:
        """The served pooling models by name; read again when older than max_age or when asked
        (at most once per min_refresh_gap, so unknown names cannot make it hammer Triton)."""
        async with self._lock:
            age = time.monotonic() - self._loaded_at
            if self._models is None or age > self._max_age or (refresh and age > self._min_gap):
                self._models = await self._load()
                self._loaded_at = time.monotonic()
            return self._models

    async def _load(self) -> dict[str, ServedModel]:
        rows = await self._pool.loaded_models()
        names = ready_model_names(rows)
        versions = {str(r.get("name")): str(r.get("version") or "1") for r in rows if r.get("name") in names}
        configs = await asyncio.gather(*(self._pool.model_config(n) for n in names))
        served = {}
        for config in configs:
            info = model_info(config)
            if info is not None:
                served[info.name] = ServedModel(info, labels_of(config), _max_tokens(config), _parameters(config),
                                                versions.get(info.name, "1"))
        return served

    async def resolve(self, name: str | None, endpoint: str, serves: tuple[PoolingTask, ...],
                      task: PoolingTask | None = None, sparse: bool | None = None) -> ServedModel:
        """The model a request asks for. `serves`: the tasks `endpoint` works with (the first is its
        default); `task`: one the request names explicitly (/pooling); `sparse`: True when `endpoint` needs a
        sparse (SPLADE) embed model, False when it answers dense vectors, None when either does."""
        models = await self.models()
        if name is not None and name not in models:
            models = await self.models(refresh=True)
        if name is None:
            if sparse is not None:
                return self._default_of_kind(models, endpoint, sparse)
            return self._default(models, endpoint, task or serves[0])
        model = self._named(models, name, endpoint, serves, task)
        if sparse is not None:
            _check_kind(models, model, endpoint, sparse)
        return model

    def _named(self, models: dict[str, ServedModel], name: str, endpoint: str, serves: tuple[PoolingTask, ...],
               task: PoolingTask | None) -> ServedModel:
        model = models.get(name)
        if model is None:
            raise GatewayError(ErrorKind.MODEL_NOT_FOUND,
                               f"The model {name!r} does not exist; {describe(models)}", "model")
        if task is not None and model.task is not task:
            raise invalid(f"Unsupported task: {task.value!r} Supported tasks: ({model.task.value!r},): model {name!r} "
                          f"serves {model.task.value!r} only (one task per model); {_who_serves(models, task)}", "task")
        if model.task not in serves:
            raise invalid(f"{endpoint} needs a model serving {_either(serves)}; model {name!r} serves "
                          f"{model.task.value!r}; {_who_serves(models, serves[0])}", "model")
        return model

    def _default(self, models: dict[str, ServedModel], endpoint: str, task: PoolingTask) -> ServedModel:
        catalog = ModelCatalog(m.info for m in models.values())
        names = catalog.served_tasks().get(task, [])
        if task.value in names or len(names) == 1:
            return models[task.value if task.value in names else names[0]]
        reason = f"several models serve {task.value!r} ({', '.join(names)})" if names else \
            f"no model serves {task.value!r}; {describe(models)}"
        raise invalid(f"{endpoint}: give model; {reason}", "model")

    def _default_of_kind(self, models: dict[str, ServedModel], endpoint: str, sparse: bool) -> ServedModel:
        """The embed model an endpoint of one kind defaults to: the one sparse model, or the dense default."""
        if sparse:
            names = _sparse_names(models)
            if len(names) == 1:
                return models[names[0]]
            if not names:
                raise backend(f"no sparse (SPLADE) embed model is served: {endpoint} needs an embed model with "
                              f"pooling_type SPLADE (outputs SPARSE_INDICES / SPARSE_VALUES); {describe(models)}")
            raise invalid(f"{endpoint}: give model; several sparse (SPLADE) models are served ({', '.join(names)})",
                          "model")
        dense = {n: m for n, m in models.items() if not m.sparse}
        if not any(m.task is PoolingTask.EMBED for m in dense.values()) and _sparse_names(models):
            raise _dense_only(endpoint, _sparse_names(models)[0], "no dense embed model is served and ")
        return self._default(dense, endpoint, PoolingTask.EMBED)


def backend(message: str, param: str | None = "model") -> GatewayError:
    """A model of the wrong kind for the route: 400 here, TEI's Backend (424) on TEI's routes, as TEI answers it."""
    error = invalid(message, param)
    error.tei_type = "Backend"
    return error


def _check_kind(models: dict[str, ServedModel], model: ServedModel, endpoint: str, sparse: bool) -> None:
    if sparse and not model.sparse:
        names = _sparse_names(models)
        found = f"sparse models here: {', '.join(names)}" if names else "this server serves no sparse (SPLADE) model"
        raise backend(f"Model {model.name!r} is not an embedding model with SPLADE pooling: {endpoint} needs a sparse "
                      f"(SPLADE) embed model; {found}")
    if not sparse and model.sparse:
        raise _dense_only(endpoint, model.name, "")


def _dense_only(endpoint: str, name: str, prefix: str) -> GatewayError:
    return backend(f"{endpoint} answers dense vectors, and {prefix}model {name!r} is sparse (a SPLADE embed model: one "
                   "{token_id: weight} per text); POST /embed_sparse (TEI) or POST /pooling (vLLM) serves it")


def _sparse_names(models: dict[str, ServedModel]) -> list[str]:
    return sorted(n for n, m in models.items() if m.sparse)


def _max_tokens(config) -> int | None:
    value = (config.get("parameters") or {}).get(MAX_TOKENS_PARAMETER)
    if isinstance(value, dict):
        value = value.get("string_value")
    try:
        return int(value) if value is not None and int(value) > 0 else None
    except (TypeError, ValueError):
        return None  # such a model refuses to load: nothing to bound


def _parameters(config) -> tuple[tuple[str, str], ...]:
    found = []
    for key, value in (config.get("parameters") or {}).items():
        if isinstance(value, dict):
            value = value.get("string_value")
        if isinstance(value, str):
            found.append((str(key), value))
    return tuple(sorted(found))


def describe(models: dict[str, ServedModel]) -> str:
    if not models:
        return "Triton serves no pooling models (yet)"
    return "served models: " + ", ".join(f"{m.name} ({m.task.value})" for m in sorted(models.values(),
                                                                                        key=lambda m: m.name))


def _who_serves(models: dict[str, ServedModel], task: PoolingTask) -> str:
    names = sorted(m.name for m in models.values() if m.task is task)
    return f"models serving {task.value!r}: {', '.join(names)}" if names else \
        f"no model here serves {task.value!r}; {describe(models)}"


def _either(tasks: tuple[PoolingTask, ...]) -> str:
    return " or ".join(repr(t.value) for t in tasks)
