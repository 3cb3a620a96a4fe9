"""The ensemble's tokenize and head steps without Triton: their setup reads the config Triton would pass,
and tokenize → (transformers as the engine) → head equals transformers per text (padding changes nothing)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

from triton_pooling_server.builder import BuildRequest, inspect_checkpoint, resolve
from triton_pooling_server.builder.tensorrt.layout import tensorrt_files
from triton_pooling_backend.ensemble.head_step import HeadStep
from triton_pooling_backend.ensemble.tokenize_step import TokenizeStep
from support.checkpoints import make_checkpoint, step_tag_id

TEXTS = ["Step 1: 2 + 2 = 4. <extra_0> Step 2: 4 * 3 = 12. <extra_0>", "x <extra_0>", "no steps"]


def step(cls, files, folder, tmp_path):
    """A step set up from its generated config.pbtxt, in the JSON form Triton hands the Python backend."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse(files[f"{folder}/config.pbtxt"], model_config_pb2.ModelConfig())
    model = cls()
    model.config = json.loads(json_format.MessageToJson(config, preserving_proto_field_name=True))
    model.model_dir = tmp_path / folder
    model.input_names = tuple(i["name"] for i in model.config["input"])
    model.setup()
    return model


def run_ensemble(kind, tmp_path, texts, auto_class, **request):
    ckpt = make_checkpoint(kind, tmp_path / kind, seed=3)
    if "step_tag_id" in request:
        request["step_tag_id"] = step_tag_id(ckpt)
    files = tensorrt_files(resolve(BuildRequest(checkpoint=ckpt, name="m", runtime="tensorrt", **request),
                                   inspect_checkpoint(ckpt)))
    tokenize, head = step(TokenizeStep, files, "m_tokenize", tmp_path), step(HeadStep, files, "m_head", tmp_path)
    text = np.array([[t.encode()] for t in texts], dtype=object)
    ids = tokenize.answer({"TEXT": text})
    model = getattr(transformers, auto_class).from_pretrained(str(ckpt)).eval()
    with torch.inference_mode():
        logits = model(**{k: torch.from_numpy(v) for k, v in ids.items()}).logits.numpy()
    return ckpt, model, head.answer({"logits": logits, **ids})


def test_prm_step_head_matches_transformers_per_text(tmp_path):
    ckpt, model, out = run_ensemble("qwen2-prm", tmp_path, TEXTS, "AutoModelForTokenClassification",
                                    step_tag_id=0, returned_token_ids=(1, 0))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(ckpt))
    tag = step_tag_id(ckpt)
    for i, text in enumerate(TEXTS):
        ids = tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            logits = model(**ids).logits[0].numpy()
        expected = torch.softmax(torch.from_numpy(logits[ids["input_ids"][0].numpy() == tag][:, [1, 0]]), -1).numpy()
        n = out["NUM_TOKENS"][i, 0]
        assert n == text.count("<extra_0>")
        np.testing.assert_allclose(out["TOKEN_SCORES"][i, :n], expected, atol=1e-5)


def test_sequence_classifier_head_applies_softmax_over_the_engine_logits(tmp_path):
    texts = ["short", "a somewhat longer sentence for padding"]
    ckpt, model, out = run_ensemble("bert-seq-3", tmp_path, texts, "AutoModelForSequenceClassification")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(ckpt))
    for i, text in enumerate(texts):
        with torch.inference_mode():
            logits = model(**tokenizer(text, return_tensors="pt")).logits[0]
        np.testing.assert_allclose(out["SCORES"][i], torch.softmax(logits, -1).numpy(), atol=1e-5)
        assert out["NUM_TOKENS"][i, 0] == len(tokenizer(text)["input_ids"])


def test_tokenize_step_refuses_texts_over_the_token_limit(tmp_path):
    from triton_pooling_backend.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"TEXT\[1\] has \d+ tokens; this model takes at most 4"):
        run_ensemble("bert-seq-3", tmp_path, ["hi", "one two three four five"], "AutoModelForSequenceClassification",
                     max_tokens=4)
