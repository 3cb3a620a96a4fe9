"""LLM rerankers scored from token logits (issue 20, item 1): `--classifier-from-tokens` / `--classifier-method` /
`--score-template` resolve into a seq_classify definition, refuse what they cannot serve naming the flag, the value
and what is allowed, round-trip through config.pbtxt, and the folded head equals the full causal LM's label logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_contract.parameters import ClassifierMethod, DefinitionError
from triton_pooling_contract.tasks import PoolingTask, PoolingType, Tensor
from triton_pooling_server.builder import BuildError, BuildRequest, inspect_checkpoint, resolve
from triton_pooling_server.builder.config_text import read_parameters, render_config

from support.llm_rerankers import GEMMA_TEMPLATE, QWEN3_TEMPLATE, make_reranker, reference_scores, render

PAIRS = [("what is the capital of France?", "Paris is the capital of France."), ("hi", "yes no Yes"),
         ("a much longer query about rivers and the cities beside them", "short")]


@pytest.fixture(scope="module")
def reranker(tmp_path_factory) -> Path:
    return make_reranker(tmp_path_factory.mktemp("llm_reranker") / "qwen3", seed=1)


def _resolve(checkpoint: Path, **options):
    return resolve(BuildRequest(checkpoint=checkpoint, **options), inspect_checkpoint(checkpoint))


def test_two_way_softmax_resolves_to_one_label_seq_classify(reranker):
    model = _resolve(reranker, classifier_from_token=("no", "yes"), classifier_method="from_2_way_softmax",
                     score_template=QWEN3_TEMPLATE.read_text())
    d = model.definition
    assert d.task is PoolingTask.SEQ_CLASSIFY and d.pooling_type is PoolingType.LAST
    assert d.activation.value == "sigmoid" and d.classifier_method is ClassifierMethod.FROM_2_WAY_SOFTMAX
    assert any("'no' = id" in line and "'yes' = id" in line for line in model.decisions)


def test_definition_round_trips_through_config_text(reranker):
    d = _resolve(reranker, classifier_from_token=("no", "yes"), classifier_method="from_2_way_softmax",
                 score_template=QWEN3_TEMPLATE.read_text()).spec
    params = read_parameters(render_config(d))
    back = ModelDefinition.from_parameters(params)
    assert back.score_template == QWEN3_TEMPLATE.read_text()
    assert back.classifier_from_token == ("no", "yes") and back.classifier_method is ClassifierMethod.FROM_2_WAY_SOFTMAX


def test_multi_token_label_is_refused_naming_it(reranker):
    with pytest.raises(BuildError, match=r"--classifier-from-tokens names 'maybe', which the tokenizer .* splits into 5"):
        _resolve(reranker, classifier_from_token=("no", "maybe"), classifier_method="from_2_way_softmax")


@pytest.mark.parametrize("options, message", [
    (dict(classifier_from_token=("no", "yes"), classifier_method="softmax"),
     r"--classifier-method is 'softmax'; allowed: 'from_2_way_softmax', 'no_post_processing'"),
    (dict(classifier_from_token=("yes",), classifier_method="from_2_way_softmax"),
     r"from_2_way_softmax needs exactly 2 tokens .*\['yes'\]"),
    (dict(classifier_from_token=("no", "yes")), r"--classifier-method is not given; allowed"),
    (dict(classifier_method="no_post_processing"), r"--classifier-from-tokens is not given"),
    (dict(task="embed", classifier_from_token=("yes",), classifier_method="no_post_processing"),
     r"applies to --task seq_classify; this build is embed"),
    (dict(task="embed", score_template="{{ query }} {{ document }}"),
     r"--score-template applies to task 'seq_classify'.*serves 'embed'"),
    (dict(classifier_from_token=("yes",), classifier_method="no_post_processing", score_template="{{ query }}"),
     r"--score-template never uses document"),
    (dict(classifier_from_token=("yes",), classifier_method="no_post_processing", score_template="{{ query "),
     r"--score-template is not a valid Jinja template"),
    (dict(classifier_from_token=("yes",), classifier_method="no_post_processing", pooling_type="NATIVE"),
     r"--pooling-type is 'NATIVE', but with --classifier-from-tokens"),
    (dict(classifier_from_token=("yes",), classifier_method="no_post_processing", runtime="tensorrt"),
     r"--runtime tensorrt does not fold label tokens"),
])
def test_wrong_options_are_refused(reranker, options, message):
    with pytest.raises(BuildError, match=message):
        _resolve(reranker, **options)


def test_a_causal_lm_without_label_tokens_cannot_be_seq_classify(reranker):
    with pytest.raises(BuildError, match=r"--task is 'seq_classify'.*supported tasks: 'embed', 'token_embed'"):
        _resolve(reranker, task="seq_classify")


def test_non_causal_lm_checkpoint_is_refused(checkpoints):
    with pytest.raises(BuildError, match=r"reads label-token logits from a causal LM's lm_head, but checkpoint .* "
                                         r"architectures \['BertForSequenceClassification'\]"):
        _resolve(checkpoints["bert-seq-3"], classifier_from_token=("no", "yes"), classifier_method="from_2_way_softmax")


def test_parameters_are_checked_on_the_stub_side_too():
    with pytest.raises(DefinitionError, match=r"parameter 'classifier_method' from_2_way_softmax needs exactly 2 tokens"):
        ModelDefinition.from_parameters({"pooling_task": "seq_classify", "checkpoint": ".",
                                         "classifier_from_token": '["yes"]', "classifier_method": "from_2_way_softmax"})
    with pytest.raises(DefinitionError, match=r"parameter 'classifier_from_token' is 'no,yes'; expected a JSON list"):
        ModelDefinition.from_parameters({"pooling_task": "seq_classify", "checkpoint": ".",
                                         "classifier_from_token": "no,yes", "classifier_method": "from_2_way_softmax"})


def test_template_on_a_text_without_pair_is_refused():
    from triton_pooling_backend.errors import InvalidInputError
    from triton_pooling_backend.request_parsing import TextInput
    from triton_pooling_backend.score_template import ScoreTemplate

    template = ScoreTemplate(QWEN3_TEMPLATE.read_text())
    with pytest.raises(InvalidInputError, match=rf"{Tensor.TEXT}\[1\] has no {Tensor.TEXT_PAIR}"):
        template.apply([TextInput(text="q", text_pair="d"), TextInput(text="q")])
    done = template.apply([TextInput(text="q", text_pair="d"), TextInput(input_ids=(1, 2))])
    assert done[0].text == render(QWEN3_TEMPLATE, "q", "d") and done[0].text_pair is None
    assert done[1].input_ids == (1, 2)  # pre-tokenized prompts pass as given


def test_shipped_templates_render_the_official_prompts():
    qwen = render(QWEN3_TEMPLATE, "Q?", "D.")
    assert qwen.startswith("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
                           "and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
                           "<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that "
                           "answer the query\n<Query>: Q?\n<Document>: D.")
    assert qwen.endswith("D.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert render(GEMMA_TEMPLATE, "Q?", "D.") == (
        "A: Q?\nB: D.\nGiven a query A and a passage B, determine whether the passage contains an answer to the query "
        "by providing a prediction of either 'Yes' or 'No'.")


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
@pytest.mark.parametrize("tokens, method, template", [
    (("no", "yes"), "from_2_way_softmax", QWEN3_TEMPLATE), (("Yes",), "no_post_processing", GEMMA_TEMPLATE)])
def test_served_scores_equal_the_causal_lm(reranker, tmp_path, monkeypatch, runtime, tokens, method, template):
    """In process: the folded head (lean graph and torch runtime) against the full causal LM's label logits."""
    from triton_pooling_server.builder.artifact import load_service

    monkeypatch.setenv("TRITON_POOLING_CACHE", str(tmp_path / "cache"))
    from triton_pooling_contract.parameters import Runtime
    import dataclasses

    d = _resolve(reranker, classifier_from_token=tokens, classifier_method=method,
                 score_template=template.read_text()).definition
    service = load_service(dataclasses.replace(d, runtime=Runtime(runtime)))
    texts = [render(template, q, doc) for q, doc in PAIRS]
    for activation in (True, False):
        request = {Tensor.TEXT: np.array([[q.encode()] for q, _ in PAIRS], dtype=object),
                   Tensor.TEXT_PAIR: np.array([[doc.encode()] for _, doc in PAIRS], dtype=object),
                   Tensor.USE_ACTIVATION: np.array([[activation]] * len(PAIRS))}
        got = service.handle([request])[0][Tensor.SCORES]
        expected = reference_scores(reranker, texts, list(tokens), method, activation)
        assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-5, (got, expected)
