"""Turn one request's input tensors into validated per-text work orders.

Pure numpy: no Triton, no torch, so it can be unit- and property-tested without a server.
Every error names the tensor, the row, the value given and what is allowed.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from triton_pooling_contract.tasks import EMBEDDING_TASKS, OPTION_UNSET, PoolingTask, Tensor

from .errors import InvalidInputError
from .limits import RequestLimits


@dataclasses.dataclass(frozen=True)
class InputLimits:
    """What a request may ask of this model."""

    task: PoolingTask
    max_tokens: int
    hidden_size: int
    vocab_size: int
    request: RequestLimits = RequestLimits()  # bytes per text, texts per request
    # Sizes DIMENSIONS may ask for: None: not a Matryoshka model (refused, as vLLM); (): any size up to hidden_size
    matryoshka_dimensions: tuple[int, ...] | None = ()
    longest: int | None = None  # the most tokens a prompt may have (chunked processing: max_embed_len); None: max_tokens


@dataclasses.dataclass(frozen=True)
class TextInput:
    """One text of a request, validated; exactly one of `text` / `input_ids` is set."""

    text: str | None = None
    text_pair: str | None = None
    input_ids: tuple[int, ...] | None = None
    truncate: int | None = None  # keep the last k tokens
    dimensions: int | None = None
    use_activation: bool | None = None  # None: the model's default
    prompt_name: str | None = None  # None: the model's default prompt (prompts.PromptBook applies it)
    pooling_start: int = 0  # leading tokens left out of the pooling (a prompt with include_prompt false)


def parse_request(tensors: Mapping[str, np.ndarray | None], limits: InputLimits) -> list[TextInput]:
    text = tensors.get(Tensor.TEXT)
    ids = tensors.get(Tensor.INPUT_IDS)
    if text is not None and ids is not None:
        raise InvalidInputError("give either TEXT or INPUT_IDS in a request, not both")
    if text is None and ids is None:
        raise InvalidInputError("TEXT is required (or INPUT_IDS for pre-tokenized input)")
    if text is not None:
        rows = _rows(text, Tensor.TEXT)
        limits.request.check_count(len(rows), Tensor.TEXT)
        limits.request.check_bytes(rows, Tensor.TEXT)
        texts = [_decode(v, Tensor.TEXT, i) for i, v in enumerate(rows)]
        batch = len(texts)
        id_rows = [None] * batch
    else:
        limits.request.check_count(len(np.atleast_2d(ids)), Tensor.INPUT_IDS)
        longest = limits.longest or limits.max_tokens
        if np.ndim(ids) >= 1 and np.shape(ids)[-1] > longest:  # before any row becomes Python ints
            raise InvalidInputError(f"INPUT_IDS rows hold {np.shape(ids)[-1]} ids; this model takes at most {longest} "
                                    "per prompt: send fewer (pre-tokenized prompts are used as given)")
        id_rows = _parse_ids(ids, limits.vocab_size)
        batch = len(id_rows)
        texts = [None] * batch
    if batch == 0:
        raise InvalidInputError("the request carries no texts (batch size 0)")
    pair = tensors.get(Tensor.TEXT_PAIR)
    if pair is not None and ids is not None:
        raise InvalidInputError("TEXT_PAIR needs TEXT; pre-tokenized INPUT_IDS already hold the pair")
    pair_rows = [None] * batch if pair is None else _rows(pair, Tensor.TEXT_PAIR, batch)
    limits.request.check_bytes(pair_rows, Tensor.TEXT_PAIR)
    pairs = [None] * batch if pair is None else [_decode(v, Tensor.TEXT_PAIR, i) for i, v in enumerate(pair_rows)]
    truncate = _options(tensors, Tensor.TRUNCATE_PROMPT_TOKENS, batch, 1, limits.max_tokens,
                        f"between 1 and {limits.max_tokens} (this model's token limit), or -1 for none")
    dims = _options(tensors, Tensor.DIMENSIONS, batch, 1, limits.hidden_size,
                    f"between 1 and {limits.hidden_size} for this model, or -1 for the full size")
    if limits.task not in EMBEDDING_TASKS and any(d is not None for d in dims):
        given = next(d for d in dims if d is not None)
        raise InvalidInputError(
            f"DIMENSIONS applies to embed and token_embed models only; this model serves "
            f"{limits.task.value!r}; got {given} (send -1 or leave it out)"
        )
    if len({d for d in dims}) > 1:
        raise InvalidInputError(f"DIMENSIONS must be the same for every text of one request; got {sorted(set(map(str, dims)))}")
    _check_matryoshka(dims[0], limits)
    activation = _bools(tensors.get(Tensor.USE_ACTIVATION), batch)
    prompts = _prompt_names(tensors.get(Tensor.PROMPT_NAME), batch)
    if ids is not None and any(p is not None for p in prompts):
        raise InvalidInputError("PROMPT_NAME needs TEXT: pre-tokenized INPUT_IDS take no prompt (prepend its tokens "
                                "yourself, or send the text)")
    return [
        TextInput(texts[i], pairs[i], id_rows[i], truncate[i], dims[i], activation[i], prompts[i]) for i in range(batch)
    ]


def _prompt_names(array, batch: int) -> list[str | None]:
    """PROMPT_NAME rows; "" (what a client sends to keep every request's inputs alike) = the model's default."""
    if array is None:
        return [None] * batch
    names = [_decode_optional(v, Tensor.PROMPT_NAME, i) for i, v in enumerate(_rows(array, Tensor.PROMPT_NAME, batch))]
    return [n or None for n in names]


def _decode_optional(value, name: str, row: int) -> str:
    if isinstance(value, (bytes, bytearray, np.bytes_)) and len(value) == 0:
        return ""
    return "" if isinstance(value, str) and not value else _decode(value, name, row)


def _check_matryoshka(dimensions: int | None, limits: InputLimits) -> None:
    if dimensions is None or dimensions == limits.hidden_size or limits.matryoshka_dimensions == ():
        return
    if limits.matryoshka_dimensions is None:
        raise InvalidInputError(
            f"DIMENSIONS is {dimensions}, but this model is not declared Matryoshka (its vectors cut short mean "
            f"nothing): send -1 for the full {limits.hidden_size}, or build it with --matryoshka-dimensions")
    if dimensions not in limits.matryoshka_dimensions:
        raise InvalidInputError(f"DIMENSIONS must be one of {', '.join(map(str, limits.matryoshka_dimensions))} or "
                                f"{limits.hidden_size} for this model; got {dimensions}")


def _rows(array: np.ndarray, name: str, batch: int | None = None) -> list:
    array = np.asarray(array)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInputError(f"{name} must have shape [batch, 1]; got {list(array.shape)}")
    if batch is not None and array.shape[0] != batch:
        raise InvalidInputError(f"{name} has {array.shape[0]} rows; the request has {batch} texts")
    return list(array)


def _decode(value, name: str, row: int) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (bytes, bytearray, np.bytes_)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidInputError(f"{name}[{row}] is not valid UTF-8 ({e.reason} at byte {e.start})") from None
    else:
        raise InvalidInputError(f"{name}[{row}] must be a UTF-8 string; got {type(value).__name__}")
    if not text:
        raise InvalidInputError(f"{name}[{row}] is empty; give at least one character")
    return text


def _parse_ids(ids: np.ndarray, vocab_size: int) -> list[tuple[int, ...]]:
    ids = np.asarray(ids)
    if ids.ndim == 1:
        ids = ids[None, :]
    if ids.ndim != 2:
        raise InvalidInputError(f"INPUT_IDS must have shape [batch, tokens]; got {list(ids.shape)}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise InvalidInputError(f"INPUT_IDS must be integers; got {ids.dtype}")
    if ids.shape[1] == 0:
        raise InvalidInputError("INPUT_IDS rows are empty; give at least one token id")
    bad = np.argwhere((ids < 0) | (ids >= vocab_size))
    if len(bad):
        row, col = (int(v) for v in bad[0])
        raise InvalidInputError(
            f"INPUT_IDS[{row}][{col}] is {int(ids[row, col])}; token ids must be between 0 and "
            f"{vocab_size - 1} (this model's vocabulary)"
        )
    return [tuple(int(v) for v in row) for row in ids]


def _options(tensors, name: str, batch: int, low: int, high: int, allowed: str) -> list[int | None]:
    array = tensors.get(name)
    if array is None:
        return [None] * batch
    values = []
    for row, value in enumerate(_rows(array, name, batch)):
        if not isinstance(value, (int, np.integer)):
            raise InvalidInputError(f"{name}[{row}] must be an integer; got {type(value).__name__}")
        value = int(value)
        if value == OPTION_UNSET:
            values.append(None)
        elif low <= value <= high:
            values.append(value)
        else:
            raise InvalidInputError(f"{name} must be {allowed}; got {value}")
    return values


def _bools(array, batch: int) -> list[bool | None]:
    if array is None:
        return [None] * batch
    return [bool(v) for v in _rows(array, Tensor.USE_ACTIVATION, batch)]
