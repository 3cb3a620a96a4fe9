"""ColBERT late interaction (issue 20, item 3): PyLate folders and MultiVectorEncoder's own layout, built with a
plain `triton-pooling build` (token_embed by default), served on a real tritonserver and compared over HTTP and
gRPC with sentence-transformers' MultiVectorEncoder: queries (PROMPT_NAME query: the [unused0] prefix, [MASK]
expansion to the query length) and documents (the [unused1] prefix, cut at the document length, punctuation rows
left out), each row the Dense projection normalized, within 1e-5 and with the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from triton_pooling_contract.tasks import Tensor
from triton_pooling_server.cli import main

from integration.test_gateway import request, running_gateway
from support.colbert import make_pylate, reference, resave_native, with_min_expansion
from support.raw import PROTOCOLS, client, make_inputs
from support.triton import running_triton

pytestmark = pytest.mark.integration
TOL = 1e-5
# Mixed query lengths: under the `min` strategy's floor (6), between it and the cap (10), over the cap.
QUERIES = ["what is the capital of France?", "who built the tower in paris, and when was it built?", "berlin"]
DOCUMENTS = ["Paris is the capital of France. It is a large city on a river!", "Berlin; (and) German.",
             "The tower was built in the old century by the king of france, and it is famous: people from the north, "
             "south, east and west of the world come to see it."]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("colbert")
    folders = {"pylate": make_pylate(root / "pylate", seed=1), "pylate_attend": make_pylate(root / "attend", seed=2,
                                                                                           attend=True)}
    folders["native"] = resave_native(folders["pylate"], root / "native")
    folders["native_min"] = with_min_expansion(folders["native"], root / "native_min")
    for name, folder in folders.items():
        assert main(["build", str(folder), "--repository", str(root / "repository"), "--name", name]) == 0, name
    with running_triton(root / "repository", root / "tritonserver.log") as server:
        yield server, folders


@pytest.fixture(scope="module")
def gateway(served, tmp_path_factory):
    server, _ = served
    with running_gateway(server.options.grpc_url, tmp_path_factory.mktemp("colbert_gateway") / "gateway.log") as running:
        yield running


def served_rows(protocol, server, name, texts, role):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    inputs = make_inputs(protocol, texts)
    module = httpclient if protocol == "http" else grpcclient
    prompt = module.InferInput(Tensor.PROMPT_NAME, [len(texts), 1], "BYTES")
    prompt.set_data_from_numpy(np.array([[role.encode()]] * len(texts), dtype=object))
    result = client(protocol, server).infer(name, [*inputs, prompt])
    vectors, counts = result.as_numpy(Tensor.TOKEN_EMBEDDINGS), result.as_numpy(Tensor.NUM_TOKENS)[:, 0]
    return [vectors[i, : counts[i]] for i in range(len(texts))]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("role, texts", [("query", QUERIES), ("document", DOCUMENTS)])
@pytest.mark.parametrize("name", ["pylate", "native", "pylate_attend", "native_min"])
def test_token_vectors_equal_multi_vector_encoder(served, name, role, texts, protocol):
    server, folders = served
    expected, _ = reference(folders[name], texts, role)
    got = served_rows(protocol, server, name, texts, role)
    for ours, theirs in zip(got, expected):
        assert ours.shape == np.asarray(theirs).shape  # the same rows: expansion kept, skiplist dropped
        assert np.abs(ours - theirs).max() <= TOL
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_maxsim_of_served_vectors_equals_multi_vector_encoder_similarity(served):
    server, folders = served
    queries, model = reference(folders["pylate"], QUERIES, "query")
    documents, _ = reference(folders["pylate"], DOCUMENTS, "document")
    expected = model.similarity(queries, documents).numpy()
    q = served_rows("grpc", server, "pylate", QUERIES, "query")
    d = served_rows("grpc", server, "pylate", DOCUMENTS, "document")
    scores = np.array([[float((qi @ dj.T).max(axis=1).sum()) for dj in d] for qi in q])
    assert np.abs(scores - expected).max() <= 1e-4


def test_inputs_multi_vector_encoder_has_no_form_for_are_refused(served):
    from tritonclient.utils import InferenceServerException

    server, _ = served
    with pytest.raises(InferenceServerException, match="TRUNCATE_PROMPT_TOKENS.*this ColBERT model"):
        client("http", server).infer("pylate", make_inputs("http", ["x"], TRUNCATE_PROMPT_TOKENS=4))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_score_encodes_queries_and_documents_in_their_roles(served, protocol):
    from triton_pooling import PoolingClient

    server, folders = served
    queries, model = reference(folders["native"], QUERIES[:1], "query")
    documents, _ = reference(folders["native"], DOCUMENTS, "document")
    expected = model.similarity(queries, documents).numpy()[0]
    url = server.options.http_url if protocol == "http" else server.options.grpc_url
    with PoolingClient(url, protocol) as client:
        scores = client.score(QUERIES[0], DOCUMENTS, model="native")
    assert np.abs(np.array([s.outputs.score for s in scores]) - expected).max() <= 1e-4


def test_gateway_rerank_and_score_use_maxsim_in_roles(served, gateway):
    _, folders = served
    queries, model = reference(folders["pylate"], QUERIES[:1], "query")
    documents, _ = reference(folders["pylate"], DOCUMENTS, "document")
    expected = model.similarity(queries, documents).numpy()[0]
    status, _, body = request(gateway.url, "POST", "/rerank", {"model": "pylate", "query": QUERIES[0],
                                                               "documents": DOCUMENTS})
    assert status == 200, body
    for result in body["results"]:
        assert abs(result["relevance_score"] - float(expected[result["index"]])) <= 1e-4
    status, _, body = request(gateway.url, "POST", "/score", {"model": "pylate", "text_1": QUERIES[0],
                                                              "text_2": DOCUMENTS})
    assert status == 200, body
    assert np.abs(np.array([d["score"] for d in body["data"]]) - expected).max() <= 1e-4
