"""Ensemble step 3: the encoder's output → the task's outputs, with the Python backend's pooling and heads.

embed / token_embed get hidden states and pool them (CLS / MEAN / LAST / ALL), then Matryoshka + L2;
seq_classify / token_classify get the checkpoint's own logits, then STEP selection and the activation."""

from __future__ import annotations

import json

import numpy as np

from triton_pooling_contract.ensemble import ATTENTION_MASK, INPUT_IDS
from triton_pooling_contract.tasks import OPTION_UNSET, PoolingTask, Tensor

from ..checkpoint import check_servable
from ..heads import apply_head, classifier_activation
from ..outputs import pack_outputs
from ..pooling import pool_sequences, pool_tokens
from .step import StepModel


class HeadStep(StepModel):
    def setup(self) -> None:
        self.definition = definition = self.step_definition()
        self.task = definition.task
        _, self.pooling = check_servable(definition)
        hf_config = json.loads((definition.checkpoint_path / "config.json").read_text(encoding="utf-8"))
        labels = hf_config.get("num_labels") or len(hf_config.get("id2label") or {}) or 2
        self.activation = classifier_activation(hf_config.get("problem_type"), int(labels))
        self.encoded_name = self.config["input"][0]["name"]

    def answer(self, tensors):
        encoded = np.ascontiguousarray(tensors[self.encoded_name], dtype=np.float32)
        mask = np.asarray(tensors[ATTENTION_MASK])
        ids = np.asarray(tensors[INPUT_IDS])
        dims = _per_row(tensors.get(Tensor.DIMENSIONS), len(mask))
        activations = _per_row(tensors.get(Tensor.USE_ACTIVATION), len(mask))
        task = self.task
        if task is PoolingTask.EMBED:
            rows = list(pool_sequences(encoded, mask, self.pooling))
        elif task is PoolingTask.SEQ_CLASSIFY:
            rows = list(encoded)  # the engine ran the checkpoint's own pooling and classifier
        else:
            step_tag = self.definition.step_tag_id
            rows = pool_tokens(encoded, mask, ids, self.pooling, step_tag)
            if self.definition.returned_token_ids:
                rows = [r[:, list(self.definition.returned_token_ids)] for r in rows]
        definition = self.definition
        results = [
            apply_head(task, r, d, definition.use_activation if a is None else bool(a), self.activation)
            for r, d, a in zip(rows, dims, activations)
        ]
        return pack_outputs(task, results, mask.sum(axis=1).tolist())


def _per_row(values, batch: int) -> list:
    """An optional [B, 1] option tensor → one value per text; absent or -1 → None (the model's default)."""
    if values is None:
        return [None] * batch
    flat = np.asarray(values).reshape(-1).tolist()
    return [None if (not isinstance(v, bool) and v == OPTION_UNSET) else v for v in flat]
