"""Run prompts through a model: the client package plans the Triton requests (split at the model's
max_batch_size, option inputs always sent, token ids grouped by length) and puts the answers back in
input order; this module only sends them over the pool, concurrently."""

from __future__ import annotations

import asyncio
from typing import Sequence

from triton_pooling.batching import EncodeOptions, plan_requests
from triton_pooling.discovery import ModelInfo
from triton_pooling.outputs import PoolingRequestOutput
from triton_pooling.prompts import NormalizedPrompt, normalize_prompts
from triton_pooling.scoring import score_plan
from triton_pooling_contract.tasks import OUTPUT_TENSOR, Tensor

from .pool import TritonPool


class TritonEncoder:
    """Pooling requests to Triton for the gateway (not a runtime encoder: those are triton_pooling_backend.encoders)."""

    def __init__(self, pool: TritonPool):
        self._pool = pool

    async def encode(self, model: ModelInfo, prompts: Sequence[NormalizedPrompt],
                     options: EncodeOptions) -> list[PoolingRequestOutput]:
        plan = plan_requests(prompts, model, options)
        names = (OUTPUT_TENSOR[model.task], Tensor.NUM_TOKENS)
        calls = [self._pool.infer(model.name, r.tensors, names) for r in plan.requests]
        if len(calls) == 1:
            return plan.assemble([await calls[0]])
        tasks = [asyncio.ensure_future(c) for c in calls]
        try:
            return plan.assemble(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:  # one failed: the others are not worth waiting for
                t.cancel()
            raise

    async def score(self, model: ModelInfo, queries: Sequence[str], documents: Sequence[str],
                    use_activation: bool | None, truncate_prompt_tokens: int | None) -> tuple[list[float], int]:
        """vLLM's score: embed → cosine, one-label seq_classify → the pair's score, token_embed → MaxSim.
        Returns one score per pair and the prompt tokens used."""
        plan = score_plan(model, list(queries), list(documents))
        outputs = await self.encode(model, normalize_prompts(plan.prompts),
                                    EncodeOptions(None, use_activation, truncate_prompt_tokens))
        return [r.outputs.score for r in plan.finish(outputs)], sum(o.num_tokens for o in outputs)
