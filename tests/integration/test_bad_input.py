"""Bad input: a clear INVALID_ARG naming the field and value, and batch-mates still answered right."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from triton_pooling_contract.tasks import PoolingTask, Tensor

from support.raw import PROTOCOLS, client, make_inputs

pytestmark = pytest.mark.integration

GOOD = "a perfectly good sentence. <extra_0>"  # one step tag for the PRM-shaped model

# (case id, model, request kwargs, substrings the error must contain)
BAD_REQUESTS = [
    ("empty text", "embed", dict(texts=[""]), ["TEXT[0] is empty"]),
    ("missing TEXT", "embed", dict(texts=None, DIMENSIONS=[-1]), ["TEXT is required"]),
    ("TEXT and INPUT_IDS", "embed", dict(texts=["hi"], input_ids=[[101, 102]]), ["either TEXT or INPUT_IDS"]),
    ("id outside vocabulary", "embed", dict(input_ids=[[101, 999999, 102]]), ["INPUT_IDS[0][1] is 999999", "30521"]),
    ("negative id", "embed", dict(input_ids=[[101, -5, 102]]), ["INPUT_IDS[0][1] is -5"]),
    ("DIMENSIONS too large", "embed", dict(texts=["hi"], DIMENSIONS=1000), ["DIMENSIONS", "between 1 and 384", "1000"]),
    ("DIMENSIONS zero", "token_embed", dict(texts=["hi"], DIMENSIONS=0), ["DIMENSIONS", "got 0"]),
    ("DIMENSIONS on classifier", "seq_classify", dict(texts=["hi"], DIMENSIONS=8),
     ["DIMENSIONS applies to embed and token_embed", "'seq_classify'"]),
    ("too long without truncation", "embed", dict(texts=["word " * 600]), ["TEXT[0] has", "at most 256", "TRUNCATE_PROMPT_TOKENS"]),
    ("truncation beyond limit", "embed", dict(texts=["hi"], TRUNCATE_PROMPT_TOKENS=100000), ["TRUNCATE_PROMPT_TOKENS", "100000"]),
    ("invalid UTF-8", "embed", dict(texts=[b"\xff\xfeabc"]), ["TEXT[0] is not valid UTF-8"]),
    ("TEXT_PAIR with INPUT_IDS", "bert_classifier", dict(input_ids=[[101, 102]], pairs=["x"]), ["TEXT_PAIR needs TEXT"]),
    ("second text empty", "embed", dict(texts=["fine", ""]), ["TEXT[1] is empty"]),
]


def _send(protocol, server, model, kwargs):
    kwargs = dict(kwargs)
    texts = kwargs.pop("texts", None)
    return client(protocol, server).infer(model, make_inputs(protocol, texts, **kwargs))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("case,model,kwargs,needles", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request_gets_clear_invalid_arg(triton_server, protocol, case, model, kwargs, needles):
    with pytest.raises(InferenceServerException) as excinfo:
        _send(protocol, triton_server, model, kwargs)
    message = str(excinfo.value)
    assert "INVALID_ARG" in message or "400" in message or "Bad Request" in message or \
        excinfo.value.status() in ("StatusCode.INVALID_ARGUMENT", "400"), message
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("model", ["embed", "token_classify"])
def test_bad_requests_never_fail_batch_mates(triton_server, model):
    """Good and bad requests race into the same dynamic batch; every good one gets its own answer."""
    out_name = {"embed": Tensor.EMBEDDING, "token_classify": Tensor.TOKEN_SCORES}[model]
    expected = _send("grpc", triton_server, model, dict(texts=[GOOD])).as_numpy(out_name)
    bad = [kw for _, m, kw, _ in BAD_REQUESTS if m == "embed" and "input_ids" not in kw and "DIMENSIONS" not in kw]
    jobs = [("good", dict(texts=[GOOD])) if i % 2 == 0 else ("bad", bad[i % len(bad)]) for i in range(40)]

    def run(job):
        kind, kwargs = job
        try:
            return kind, _send("grpc", triton_server, model, kwargs).as_numpy(out_name)
        except InferenceServerException as e:
            return kind, e

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(run, jobs))
    for kind, result in results:
        if kind == "good":
            assert isinstance(result, np.ndarray), result
            assert result.shape == expected.shape and result.size > 0
            assert np.max(np.abs(result - expected)) <= 1e-5
        else:
            assert isinstance(result, InferenceServerException)
    # And the model is still healthy afterwards.
    assert client("http", triton_server).is_model_ready(model)


def test_one_bad_request_in_the_same_execute_call(checkpoints, tmp_path):
    """In-process: one execute() batch holding good and bad requests answers each on its own."""
    from triton_pooling_backend.errors import InvalidInputError
    from triton_pooling_server.builder.artifact import load_service
    from triton_pooling_contract.definition import ModelDefinition

    service = load_service(ModelDefinition(PoolingTask.SEQ_CLASSIFY, str(checkpoints["bert-seq-3"]),
                                           max_batch_size=8).located())

    def text(*values):
        return {Tensor.TEXT: np.array([[v] for v in values], dtype=object)}

    answers = service.handle([text(b"good one"), text(b""), text(b"good two", b"three"), text(b"\xff")])
    assert isinstance(answers[1], InvalidInputError) and isinstance(answers[3], InvalidInputError)
    alone = service.handle([text(b"good one")])[0][Tensor.SCORES]
    assert np.max(np.abs(answers[0][Tensor.SCORES] - alone)) <= 1e-6
    assert answers[2][Tensor.SCORES].shape == (2, 3)
