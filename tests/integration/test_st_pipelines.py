"""Every sentence-transformers pipeline shape served exactly: folders saved by sentence-transformers itself
(`SentenceTransformer(modules=[...]).save()`) over a seeded BERT, built with a plain `triton-pooling build`, served
on one real tritonserver and compared with `SentenceTransformer(folder).encode` over HTTP and gRPC.

The shapes: LaBSE's (CLS, Dense with tanh to a smaller size, Normalize), EmbeddingGemma's (mean, two Dense layers
up and back down, Normalize), every other Pooling mode (max, mean_sqrt_len_tokens, weightedmean, lasttoken), and
a Dense without bias and with GELU followed by a LayerNorm and no Normalize. And cross-encoders saved by
`CrossEncoder.save` with their own activation (Identity: raw logits, as the ms-marco models ship), whose default
scores must equal `CrossEncoder.predict`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from triton_pooling_contract.tasks import Tensor
from triton_pooling_server.cli import main

from support.raw import PROTOCOLS, infer
from support.triton import running_triton

pytestmark = pytest.mark.integration
TOL = 1e-5
TEXTS = ["Hello world.", "Short", "Paris is the capital of France, and it sits on the Seine river.",
         "a b c d e f g h i j k l m n o p"]


def _shapes():
    from sentence_transformers.sentence_transformer.modules import Dense, LayerNorm, Normalize, Pooling

    hidden = 32
    return {
        "labse": lambda: [Pooling(hidden, pooling_mode="cls"), Dense(hidden, 16, activation_function=torch.nn.Tanh()),
                          Normalize()],
        "gemma": lambda: [Pooling(hidden, pooling_mode="mean"),
                          Dense(hidden, 64, bias=False, activation_function=torch.nn.Identity()),
                          Dense(64, hidden, bias=False, activation_function=torch.nn.Identity()), Normalize()],
        "max": lambda: [Pooling(hidden, pooling_mode="max"), Normalize()],
        "sqrt_len": lambda: [Pooling(hidden, pooling_mode="mean_sqrt_len_tokens")],
        "weighted": lambda: [Pooling(hidden, pooling_mode="weightedmean"), Normalize()],
        "last": lambda: [Pooling(hidden, pooling_mode="lasttoken"), Dense(hidden, 24, activation_function=torch.nn.ReLU())],
        "gelu_norm": lambda: [Pooling(hidden, pooling_mode="mean"),
                              Dense(hidden, 20, bias=False, activation_function=torch.nn.GELU()), LayerNorm(20)],
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory, checkpoints):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer

    root = tmp_path_factory.mktemp("st_pipelines")
    folders = {}
    for name, modules in _shapes().items():
        torch.manual_seed(3)  # the Dense layers' weights
        folder = root / name
        SentenceTransformer(modules=[Transformer(str(checkpoints["bert-embed"])), *modules()]).save(str(folder))
        folders[name] = folder
        assert main(["build", str(folder), "--repository", str(root / "repository"), "--name", name]) == 0, name
    from sentence_transformers import CrossEncoder

    from support.checkpoints import make_checkpoint

    one_label = make_checkpoint("bert-seq-3", root / "bert-seq-1", seed=5, num_labels=1)
    for name, activation in CROSS_ENCODERS.items():
        folder = root / name
        CrossEncoder(str(one_label), activation_fn=activation()).save(str(folder))
        folders[name] = folder
        assert main(["build", str(folder), "--repository", str(root / "repository"), "--name", name]) == 0, name
    with running_triton(root / "repository", root / "tritonserver.log") as server:
        yield server, folders


CROSS_ENCODERS = {"ce_identity": lambda: torch.nn.Identity(), "ce_sigmoid": lambda: torch.nn.Sigmoid()}
PAIRS = [("what is the capital of France?", "Paris is the capital of France."), ("hi", "a b c d e f g")]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", list(CROSS_ENCODERS))
def test_cross_encoder_scores_equal_cross_encoder_predict(served, name, protocol):
    from sentence_transformers import CrossEncoder

    server, folders = served
    expected = CrossEncoder(str(folders[name]), device="cpu").predict(PAIRS, convert_to_numpy=True)
    out = infer(protocol, server, name, [q for q, _ in PAIRS], pairs=[d for _, d in PAIRS])[Tensor.SCORES]
    assert np.abs(out[:, 0] - expected).max() <= TOL, (out[:, 0], expected)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", list(_shapes()))
def test_served_pipeline_equals_sentence_transformers(served, name, protocol):
    from sentence_transformers import SentenceTransformer

    server, folders = served
    expected = SentenceTransformer(str(folders[name]), device="cpu").encode(TEXTS, convert_to_numpy=True)
    actual = infer(protocol, server, name, TEXTS)[Tensor.EMBEDDING]
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.abs(actual - expected).max() <= TOL, np.abs(actual - expected).max()


PROMPTS = {"query": "query: ", "document": "passage: ", "none": ""}
PROMPTED = {"prompted": ("mean", True), "prompted_excluded": ("mean", False), "prompted_weighted": ("weightedmean", False)}


@pytest.fixture(scope="module")
def prompted(tmp_path_factory, checkpoints):
    """Folders whose config_sentence_transformers.json carries prompts and a default, with include_prompt true / false."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    root = tmp_path_factory.mktemp("st_prompts")
    folders = {}
    for name, (mode, include) in PROMPTED.items():
        modules = [Transformer(str(checkpoints["bert-embed"])), Pooling(32, pooling_mode=mode, include_prompt=include),
                   Normalize()]
        SentenceTransformer(modules=modules, prompts=PROMPTS, default_prompt_name="query").save(str(root / name))
        folders[name] = root / name
        assert main(["build", str(root / name), "--repository", str(root / "repository"), "--name", name]) == 0
    with running_triton(root / "repository", root / "tritonserver.log") as server:
        yield server, folders


