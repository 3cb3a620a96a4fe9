"""Hugging Face transformers references, one text at a time (no padding), for parity checks."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import transformers


@functools.lru_cache(maxsize=None)
def _tokenizer(path: str):
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    tokenizer.truncation_side = "left"
    return tokenizer


@functools.lru_cache(maxsize=None)
def _model(path: str, auto_class: str):
    return getattr(transformers, auto_class).from_pretrained(path, dtype=torch.float32).eval()


def encode(path: Path, text: str, pair: str | None = None, truncate: int | None = None) -> dict:
    kwargs = dict(truncation=True, max_length=truncate) if truncate else {}
    return _tokenizer(str(path))(text, pair, return_tensors="pt", **kwargs)


@torch.inference_mode()
def hidden_states(path: Path, text: str, **kw) -> torch.Tensor:
    return _model(str(path), "AutoModel")(**encode(path, text, **kw)).last_hidden_state[0]


def embedding(path: Path, text: str, pooling: str = "MEAN", normalize: bool = True, dimensions=None, **kw):
    states = hidden_states(path, text, **kw)
    vector = {"MEAN": states.mean(0), "CLS": states[0], "LAST": states[-1]}[pooling]
    return _finish_embedding(vector, normalize, dimensions)


def token_embeddings(path: Path, text: str, normalize: bool = True, dimensions=None, **kw):
    return _finish_embedding(hidden_states(path, text, **kw), normalize, dimensions)


@torch.inference_mode()
def sequence_logits(path: Path, text: str, pair: str | None = None, **kw) -> np.ndarray:
    model = _model(str(path), "AutoModelForSequenceClassification")
    return model(**encode(path, text, pair, **kw)).logits[0].numpy()


@torch.inference_mode()
def token_logits(path: Path, text: str, **kw) -> tuple[np.ndarray, np.ndarray]:
    """Per-token logits [T, L] and the token ids [T]."""
    batch = encode(path, text, **kw)
    model = _model(str(path), "AutoModelForTokenClassification")
    return model(**batch).logits[0].numpy(), batch["input_ids"][0].numpy()


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def softmax(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _finish_embedding(vector: torch.Tensor, normalize: bool, dimensions) -> np.ndarray:
    if dimensions:
        vector = vector[..., :dimensions]
    if normalize:
        vector = torch.nn.functional.normalize(vector, dim=-1)
    return vector.numpy()
