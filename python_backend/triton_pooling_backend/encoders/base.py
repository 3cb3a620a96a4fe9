"""The encoder interface every runtime implements."""

from __future__ import annotations

import abc
import dataclasses

import numpy as np

from triton_pooling_contract.parameters import Runtime
from triton_pooling_contract.serving import GraphOutput


@dataclasses.dataclass(frozen=True)
class EncoderBatch:
    """Right-padded int64 [B, T] arrays; token_type_ids only for models that take segment ids."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray | None = None

    def feed(self, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        arrays = {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                  "token_type_ids": self.token_type_ids if self.token_type_ids is not None
                  else np.zeros_like(self.input_ids)}
        return {name: arrays[name] for name in names}


class Encoder(abc.ABC):
    runtime: Runtime
    output: GraphOutput
    on_cpu: bool = True  # CPU passes pad little (engine.micro_batches); GPU passes batch by the budget only
    # Pass widths are rounded up to this many tokens (engine.micro_batches' length buckets): 1 for runtimes whose
    # cost is flat in the shape; runtimes that compile kernels per shape set more.
    pass_width_multiple: int = 1

    @abc.abstractmethod
    def run(self, batch: EncoderBatch) -> np.ndarray:
        """float32 [B, T, X] (hidden states, token logits) or [B, L] (sequence logits)."""
