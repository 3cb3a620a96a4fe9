"""The Hugging Face checkpoint run by torch: `runtime: torch` (GPU instances, bf16/fp16, or by choice), and
the reference every built graph is checked against. Imports torch and transformers when used, never before.

One function defines what each graph output is (`forward`), so the exported graph, the parity check and the
torch runtime compute the same thing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from triton_pooling_contract.parameters import DType, Runtime
from triton_pooling_contract.serving import GraphOutput
from triton_pooling_contract.tasks import PoolingTask

from ..errors import ModelConfigError
from .base import Encoder, EncoderBatch

AUTO_CLASS = {
    GraphOutput.HIDDEN_STATES: "AutoModel",
    GraphOutput.TOKEN_LOGITS: None,  # per task, below
    GraphOutput.SEQUENCE_LOGITS: "AutoModelForSequenceClassification",
    GraphOutput.SPARSE_WEIGHTS: "AutoModelForMaskedLM",
}


def auto_class_name(task: PoolingTask, output: GraphOutput) -> str:
    if output is GraphOutput.TOKEN_LOGITS:
        return "AutoModelForTokenClassification" if task is PoolingTask.TOKEN_CLASSIFY else \
            "AutoModelForSequenceClassification"
    return AUTO_CLASS[output]


def load_hf_model(checkpoint: Path, task: PoolingTask, output: GraphOutput, dtype: DType = DType.FLOAT32,
                  trust_remote_code: bool = False, allow_unsafe_weights: bool = False, device: str = "cpu",
                  token_head=None, splade=None):
    """`token_head`: (label tokens, ClassifierMethod) of an LLM reranker (ModelDefinition.token_head): the causal LM
    with its label rows as the per-token `score` head (token_head.py). `splade` (st_pipeline.Splade): the masked LM
    with SPLADE's pooling after it (sparse_head.py), for GraphOutput.SPARSE_WEIGHTS."""
    import torch
    import transformers

    if token_head is not None:
        from .token_head import load_token_score_model

        tokens, method = token_head
        return load_token_score_model(checkpoint, tokens, method, getattr(torch, dtype.value), trust_remote_code,
                                      allow_unsafe_weights).eval().to(device)
    model = getattr(transformers, auto_class_name(task, output)).from_pretrained(
        str(checkpoint), dtype=getattr(torch, dtype.value), trust_remote_code=trust_remote_code,
        use_safetensors=not allow_unsafe_weights,
    )
    if output is GraphOutput.SPARSE_WEIGHTS:
        from .sparse_head import splade_model

        return splade_model(model, splade).eval().to(device)
    if output is GraphOutput.TOKEN_LOGITS and task is PoolingTask.SEQ_CLASSIFY and not hasattr(model, "score"):
        raise ModelConfigError(
            f"pooling LAST/CLS/MEAN for seq_classify needs a per-token `score` head (decoder classifiers); "
            f"{type(model).__name__} pools inside its own head: use pooling_type NATIVE"
        )
    return model.eval().to(device)


def forward(model, task: PoolingTask, output: GraphOutput, input_ids, attention_mask, token_type_ids=None):
    """The graph output of a Hugging Face model, as torch tensors."""
    extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
    if output is GraphOutput.HIDDEN_STATES:
        return model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
    if output is GraphOutput.SPARSE_WEIGHTS:
        return model(input_ids, attention_mask, **extra)  # SpladeModel: pooled already
    if output is GraphOutput.TOKEN_LOGITS and task is PoolingTask.SEQ_CLASSIFY:
        hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        return model.score(hidden)  # per token; the backend pools LAST / CLS / MEAN by the mask
    return model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def accepts_token_type_ids(model) -> bool:
    import inspect

    inner = getattr(model, "masked_lm", model)  # a SPLADE model passes them on to its masked LM
    return "token_type_ids" in inspect.signature(inner.forward).parameters


class TorchEncoder(Encoder):
    runtime = Runtime.TORCH

    def __init__(self, model, task: PoolingTask, output: GraphOutput, device: str):
        self.model = model
        self.task = task
        self.output = output
        self.device = device
        self.on_cpu = device == "cpu"
        self.with_token_types = accepts_token_type_ids(model)

    def run(self, batch: EncoderBatch) -> np.ndarray:
        import torch

        def tensor(array):
            return None if array is None else torch.from_numpy(array).to(self.device)

        types = batch.token_type_ids if self.with_token_types else None
        with torch.inference_mode():
            out = forward(self.model, self.task, self.output, tensor(batch.input_ids), tensor(batch.attention_mask),
                          tensor(types))
        return out.float().cpu().numpy()
