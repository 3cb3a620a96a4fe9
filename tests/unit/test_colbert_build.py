"""ColBERT folders decided from their JSON alone: PyLate's keys and MultiVectorEncoder's knobs read as
MultiVectorEncoder reads them, and every module or option that would score differently refused by name."""

from __future__ import annotations

import json
import string

import pytest

from triton_pooling_contract.late_interaction import QUERY, Expansion
from triton_pooling_contract.tasks import PoolingTask
from triton_pooling_server.builder import BuildError, BuildRequest, inspect_checkpoint, resolve

from unit.build_helpers import fake_checkpoint

MVE = "sentence_transformers.base.modules."


def colbert_folder(path, st_config=None, sbert=None, modules=None, mask=None):
    fake_checkpoint(path, ("BertModel",))
    entries = modules or [("", MVE + "transformer.Transformer"), ("1_Dense", "pylate.models.Dense.Dense")]
    (path / "modules.json").write_text(json.dumps(
        [{"idx": i, "name": str(i), "path": p, "type": t} for i, (p, t) in enumerate(entries)]))
    for folder, kind in entries:
        if folder:
            (path / folder).mkdir(exist_ok=True)
            config = mask if kind.endswith("MultiVectorMask") else {
                "in_features": 32, "out_features": 16, "bias": False,
                "activation_function": "torch.nn.modules.linear.Identity"}
            (path / folder / "config.json").write_text(json.dumps(config or {}))
    (path / "config_sentence_transformers.json").write_text(json.dumps(st_config if st_config is not None else {
        "model_type": "ColBERT", "query_prefix": "[unused0]", "document_prefix": "[unused1]", "query_length": 32,
        "document_length": 180}))
    (path / "sentence_bert_config.json").write_text(json.dumps(sbert or {"max_seq_length": 179}))
    (path / "tokenizer_config.json").write_text(json.dumps({"mask_token": "[MASK]", "model_max_length": 512}))
    return path


def build(path, **request):
    return resolve(BuildRequest(checkpoint=path, **request), inspect_checkpoint(path))


def test_a_pylate_folder_is_token_embed_with_its_prefixes_as_role_prompts(tmp_path):
    path = colbert_folder(tmp_path / "pylate")
    model = build(path)
    assert model.spec.task is PoolingTask.TOKEN_EMBED
    assert dict(model.definition.prompts) == {"query": "[unused0]", "document": "[unused1]"}
    assert model.definition.max_tokens is None  # not max_seq_length 179: the roles' lengths decide
    late = inspect_checkpoint(path).sentence_transformers.late_interaction
    assert late.expansion == Expansion("fixed", 32, False) and late.expansion_token == "[MASK]"
    assert (late.length_for(QUERY, 512), late.length_for("document", 512)) == (32, 180)
    assert late.skiplist_words == tuple(string.punctuation)


def test_without_query_expansion_query_length_is_the_cap(tmp_path):
    path = colbert_folder(tmp_path / "pylate", {"query_prefix": "[Q] ", "query_length": 12, "do_query_expansion": False})
    late = inspect_checkpoint(path).sentence_transformers.late_interaction
    assert late.expansion is None and late.length_for(QUERY, 512) == 12 and late.length_for("document", 300) == 300


NATIVE = [("", MVE + "transformer.Transformer"), ("1_Dense", MVE + "dense.Dense"),
          ("2_MultiVectorMask", "sentence_transformers.multi_vector_encoder.modules.multi_vector_mask.MultiVectorMask"),
          ("3_Normalize", MVE + "normalize.Normalize")]


@pytest.mark.parametrize("kw, message", [
    (dict(st_config={"model_type": "MultiVectorEncoder", "similarity_fn_name": "meanmaxsim"}, modules=NATIVE),
     "similarity_fn_name 'meanmaxsim'"),
    (dict(st_config={"model_type": "MultiVectorEncoder"}, modules=NATIVE, mask={"keep_only_token_ids": [5]}),
     "keep_only_token_ids"),
    (dict(st_config={"model_type": "MultiVectorEncoder"}, modules=NATIVE[:3]), "is Transformer -> Dense -> MultiVectorMask; served"),
    (dict(st_config={"model_type": "MultiVectorEncoder"}, modules=NATIVE,
          sbert={"query_expansion": {"strategy": "fixed", "length": 8, "token": "[PAD]"}}), "query_expansion token"),
    (dict(modules=[*NATIVE[:2], ("2_Pool", "sentence_transformers.multi_vector_encoder.modules.token_pooling."
                                           "HierarchicalTokenPooling")]), "HierarchicalTokenPooling.*not served"),
])
def test_options_that_would_score_differently_are_refused(tmp_path, kw, message):
    with pytest.raises(BuildError, match=message):
        build(colbert_folder(tmp_path / "c", **kw))


def test_a_colbert_folder_is_not_built_as_embed(tmp_path):
    with pytest.raises(BuildError, match="ColBERT.*task 'embed' is not served for it: build it as 'token_embed'"):
        build(colbert_folder(tmp_path / "c"), task="embed")


def test_a_dense_module_without_activation_uses_dense_s_default_tanh(tmp_path):
    from triton_pooling_contract.st_pipeline import activation_name, read_pipeline

    path = colbert_folder(tmp_path / "c")
    (path / "1_Dense" / "config.json").write_text(json.dumps({"in_features": 32, "out_features": 16}))
    assert activation_name(read_pipeline(path).of_kind("Dense")[0]) == "Tanh"
