"""How a sparse (SPLADE) embed model's output travels, per API.

TEI's POST /embed_sparse (router/src/http/types.rs: EmbedSparseResponse = Vec<Vec<SparseValue>>): per input, its
nonzero entries `[{"index": int, "value": float}, ...]`, ids ascending. vLLM's /pooling: `data[i].data =
{"indices": [...], "values": [...]}` (with `"tokens": [...]` when `return_tokens` is true), the same entries as
two parallel arrays — a vocabulary-sized dense list per text is what the sparse output exists to avoid.
"""

from __future__ import annotations

from typing import Mapping

from triton_pooling.outputs import SparseEmbeddingOutput

from ..errors import invalid
from . import fields
from .encoding import Encoding


def tei_values(output: SparseEmbeddingOutput) -> list[dict]:
    return [{"index": i, "value": v} for i, v in zip(output.indices.tolist(), output.values.tolist())]


def pooling_data(output: SparseEmbeddingOutput) -> dict:
    data = {"indices": output.indices, "values": output.values}
    if output.tokens is not None:
        data["tokens"] = list(output.tokens)
    return data


def parse_return_tokens(body: Mapping, sparse: bool) -> bool:
    """/pooling's `return_tokens`: a sparse model's tokens beside their ids."""
    wanted = bool(fields.optional_bool(body, "return_tokens"))
    if wanted and not sparse:
        raise invalid("return_tokens applies to sparse (SPLADE) embed models only; this model answers dense "
                      "vectors (leave it out)", "return_tokens")
    return wanted


def check_encoding(encoding: Encoding, model: str) -> None:
    """Sparse entries are JSON only: base64 / embed_dtype would pack a dense vector, which they are not."""
    if encoding != Encoding():
        raise invalid(f"model {model!r} is sparse (SPLADE): its /pooling data is JSON {{indices, values}}; "
                      f"encoding_format must be 'float' (embed_dtype float32, endianness native); got "
                      f"encoding_format {encoding.format!r}, embed_dtype {encoding.dtype!r}, endianness "
                      f"{encoding.endianness!r}", "encoding_format")
