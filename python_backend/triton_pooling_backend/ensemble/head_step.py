"""Ensemble step 3: the encoder's output → the task's outputs, with the same pooler as the Python backend.

embed / token_embed get hidden states and pool them (CLS / MEAN / LAST / ALL), then Matryoshka + L2;
seq_classify gets the checkpoint's own pooled logits, token_classify its per-token logits (STEP selection),
then the activation the model definition names."""

from __future__ import annotations

import numpy as np

from triton_pooling_contract import rules
from triton_pooling_contract.ensemble import ATTENTION_MASK, ENCODER_GRAPH_OUTPUT, INPUT_IDS
from triton_pooling_contract.tasks import OPTION_UNSET, Tensor

from ..checkpoint import check_servable
from ..outputs import pack_outputs
from ..pooler import pooler_for
from .step import StepModel


class HeadStep(StepModel):
    def setup(self) -> None:
        self.definition = definition = self.step_definition()
        info, pooling = check_servable(definition)
        activation = definition.activation or rules.classifier_activation(info.problem_type, info.num_labels,
                                                                                   info.cross_encoder_activation)
        self.pooler = pooler_for(definition.task, pooling, ENCODER_GRAPH_OUTPUT[definition.task], activation,
                                 definition.step_tag_id, definition.returned_token_ids)
        self.encoded_name = self.config["input"][0]["name"]

    def answer(self, tensors):
        encoded = np.ascontiguousarray(tensors[self.encoded_name], dtype=np.float32)
        mask = np.asarray(tensors[ATTENTION_MASK])
        rows = self.pooler.pool(encoded, mask, np.asarray(tensors[INPUT_IDS]))
        dims = _per_row(tensors.get(Tensor.DIMENSIONS), len(mask))
        activations = _per_row(tensors.get(Tensor.USE_ACTIVATION), len(mask))
        default = self.definition.use_activation
        results = [self.pooler.finish(r, d, default if a is None else bool(a)) for r, d, a in zip(rows, dims, activations)]
        return pack_outputs(self.definition.task, results, mask.sum(axis=1).tolist())


def _per_row(values, batch: int) -> list:
    """An optional [B, 1] option tensor → one value per text; absent or -1 → None (the model's default)."""
    if values is None:
        return [None] * batch
    flat = np.asarray(values).reshape(-1).tolist()
    return [None if (not isinstance(v, bool) and v == OPTION_UNSET) else v for v in flat]
