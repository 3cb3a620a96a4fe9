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
