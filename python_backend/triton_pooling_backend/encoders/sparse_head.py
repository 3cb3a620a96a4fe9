"""SPLADE's pooling after a masked LM, in torch, so the exported graph returns one [V] row per text instead of
[T, V] logits (sentence-transformers' SpladePooling.forward, in eval mode):

    weights = max_t (or sum_t) log1p(relu(logits[t] * mask[t]))     (log1p applied twice for log1p_relu)

Imports torch when used (build time and `runtime: torch`), never in a lean stub."""

from __future__ import annotations


def splade_model(masked_lm, splade):
    """The masked LM with `splade` (st_pipeline.Splade) pooling its logits; keeps `.config` for the facts."""
    import torch

    class _Splade(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.masked_lm = masked_lm
            self.config = masked_lm.config
            self.strategy = splade.strategy
            self.twice = splade.activation == "log1p_relu"

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            logits = self.masked_lm(input_ids=input_ids, attention_mask=attention_mask, **extra).logits
            weights = torch.log1p(torch.relu(logits * attention_mask.unsqueeze(-1).to(logits.dtype)))
            if self.twice:
                weights = torch.log1p(weights)
            return weights.amax(dim=1) if self.strategy == "max" else weights.sum(dim=1)

    return _Splade()
