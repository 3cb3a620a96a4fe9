"""LLM rerankers scored from token logits (issue 20, item 1), built with the CLI and served on a real tritonserver:
a seeded Qwen3ForCausalLM with the shipped Qwen3-Reranker template (from_2_way_softmax over no,yes) and one with the
bge-reranker-v2-gemma template (no_post_processing over Yes), Gemma2ForCausalLM ones with softcapped logits, compared over HTTP and gRPC with transformers' causal LM
on the templated text (the label tokens' logits at the last position, the method's formula) within 1e-5. The served
graph holds no vocabulary-size head."""

from __future__ import annotations

import numpy as np
import pytest

from triton_pooling_contract.tasks import Tensor
from triton_pooling_server.cli import main

from support.llm_rerankers import GEMMA_TEMPLATE, QWEN3_TEMPLATE, make_reranker, reference_scores, render
from support.raw import PROTOCOLS, infer
from support.triton import running_triton

pytestmark = pytest.mark.integration
TOL = 1e-5
PAIRS = [("what is the capital of France?", "Paris is the capital of France."), ("hi", "yes no Yes"),
         ("a much longer query about rivers and the cities beside them", "short"), ("q", "d")]
MODELS = {
    "qwen3_reranker": (dict(tie_word_embeddings=True), ("no", "yes"), "from_2_way_softmax", QWEN3_TEMPLATE),
    "gemma_style_reranker": (dict(tie_word_embeddings=False), ("Yes",), "no_post_processing", GEMMA_TEMPLATE),
    # Gemma-2 softcaps its logits: the label head must too (and from_2_way_softmax then cannot fold to one row)
    "gemma2_softcapped": (dict(family="gemma2"), ("Yes",), "no_post_processing", GEMMA_TEMPLATE),
    "gemma2_softcapped_2way": (dict(family="gemma2"), ("no", "yes"), "from_2_way_softmax", QWEN3_TEMPLATE),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("llm_rerankers")
    checkpoints = {}
    for seed, (name, (shape, tokens, method, template)) in enumerate(MODELS.items()):
        checkpoints[name] = make_reranker(root / name, seed=seed + 1, **shape)
        assert main(["build", str(checkpoints[name]), "--repository", str(root / "repository"), "--name", name,
                     "--classifier-from-tokens", ",".join(tokens), "--classifier-method", method,
                     "--score-template", str(template)]) == 0, name
    with running_triton(root / "repository", root / "tritonserver.log") as server:
        yield server, checkpoints, root / "repository"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", list(MODELS))
def test_scores_equal_the_causal_lm_on_the_templated_text(served, name, protocol):
    server, checkpoints, _ = served
    _, tokens, method, template = MODELS[name]
    expected = reference_scores(checkpoints[name], [render(template, q, d) for q, d in PAIRS], list(tokens), method)
    out = infer(protocol, server, name, [q for q, _ in PAIRS], pairs=[d for _, d in PAIRS])
    assert out[Tensor.SCORES].shape == expected.shape == (len(PAIRS), 1)
    assert np.abs(out[Tensor.SCORES] - expected).max() <= TOL, (out[Tensor.SCORES], expected)


def test_a_text_without_its_pair_is_refused(served):
    from tritonclient.utils import InferenceServerException

    server, _, _ = served
    with pytest.raises(InferenceServerException, match="has no TEXT_PAIR"):
        infer("http", server, "qwen3_reranker", ["only a query"])


@pytest.mark.parametrize("name", list(MODELS))
def test_graph_computes_only_the_label_rows(served, name):
    """No initializer of the graph is a [vocab, hidden] output head used by a MatMul: only the embedding table."""
    import json

    import onnx

    _, checkpoints, repository = served
    config = json.loads((checkpoints[name] / "config.json").read_text())
    # shapes only: the weights may be external data, hard-linked from the artifact cache (onnx refuses to read those)
    graph = onnx.load(str(repository / name / "1" / "encoder.onnx"), load_external_data=False).graph
    vocab_sized = {i.name for i in graph.initializer if config["vocab_size"] in tuple(i.dims)}
    used_by = {n.op_type for n in graph.node for x in n.input if x in vocab_sized}
    assert used_by <= {"Gather"}, used_by
    assert [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim][-1] == 1
