"""SPLADE (sparse) builds decided from the checkpoint's JSON alone: masked LMs and SparseEncoder folders become
sparse embed models; every option that would serve them differently is refused, naming it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from triton_pooling_contract.st_pipeline import Splade
from triton_pooling_contract.tasks import PoolingTask, PoolingType, Tensor
from triton_pooling_server.builder import BuildError, BuildRequest, inspect_checkpoint, resolve
from triton_pooling_server.builder.config_text import ModelSpec, render_config

from unit.build_helpers import fake_checkpoint

ST = "sentence_transformers.sparse_encoder.modules."


def sparse_folder(path, modules=None, transformer_task="fill-mask", splade=None):
    """A SparseEncoder folder as sentence-transformers 6 saves it (Transformer with transformer_task fill-mask)."""
    fake_checkpoint(path, ("BertForMaskedLM",))
    entries = modules or [("", "sentence_transformers.base.modules.transformer.Transformer"),
                          ("1_SpladePooling", ST + "splade_pooling.SpladePooling")]
    (path / "modules.json").write_text(json.dumps(
        [{"idx": i, "name": str(i), "path": p, "type": t} for i, (p, t) in enumerate(entries)]))
    for folder, _ in entries:
        if folder:
            (path / folder).mkdir(exist_ok=True)
            (path / folder / "config.json").write_text(json.dumps(splade or {"pooling_strategy": "max",
                                                                              "activation_function": "relu"}))
    (path / "sentence_bert_config.json").write_text(json.dumps({"transformer_task": transformer_task}))
    return path


def build(path, **request):
    return resolve(BuildRequest(checkpoint=path, **request), inspect_checkpoint(path))


def test_a_masked_lm_is_a_sparse_embed_model_by_default(tmp_path):
    model = build(fake_checkpoint(tmp_path / "mlm", ("BertForMaskedLM",)))
    assert (model.spec.task, model.pooling) == (PoolingTask.EMBED, PoolingType.SPLADE)
    assert model.definition.use_activation is False  # served as computed, as SparseEncoder and vLLM
    assert inspect_checkpoint(tmp_path / "mlm").splade == Splade("max", "relu")


def test_a_sparse_encoder_folder_keeps_its_splade_options(tmp_path):
    path = sparse_folder(tmp_path / "st", splade={"pooling_strategy": "sum", "activation_function": "log1p_relu"})
    model = build(path)
    assert model.pooling is PoolingType.SPLADE
    assert inspect_checkpoint(path).splade == Splade("sum", "log1p_relu")


def test_the_config_declares_sparse_outputs_and_no_dense_vector(tmp_path):
    model = build(fake_checkpoint(tmp_path / "mlm", ("BertForMaskedLM",)))
    text = render_config(ModelSpec("sparse", model.definition))
    for name, kind in ((Tensor.SPARSE_INDICES, "TYPE_INT32"), (Tensor.SPARSE_VALUES, "TYPE_FP32"),
                       (Tensor.SPARSE_TOKENS, "TYPE_STRING")):
        assert f'name: "{name}" data_type: {kind} dims: [ -1 ]' in text
    assert Tensor.EMBEDDING not in text


@pytest.mark.parametrize("request_options, message", [
    (dict(chunked_processing=True), "--enable-chunked-processing averages dense chunk vectors"),
    (dict(matryoshka_dimensions="all"), "--matryoshka-dimensions is set, but a SPLADE model"),
    (dict(runtime="tensorrt"), "--runtime tensorrt does not build their masked-LM pooling"),
    (dict(task="token_embed"), "task 'token_embed' is not served for it"),
])
def test_options_that_would_serve_a_sparse_encoder_differently_are_refused(tmp_path, request_options, message):
    with pytest.raises(BuildError, match=message):
        build(sparse_folder(tmp_path / "st"), **request_options)


def test_splade_pooling_needs_a_masked_lm_head(tmp_path):
    with pytest.raises(BuildError, match=r"SPLADE pools a masked-LM head's logits.*\['BertModel'\]"):
        build(fake_checkpoint(tmp_path / "bert"), pooling_type="splade")


@pytest.mark.parametrize("modules, transformer_task, splade, message", [
    ([("", "sentence_transformers.base.modules.transformer.Transformer"),
      ("1_SparseStaticEmbedding", ST + "sparse_static_embedding.SparseStaticEmbedding")], "fill-mask", None,
     "module 1_SparseStaticEmbedding .*SparseStaticEmbedding.*not served"),
    (None, None, None, r"Transformer -> SpladePooling \(transformer_task not set\)"),
    (None, "fill-mask", {"pooling_strategy": "mean", "activation_function": "relu"},
     "pooling_strategy 'mean'.*served: pooling_strategy 'max', 'sum'"),
])
def test_sparse_pipelines_not_served_exactly_are_refused_by_name(tmp_path, modules, transformer_task, splade, message):
    with pytest.raises(BuildError, match=message):
        build(sparse_folder(tmp_path / "st", modules, transformer_task, splade))


def test_sparse_outputs_keep_every_nonzero_in_id_order_and_pad_with_minus_one():
    from triton_pooling_backend.outputs import pack_sparse

    rows = [np.array([0.0, 0.5, 0.0, 2.0], np.float32), np.array([0.0, 0.0, 0.25, 0.0], np.float32)]
    out = pack_sparse(rows, [3, 2], lambda i: f"t{i}")
    assert out[Tensor.SPARSE_INDICES].tolist() == [[1, 3], [2, -1]]
    assert out[Tensor.SPARSE_VALUES].tolist() == [[0.5, 2.0], [0.25, 0.0]]
    assert out[Tensor.SPARSE_TOKENS].tolist() == [[b"t1", b"t3"], [b"t2", b""]]
    assert out[Tensor.NUM_TOKENS].tolist() == [[3], [2]]
