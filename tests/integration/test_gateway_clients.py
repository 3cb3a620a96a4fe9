"""TEI's and Cohere's real clients against a real gateway over the session tritonserver: huggingface_hub's
InferenceClient (feature_extraction, sentence_similarity), the cohere SDK's ClientV2.embed with every embedding
type, and raw HTTP for the TEI, Cohere and tokenization routes and their errors — each answer equal to raw
Triton's numbers (1e-6) or to the stated quantization of them (protocol/quantize.py)."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from triton_pooling_contract.tasks import Tensor

from integration.test_gateway import ATOL, TEXTS, close, request, running_gateway
from support.raw import infer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(triton_server, model_repository, tmp_path_factory):
    log = tmp_path_factory.mktemp("gateway_clients") / "gateway.log"
    with running_gateway(triton_server.options.grpc_url, log, "--model-repository", str(model_repository)) as running:
        yield running


def post(gateway, path, body, status=200):
    got, _, payload = request(gateway.url, "POST", path, body)
    assert got == status, (got, payload)
    return payload


def cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_inference_client_feature_extraction_and_similarity(gateway, triton_server):
    from huggingface_hub import InferenceClient

    client = InferenceClient(base_url=gateway.url)
    raw = infer("grpc", triton_server, "embed", TEXTS)[Tensor.EMBEDDING]
    close(client.feature_extraction(TEXTS[0]), raw[:1])
    close(client.feature_extraction(TEXTS), raw)
    unnormalized = infer("grpc", triton_server, "embed", TEXTS, USE_ACTIVATION=False)[Tensor.EMBEDDING]
    close(client.feature_extraction(TEXTS, normalize=False), unnormalized)
    scores = client.sentence_similarity(TEXTS[0], other_sentences=TEXTS[1:])
    close(scores, [cosine(unnormalized[0], v) for v in unnormalized[1:]])


def test_tei_routes_equal_raw_triton(gateway, triton_server):
    raw = infer("grpc", triton_server, "embed", TEXTS)[Tensor.EMBEDDING]
    close(post(gateway, "/embed", {"inputs": TEXTS}), raw)
    small = infer("grpc", triton_server, "embed", TEXTS, DIMENSIONS=32)[Tensor.EMBEDDING]
    close(post(gateway, "/embed", {"inputs": TEXTS, "dimensions": 32}), small)
    cut = infer("grpc", triton_server, "embed", TEXTS, TRUNCATE_PROMPT_TOKENS=256)[Tensor.EMBEDDING]
    close(post(gateway, "/embed", {"inputs": TEXTS, "truncate": True, "truncation_direction": "Left"}), cut)
    tokens = infer("grpc", triton_server, "token_embed", TEXTS[:1], USE_ACTIVATION=False)
    close(post(gateway, "/embed_all", {"inputs": TEXTS[:1]})[0],
          tokens[Tensor.TOKEN_EMBEDDINGS][0, :int(tokens[Tensor.NUM_TOKENS][0, 0])])
    pair = infer("grpc", triton_server, "bert_classifier", TEXTS[:1], pairs=TEXTS[1:2])[Tensor.SCORES][0]
    predictions = post(gateway, "/predict", {"model": "bert_classifier", "inputs": TEXTS[:2]})
    close(sorted(p["score"] for p in predictions), sorted(pair))
    ranked = post(gateway, "/rerank", {"query": TEXTS[0], "texts": TEXTS[1:], "return_text": True})
    expected = [cosine(raw[0], v) for v in raw[1:]]
    for rank in ranked:
        assert abs(rank["score"] - expected[rank["index"]]) <= ATOL and rank["text"] == TEXTS[1 + rank["index"]]
    status, _, info = request(gateway.url, "GET", "/info")
    assert status == 200 and info["model_type"] == {"embedding": {"pooling": "mean"}} and info["max_input_length"] == 256


def test_tei_errors(gateway):
    status, _, body = request(gateway.url, "POST", "/embed", {"inputs": "x", "truncate": True})
    assert status == 422 and body["error_type"] == "Validation" and "truncation_direction" in body["error"]
    status, _, body = request(gateway.url, "POST", "/embed", {"inputs": []})
    assert status == 400 and body["error_type"] == "Empty"
    status, _, body = request(gateway.url, "POST", "/embed_sparse", {"inputs": "x"})  # no sparse model served here
    assert status == 424 and body["error_type"] == "Backend" and "no sparse (SPLADE) embed model" in body["error"]
    status, _, body = request(gateway.url, "POST", "/embed", {"inputs": "x", "dimensions": 100000})
    assert status == 422 and body["error_type"] == "Validation" and "DIMENSIONS" in body["error"]


def test_cohere_sdk_every_embedding_type(gateway, triton_server):
    import cohere
    from sentence_transformers.util.quantization import quantize_embeddings

    from triton_pooling_server.gateway.protocol.quantize import calibration

    client = cohere.ClientV2(api_key="unused", base_url=gateway.url)
    types = ["float", "int8", "uint8", "binary", "ubinary", "base64"]
    response = client.embed(model="embed", texts=TEXTS, input_type="search_document", embedding_types=types)
    raw = infer("grpc", triton_server, "embed", TEXTS)[Tensor.EMBEDDING]
    got = response.embeddings
    close(got.float_, raw)
    close([np.frombuffer(base64.b64decode(s), "<f4") for s in got.base64], raw)
    for name, attr in (("int8", "int8"), ("uint8", "uint8"), ("binary", "binary"), ("ubinary", "ubinary")):
        expected = quantize_embeddings(raw, name, ranges=calibration(raw.shape[1]))
        assert np.array_equal(np.array(getattr(got, attr)), expected), name
    small = infer("grpc", triton_server, "embed", TEXTS, DIMENSIONS=64)[Tensor.EMBEDDING]
    close(client.embed(model="embed", texts=TEXTS, input_type="search_query", embedding_types=["float"],
                       output_dimension=64).embeddings.float_, small)


def test_cohere_errors(gateway):
    status, _, body = request(gateway.url, "POST", "/v2/embed", {"model": "embed", "texts": ["x"], "truncate": "END"})
    assert status == 400 and body["error"]["param"] == "truncate"
    status, _, body = request(gateway.url, "POST", "/v2/embed", {"model": "nope", "texts": ["x"]})
    assert status == 404


def test_tokenization_uses_the_models_tokenizer(gateway, model_repository):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_repository / "embed" / "1" / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    ids = tok.encode(TEXTS[2]).ids
    body = post(gateway, "/tokenize", {"model": "embed", "prompt": TEXTS[2]})
    assert body["tokens"] == ids and body["max_model_len"] == 256
    assert post(gateway, "/detokenize", {"model": "embed", "tokens": ids})["prompt"] == tok.decode(ids, skip_special_tokens=False)
    tei = post(gateway, "/tokenize", {"inputs": TEXTS[2]})
    assert [t["id"] for t in tei[0]] == ids
    assert post(gateway, "/decode", {"ids": ids}) == [tok.decode(ids)]
    # the ids the gateway gives are the ones the model embeds
    via_ids = post(gateway, "/embed", {"inputs": [ids]})
    via_text = post(gateway, "/embed", {"inputs": [TEXTS[2]]})
    close(via_ids, via_text)
