"""SPLADE sparse embeddings (issue 20, item 2), built with a plain `triton-pooling build` from both layouts (a
sentence-transformers SparseEncoder folder, a plain BertForMaskedLM checkpoint; plus SpladePooling's sum /
log1p_relu variant and the OpenVINO runtime), served on a real tritonserver and compared over HTTP and gRPC with
SparseEncoder.encode: the same nonzero entries, every weight within 1e-5. No dense vocabulary-size vector is sent."""

from __future__ import annotations

import numpy as np
import pytest

from triton_pooling_contract.tasks import Tensor
from triton_pooling_server.cli import main

from support.raw import PROTOCOLS, infer
from support.sparse import as_dense, make_splade, reference_weights
from support.triton import running_triton

pytestmark = pytest.mark.integration
TOL = 1e-5
TEXTS = ["Hello world.", "Short", "Paris is the capital of France, and it sits on the Seine river.",
         "a b c d e f g h i j k l m n o p"]
# name -> (layout, SpladePooling options, extra build flags)
MODELS = {
    "splade_folder": ("sparse_encoder", dict(strategy="max", activation="relu"), []),
    "splade_masked_lm": ("masked_lm", dict(strategy="max", activation="relu"), []),
    "splade_sum_log1p": ("sparse_encoder", dict(strategy="sum", activation="log1p_relu"), []),
    "splade_openvino": ("masked_lm", dict(strategy="max", activation="relu"), ["--runtime", "openvino"]),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("sparse")
    checkpoints = {}
    for seed, (name, (layout, options, flags)) in enumerate(MODELS.items()):
        checkpoints[name] = make_splade(root / name, layout, seed=seed, **options)
        assert main(["build", str(checkpoints[name]), "--repository", str(root / "repository"), "--name", name,
                     *flags]) == 0, name
    with running_triton(root / "repository", root / "tritonserver.log") as server:
        yield server, checkpoints


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", list(MODELS))
def test_sparse_weights_equal_sparse_encoder(served, name, protocol):
    server, checkpoints = served
    expected = reference_weights(checkpoints[name], TEXTS, **MODELS[name][1])
    out = infer(protocol, server, name, TEXTS)
    assert Tensor.EMBEDDING not in out
    indices, values = out[Tensor.SPARSE_INDICES], out[Tensor.SPARSE_VALUES]
    served_dense = as_dense(indices, values, expected.shape[1])
    assert np.abs(served_dense - expected).max() <= TOL
    for row in range(len(TEXTS)):
        kept = indices[row][indices[row] >= 0]
        assert kept.tolist() == np.flatnonzero(expected[row]).tolist()  # the same support, ids ascending
        assert 0 < len(kept) < expected.shape[1] // 10  # a few hundred of the 30,523 entries, not a dense vector
        assert (values[row][indices[row] < 0] == 0).all()


def test_sparse_tokens_are_the_tokenizer_s_tokens(served):
    import transformers

    server, checkpoints = served
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(checkpoints["splade_folder"]))
    out = infer("grpc", server, "splade_folder", TEXTS[:2])
    for row in range(2):
        ids = out[Tensor.SPARSE_INDICES][row]
        tokens = [t.decode() for t in out[Tensor.SPARSE_TOKENS][row][ids >= 0]]
        assert tokens == tokenizer.convert_ids_to_tokens(ids[ids >= 0].tolist())


def test_use_activation_normalizes_the_sparse_vector_and_dimensions_is_refused(served):
    from tritonclient.utils import InferenceServerException

    server, checkpoints = served
    expected = reference_weights(checkpoints["splade_masked_lm"], TEXTS[:1])
    out = infer("http", server, "splade_masked_lm", TEXTS[:1], USE_ACTIVATION=True)
    dense = as_dense(out[Tensor.SPARSE_INDICES], out[Tensor.SPARSE_VALUES], expected.shape[1])
    assert np.abs(dense - expected / np.linalg.norm(expected, axis=1, keepdims=True)).max() <= TOL
    with pytest.raises(InferenceServerException, match="DIMENSIONS"):
        infer("http", server, "splade_masked_lm", TEXTS[:1], DIMENSIONS=8)


def test_truncation_keeps_the_last_tokens_as_for_dense_models(served):
    server, checkpoints = served
    out = infer("grpc", server, "splade_folder", [TEXTS[2]], TRUNCATE_PROMPT_TOKENS=6)
    assert out[Tensor.NUM_TOKENS].tolist() == [[6]]


def test_the_torch_runtime_serves_the_same_sparse_weights(served):
    """`--runtime torch` runs the checkpoint with the same SPLADE pooling (encoders/sparse_head.py), in process."""
    from triton_pooling_contract.definition import ModelDefinition
    from triton_pooling_contract.parameters import Runtime
    from triton_pooling_contract.tasks import PoolingTask, PoolingType
    from triton_pooling_server.builder.artifact import load_service

    _, checkpoints = served
    path = checkpoints["splade_sum_log1p"]
    service = load_service(ModelDefinition(PoolingTask.EMBED, str(path), pooling_type=PoolingType.SPLADE,
                                           use_activation=False, runtime=Runtime.TORCH, checkpoint_path=path))
    expected = reference_weights(path, TEXTS)
    (answer,) = service.handle([{Tensor.TEXT: np.array([[t.encode()] for t in TEXTS], dtype=object)}])
    dense = as_dense(answer[Tensor.SPARSE_INDICES], answer[Tensor.SPARSE_VALUES], expected.shape[1])
    assert np.abs(dense - expected).max() <= TOL
