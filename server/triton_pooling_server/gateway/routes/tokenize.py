"""Tokenization with the served model's own tokenizer.json (tokenizer_files.py): vLLM's /tokenize and
/detokenize, TEI's /tokenize and /decode. /tokenize takes either shape, told apart by its fields: TEI's has
`inputs`, vLLM's `prompt`. No Triton call is made: the gateway reads the very file the model's stub encodes
with, so the ids are the ones the model sees (before a prompt_name's prompt or truncation, unless asked)."""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from triton_pooling_contract.tasks import PoolingTask

from ..context import MODEL_KEY, gateway, json_response, read_json
from ..dialects import empty, mark_tei
from ..errors import invalid
from ..protocol import fields
from ..protocol.inputs import _ids, _text
from ..triton.catalog import ServedModel

UINT32_MAX = 2**32 - 1  # the tokenizers package's id type


async def tokenize(request: web.Request) -> web.Response:
    body = await read_json(request)
    if "inputs" in body and "prompt" not in body:
        mark_tei(request)
        return json_response(await _tei_tokenize(request, body))
    return json_response(await _vllm_tokenize(request, body))


async def detokenize(request: web.Request) -> web.Response:
    """vLLM: {model, tokens} → {prompt}; special tokens kept, as vLLM's decode."""
    body = await read_json(request)
    model, tokenizer = await _tokenizer(request, body, "/detokenize")
    ids = _token_list(body.get("tokens"), "tokens")
    return json_response({"prompt": tokenizer.decode(list(ids), skip_special_tokens=False)})


async def decode(request: web.Request) -> web.Response:
    """TEI: {ids: [int] | [[int]], skip_special_tokens (true)} → [string]."""
    body = await read_json(request)
    model, tokenizer = await _tokenizer(request, body, "/decode")
    ids = body.get("ids")
    skip = fields.optional_bool(body, "skip_special_tokens")
    skip = True if skip is None else skip
    if isinstance(ids, list) and ids and all(isinstance(row, list) for row in ids):
        rows = [_token_list(row, f"ids[{i}]") for i, row in enumerate(ids)]
    else:
        rows = [_token_list(ids, "ids")]
    return json_response([tokenizer.decode(list(row), skip_special_tokens=skip) for row in rows])


async def _vllm_tokenize(request: web.Request, body: Mapping) -> dict:
    if body.get("messages") is not None:
        raise invalid("chat input (messages) is not supported: send the text in prompt", "messages")
    model, tokenizer = await _tokenizer(request, body, "/tokenize")
    prompt = body.get("prompt")
    if prompt is None:
        raise invalid("prompt is required: a string (vLLM's TokenizeCompletionRequest; TEI's shape has inputs)",
                      "prompt")
    text = _text(prompt, "prompt")
    special = fields.optional_bool(body, "add_special_tokens")
    encoding = tokenizer.encode(text, add_special_tokens=True if special is None else special)
    strs = fields.optional_bool(body, "return_token_strs")
    return {"count": len(encoding.ids), "max_model_len": model.max_tokens, "tokens": list(encoding.ids),
            "token_strs": list(encoding.tokens) if strs else None}


async def _tei_tokenize(request: web.Request, body: Mapping) -> list:
    model, tokenizer = await _tokenizer(request, body, "/tokenize")
    inputs = body.get("inputs")
    if isinstance(inputs, str):
        texts = [_text(inputs, "inputs")]
    elif isinstance(inputs, list):
        if not inputs:
            raise empty("`inputs` cannot be empty", "inputs")
        if len(inputs) > gateway(request).settings.max_inputs:
            raise invalid(f"inputs has {len(inputs)} items; this gateway takes at most "
                          f"{gateway(request).settings.max_inputs} per request (--max-inputs)", "inputs")
        texts = [_text(t, f"inputs[{i}]") for i, t in enumerate(inputs)]
    else:
        raise invalid(f"inputs must be a string or a list of strings; got {fields.describe(inputs)}", "inputs")
    special = fields.optional_bool(body, "add_special_tokens")
    prefix = _prompt(model, fields.optional_str(body, "prompt_name"))
    return [_tei_tokens(tokenizer, prefix + text, True if special is None else special) for text in texts]


def _tei_tokens(tokenizer, text: str, add_special_tokens: bool) -> list[dict]:
    """TEI's SimpleToken: a special token's text is the token, with no offsets; any other's is its slice of the
    input, offsets in UTF-8 bytes (TEI's Rust offsets; the Python binding gives characters)."""
    encoding = tokenizer.encode(text, add_special_tokens=add_special_tokens)
    byte_at = _byte_offsets(text)
    tokens = []
    for token_id, (start, stop), special, token in zip(encoding.ids, encoding.offsets,
                                                       encoding.special_tokens_mask, encoding.tokens):
        if special:
            tokens.append({"id": token_id, "text": token, "special": True, "start": None, "stop": None})
        else:
            tokens.append({"id": token_id, "text": text[start:stop], "special": False, "start": byte_at[start],
                           "stop": byte_at[stop]})
    return tokens


def _byte_offsets(text: str) -> list[int]:
    offsets, at = [0], 0
    for char in text:
        at += len(char.encode("utf-8"))
        offsets.append(at)
    return offsets


def _prompt(model: ServedModel, name: str | None) -> str:
    if name is None:
        return ""
    prompts = dict(model.prompts)
    if name not in prompts:
        known = ", ".join(map(repr, prompts)) or "none"
        raise invalid(f"prompt_name {name!r} is not one of model {model.name!r}'s prompts ({known})", "prompt_name")
    return prompts[name]


async def _tokenizer(request: web.Request, body: Mapping, endpoint: str):
    state = gateway(request)
    model = await state.catalog.resolve(fields.optional_str(body, "model"), endpoint, tuple(PoolingTask))
    request[MODEL_KEY] = model.name
    return model, state.tokenizers.get(model.name, model.version)


def _token_list(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise invalid(f"{name} must be a list of token ids; got {fields.describe(value)}", name.split("[")[0])
    if not value:
        return ()
    ids = _ids(value, name)
    too_big = next((i for i, v in enumerate(ids) if v > UINT32_MAX), None)
    if too_big is not None:
        raise invalid(f"{name}[{too_big}] is {ids[too_big]}; a tokenizer's ids are at most {UINT32_MAX} (u32)",
                      name.split("[")[0])
    return ids
