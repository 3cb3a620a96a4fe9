"""Which pooling models a server has, the task each serves, and which model answers a task.

Pure: built from the repository index and each model's config (already fetched as dicts), so the
sync and async clients share it and unit tests need no server.
"""

from __future__ import annotations

import json

import dataclasses
from typing import Iterable, Mapping

from .errors import InvalidRequestError, ModelNotFoundError, TaskNotServedError, UnknownTaskError
from .sparse import POOLING_TYPE_PARAMETER, is_sparse_config
from triton_pooling_contract.tasks import TASK_PARAMETER, UnknownTaskError as _TaskNameError, PoolingTask, parse_task


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """One served pooling model, as its config.pbtxt describes it."""

    name: str
    task: PoolingTask
    max_batch_size: int
    use_activation: bool  # the model's default, sent explicitly so every request has the same inputs
    inputs: frozenset[str]
    sparse: bool = False  # an embed model answering SPARSE_* ({token_id: weight}) instead of EMBEDDING
    # A ColBERT token_embed model: queries and documents are encoded in their roles (PROMPT_NAME query / document)
    roles: bool = False


def model_info(config: Mapping) -> ModelInfo | None:
    """A ModelInfo from a model config dict (HTTP JSON or gRPC as_json), or None if not a pooling model."""
    params = config.get("parameters") or {}
    task_name = _string_parameter(params, TASK_PARAMETER)
    if not task_name:
        return None
    try:
        task = parse_task(task_name)
    except _TaskNameError:
        return None  # such a model refuses to load; nothing here can serve it
    activation = (_string_parameter(params, "use_activation") or "true").strip().lower()
    return ModelInfo(
        name=str(config["name"]),
        task=task,
        max_batch_size=max(1, int(config.get("max_batch_size") or 1)),
        use_activation=activation not in ("false", "0", "no"),
        inputs=frozenset(str(i["name"]) for i in config.get("input") or ()),
        sparse=task is PoolingTask.EMBED and is_sparse_config(config,
                                                              _string_parameter(params, POOLING_TYPE_PARAMETER)),
        roles=task is PoolingTask.TOKEN_EMBED and ROLE_PROMPTS <= _prompt_names(_string_parameter(params, "prompts")),
    )


# The prompt names a late-interaction (ColBERT) model reads as the text's role.
ROLE_PROMPTS = frozenset({"query", "document"})


def _prompt_names(text: str | None) -> frozenset[str]:
    try:
        prompts = json.loads(text) if text else {}
    except ValueError:
        return frozenset()
    return frozenset(prompts) if isinstance(prompts, dict) else frozenset()


def ready_model_names(index_rows: Iterable[Mapping]) -> list[str]:
    """Names of the READY models of a repository index (rows without a state count as ready)."""
    names = [str(r["name"]) for r in index_rows if str(r.get("state", "READY")).upper() == "READY"]
    return sorted(set(names))


class ModelCatalog:
    """The pooling models of one server, and task verification with messages that list alternatives."""

    def __init__(self, models: Iterable[ModelInfo]):
        self.models: dict[str, ModelInfo] = {m.name: m for m in models}

    def served_tasks(self) -> dict[PoolingTask, list[str]]:
        """Task → names of the models serving it, in task order."""
        served: dict[PoolingTask, list[str]] = {}
        for task in PoolingTask:
            names = sorted(m.name for m in self.models.values() if m.task is task)
            if names:
                served[task] = names
        return served

    def describe(self) -> str:
        served = self.served_tasks()
        if not served:
            return "this server serves no pooling models"
        parts = [f"{task.value!r} (models: {', '.join(names)})" for task, names in served.items()]
        return "this server serves " + "; ".join(parts)

    def resolve(self, task: str | PoolingTask | None, model: str | None) -> ModelInfo:
        """The model to ask: `model` if given (its task must match `task`), else the one serving `task`."""
        wanted = parse_task_name(task) if task is not None else None
        if model is not None:
            info = self.models.get(model)
            if info is None:
                raise ModelNotFoundError(f"model {model!r} is not a pooling model on this server; {self.describe()}")
            if wanted is not None and info.task is not wanted:
                raise TaskNotServedError(
                    f"model {model!r} serves {info.task.value!r}, not {wanted.value!r} (one task per model); "
                    f"ask for task={info.task.value!r}, or {self._who_serves(wanted)}"
                )
            return info
        if wanted is None:
            raise TaskNotServedError("give task= (or model=) to choose what to run; " + self.describe())
        return self.model_for(wanted)

    def model_for(self, task: PoolingTask) -> ModelInfo:
        names = self.served_tasks().get(task, [])
        if not names:
            raise TaskNotServedError(f"Unsupported task: {task.value!r}: no model on the server serves it; {self.describe()}")
        # The default repository names each model after its task; otherwise one model must be unambiguous.
        if task.value in names:
            return self.models[task.value]
        if len(names) == 1:
            return self.models[names[0]]
        raise TaskNotServedError(
            f"several models serve {task.value!r} ({', '.join(names)}); choose one with model="
        )

    def sparse_model(self, model: str | None) -> ModelInfo:
        """The sparse (SPLADE) embed model to ask: `model` if given (it must be sparse), else the only one."""
        names = sorted(m.name for m in self.models.values() if m.sparse)
        if model is not None:
            info = self.resolve(PoolingTask.EMBED, model)
            if not info.sparse:
                raise TaskNotServedError(f"model {model!r} is a dense embed model, not a sparse (SPLADE) one: use "
                                         f"embed() for it; {self._sparse_models(names)}")
            return info
        if len(names) == 1:
            return self.models[names[0]]
        if not names:
            raise TaskNotServedError(f"no sparse (SPLADE) embed model on this server; {self.describe()}")
        raise TaskNotServedError(f"several sparse (SPLADE) embed models ({', '.join(names)}); choose one with model=")

    def dense_model(self, task: str | PoolingTask | None, model: str | None) -> ModelInfo:
        """resolve(task, model) for calls that return dense vectors: a sparse model is refused, naming embed_sparse;
        without `model`, the choice is among the dense models (as the gateway's dense routes choose)."""
        dense = ModelCatalog(m for m in self.models.values() if not m.sparse)
        if model is None and task is not None and dense.served_tasks().get(parse_task_name(task)):
            return dense.resolve(task, None)
        info = self.resolve(task, model)
        if info.sparse:
            raise InvalidRequestError(
                f"model {info.name!r} is a sparse (SPLADE) embed model: it answers one {{token_id: weight}} per text, "
                f"not a dense vector; use embed_sparse(texts, model={info.name!r}), or encode(..., task='embed', "
                f"model={info.name!r}) whose outputs.data is that dict")
        return info

    @staticmethod
    def _sparse_models(names: list[str]) -> str:
        return f"sparse models here: {', '.join(names)}" if names else "this server serves no sparse (SPLADE) model"

    def _who_serves(self, task: PoolingTask) -> str:
        names = self.served_tasks().get(task)
        if names:
            return f"use a model serving {task.value!r}: {', '.join(names)}"
        return f"no model on this server serves {task.value!r}; {self.describe()}"


def parse_task_name(task: str | PoolingTask) -> PoolingTask:
    """tasks.parse_task, raised as the client's UnknownTaskError (message lists the valid names)."""
    try:
        return parse_task(task)
    except _TaskNameError as e:
        raise UnknownTaskError(str(e)) from e


def _string_parameter(params: Mapping, key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, Mapping):  # {"string_value": "..."} in both HTTP and gRPC JSON
        value = value.get("string_value")
    return None if value is None else str(value)