def _prompt_inputs(protocol, texts, prompt_name):
    from support.raw import make_inputs, _MODULES

    inputs = make_inputs(protocol, texts)
    if prompt_name is not None:
        tensor = _MODULES[protocol].InferInput("PROMPT_NAME", [len(texts), 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[prompt_name.encode()]] * len(texts), dtype=object))
        inputs.append(tensor)
    return inputs


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", list(PROMPTED))
@pytest.mark.parametrize("prompt_name", [None, "", "query", "document", "none"])
def test_prompts_apply_as_sentence_transformers_applies_them(prompted, name, prompt_name, protocol):
    from sentence_transformers import SentenceTransformer

    from support.raw import client

    server, folders = prompted
    reference = SentenceTransformer(str(folders[name]), device="cpu")
    expected = reference.encode(TEXTS, prompt_name=prompt_name or None, convert_to_numpy=True)  # None/"": the default
    result = client(protocol, server).infer(name, _prompt_inputs(protocol, TEXTS, prompt_name))
    actual = result.as_numpy(Tensor.EMBEDDING)
    assert np.abs(actual - expected).max() <= TOL, np.abs(actual - expected).max()
    plain = reference.encode(TEXTS, prompt_name="none", convert_to_numpy=True)
    if prompt_name != "none":  # the prompt changed the answer: it was applied, not ignored
        assert np.abs(actual - plain).max() > 1e-3


def test_prompt_names_are_checked_and_counted(prompted):
    from tritonclient.utils import InferenceServerException

    from support.raw import client

    server, _ = prompted
    with pytest.raises(InferenceServerException, match=r"PROMPT_NAME\[0\] is 'passage'; this model's prompts: "
                                                       r"'document', 'none', 'query'"):
        client("grpc", server).infer("prompted", _prompt_inputs("grpc", ["hi"], "passage"))
    with_prompt = client("grpc", server).infer("prompted", _prompt_inputs("grpc", ["hi"], "query"))
    without = client("grpc", server).infer("prompted", _prompt_inputs("grpc", ["hi"], "none"))
    # NUM_TOKENS counts what was encoded: the prompt's tokens too
    assert with_prompt.as_numpy(Tensor.NUM_TOKENS)[0, 0] > without.as_numpy(Tensor.NUM_TOKENS)[0, 0]


def test_the_client_sends_prompt_name(prompted):
    from sentence_transformers import SentenceTransformer

    from triton_pooling import PoolingClient

    server, folders = prompted
    expected = SentenceTransformer(str(folders["prompted_excluded"]), device="cpu").encode(
        TEXTS, prompt_name="document", convert_to_numpy=True)
    with PoolingClient(server.options.grpc_url) as pooling:
        outs = pooling.embed(TEXTS, model="prompted_excluded", prompt_name="document")
    assert np.abs(np.stack([o.outputs.embedding for o in outs]) - expected).max() <= TOL
