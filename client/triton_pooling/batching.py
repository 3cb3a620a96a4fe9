"""Split prompts into Triton requests, and put the answers back together in input order.

Every request to a model carries the same set of option inputs (-1 for "model default", the
model's own `use_activation` default) because Triton's dynamic batcher only groups requests with
identical input sets. Pre-tokenized prompts share one INPUT_IDS row length per request, so they
are grouped by length; pairs (TEXT + TEXT_PAIR) travel apart from single texts for the same reason.
A sparse model's answers are padded per request to that request's most nonzeros (sparse.py).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from .discovery import ModelInfo
from .errors import InvalidRequestError
from .outputs import PoolingOutput, PoolingRequestOutput
from .prompts import NormalizedPrompt
from .sparse import output_names, sparse_row
from triton_pooling_contract.tasks import EMBEDDING_TASKS, OPTION_UNSET, TOKEN_LEVEL_TASKS, Tensor

# (tensor name, array, Triton datatype)
WireTensor = tuple[str, np.ndarray, str]


@dataclasses.dataclass(frozen=True)
class EncodeOptions:
    """Per-call options; None means the model's default."""

    dimensions: int | None = None
    use_activation: bool | None = None
    truncate_prompt_tokens: int | None = None
    prompt_name: str | None = None  # embed: one of the model's prompts (sentence-transformers' prompt_name)


@dataclasses.dataclass(frozen=True)
class PlannedRequest:
    """One Triton request: which prompts (by input index) and the tensors to send."""

    indices: tuple[int, ...]
    tensors: tuple[WireTensor, ...]


@dataclasses.dataclass(frozen=True)
class EncodePlan:
    model: ModelInfo
    prompts: tuple[NormalizedPrompt, ...]
    requests: tuple[PlannedRequest, ...]
    return_tokens: bool = False  # sparse models: also ask for SPARSE_TOKENS

    @property
    def outputs(self) -> tuple[str, ...]:
        """The output tensors to ask each request for."""
        return output_names(self.model, self.return_tokens)

    def assemble(self, responses: Sequence[Mapping[str, np.ndarray]]) -> list[PoolingRequestOutput]:
        """One output per prompt, in input order; token rows cut to NUM_TOKENS (the server pads them), sparse
        rows cut of their padding."""
        data_name = self.outputs[0]
        token_level = self.model.task in TOKEN_LEVEL_TASKS
        results: list[PoolingRequestOutput | None] = [None] * len(self.prompts)
        for request, response in zip(self.requests, responses):
            data, counts = response[data_name], response[Tensor.NUM_TOKENS].reshape(-1)
            for row, index in enumerate(request.indices):
                count = int(counts[row])
                if self.model.sparse:
                    pooled: PoolingOutput = sparse_row(response, row, self.return_tokens)
                else:
                    pooled = PoolingOutput(np.array(data[row, :count] if token_level else data[row], dtype=np.float32))
                prompt = self.prompts[index]
                results[index] = PoolingRequestOutput(
                    request_id=str(index), prompt=prompt.original, outputs=pooled,
                    num_tokens=count, task=self.model.task, model=self.model.name,
                    prompt_token_ids=None if prompt.token_ids is None else list(prompt.token_ids),
                )
        return results  # type: ignore[return-value]


def plan_requests(prompts: Sequence[NormalizedPrompt], model: ModelInfo, options: EncodeOptions,
                  max_request_size: int | None = None, return_tokens: bool = False) -> EncodePlan:
    output_names(model, return_tokens)  # refuses return_tokens for a dense model before anything is sent
    size = model.max_batch_size if max_request_size is None else max(1, min(max_request_size, model.max_batch_size))
    option_tensors = _option_columns(model, options)
    groups: dict[tuple, list[int]] = {}
    for index, prompt in enumerate(prompts):
        groups.setdefault(_group_key(prompt), []).append(index)
    requests = []
    for indices in groups.values():
        for start in range(0, len(indices), size):
            chunk = tuple(indices[start:start + size])
            requests.append(PlannedRequest(chunk, _prompt_tensors([prompts[i] for i in chunk]) +
                                           tuple(_column(name, value, len(chunk), dtype)
                                                 for name, value, dtype in option_tensors)))
    requests.sort(key=lambda r: r.indices[0])
    return EncodePlan(model, tuple(prompts), tuple(requests), return_tokens)


def _group_key(prompt: NormalizedPrompt) -> tuple:
    if prompt.token_ids is not None:
        return ("ids", len(prompt.token_ids))
    return ("pair",) if prompt.text_pair is not None else ("text",)


def _prompt_tensors(prompts: list[NormalizedPrompt]) -> tuple[WireTensor, ...]:
    first = prompts[0]
    if first.token_ids is not None:
        return ((Tensor.INPUT_IDS, np.array([p.token_ids for p in prompts], dtype=np.int64), "INT64"),)
    tensors = [(Tensor.TEXT, _bytes([p.text for p in prompts]), "BYTES")]
    if first.text_pair is not None:
        tensors.append((Tensor.TEXT_PAIR, _bytes([p.text_pair for p in prompts]), "BYTES"))
    return tuple(tensors)


def _option_columns(model: ModelInfo, options: EncodeOptions) -> list[tuple[str, object, str]]:
    """The option inputs this model takes, always all of them, with defaults spelled out."""
    if options.dimensions is not None and model.task not in EMBEDDING_TASKS:
        raise InvalidRequestError(
            f"dimensions applies to embed and token_embed models only; model {model.name!r} serves "
            f"{model.task.value!r}; got dimensions={options.dimensions} (leave it None)"
        )
    if options.dimensions is not None and model.sparse:
        raise InvalidRequestError(
            f"dimensions does not apply to sparse (SPLADE) embed models: model {model.name!r} answers one weight per "
            f"vocabulary entry it uses; got dimensions={options.dimensions} (leave it None)")
    activation = model.use_activation if options.use_activation is None else bool(options.use_activation)
    columns = [
        (Tensor.TRUNCATE_PROMPT_TOKENS, _int_option(options.truncate_prompt_tokens, "truncate_prompt_tokens"), "INT32",
         options.truncate_prompt_tokens),
        (Tensor.DIMENSIONS, _int_option(options.dimensions, "dimensions"), "INT32", options.dimensions),
        (Tensor.USE_ACTIVATION, activation, "BOOL", options.use_activation),
        (Tensor.PROMPT_NAME, _prompt_name(options.prompt_name), "BYTES", options.prompt_name),
    ]
    for name, _, _, asked in columns:
        if asked is not None and name not in model.inputs:
            raise InvalidRequestError(f"model {model.name!r} has no {name} input, so it cannot take {name.lower()}={asked!r}")
    return [(name, value, dtype) for name, value, dtype, _ in columns if name in model.inputs]


def _prompt_name(value: str | None) -> bytes:
    """"" asks for the model's default prompt, so every request carries the same inputs."""
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidRequestError(f"prompt_name must be a non-empty str (one of the model's prompts) or None; got {value!r}")
    return (value or "").encode("utf-8")


def _int_option(value: int | None, name: str) -> int:
    if value is None:
        return OPTION_UNSET
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidRequestError(f"{name} must be a positive int or None (model default); got {value!r}")
    return int(value)


def _column(name: str, value, rows: int, dtype: str) -> WireTensor:
    numpy_type = {"INT32": np.int32, "BOOL": np.bool_, "BYTES": object}[dtype]
    return name, np.full((rows, 1), value, dtype=numpy_type), dtype


def _bytes(texts: list[str]) -> np.ndarray:
    return np.array([[t.encode("utf-8")] for t in texts], dtype=object)
