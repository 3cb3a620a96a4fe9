"""Run prompts through a model: the client package plans the Triton requests (split at the model's
max_batch_size, option inputs always sent, token ids grouped by length) and puts the answers back in
input order; this module sends them over the pool, at most `max_calls` at once per HTTP request, and
keeps the output a request holds under `max_output_bytes` (output_budget.py)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from triton_pooling.batching import EncodeOptions, plan_requests
from triton_pooling.discovery import ModelInfo
from triton_pooling.outputs import PoolingRequestOutput
from triton_pooling.prompts import NormalizedPrompt, normalize_prompts
from triton_pooling.scoring import score_plan
from triton_pooling_contract.tasks import OUTPUT_TENSOR

from .fanout import gather_bounded
from .output_budget import OutputTally, estimated_bytes
from .pool import TritonPool

DEFAULT_MAX_OUTPUT_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_CALLS = 8


class TritonEncoder:
    """Pooling requests to Triton for the gateway (not a runtime encoder: those are triton_pooling_backend.encoders)."""

    def __init__(self, pool: TritonPool, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
                 max_calls: int = DEFAULT_MAX_CALLS):
        self._pool = pool
        self.max_output_bytes = max_output_bytes
        self.max_calls = max_calls
        # Each model's full-size output row width, learnt from its answers (the /health probe's included):
        # the config says [-1] / [-1, -1], and the output-size estimate needs it.
        self.widths: dict[str, int] = {}

    async def encode(self, model: ModelInfo, prompts: Sequence[NormalizedPrompt], options: EncodeOptions,
                     max_tokens: int | None = None, return_tokens: bool = False) -> list[PoolingRequestOutput]:
        """`max_tokens`: the model's token limit when its config states one (bounds token-level rows);
        `return_tokens`: a sparse model's tokens too (SPARSE_TOKENS, asked for only then)."""
        plan = plan_requests(prompts, model, options, return_tokens=return_tokens)
        tally = OutputTally(model, self.max_output_bytes, len(plan.requests))
        tally.check_estimate(estimated_bytes(model, prompts, options, max_tokens, self.widths.get(model.name)),
                             len(prompts))
        names = plan.outputs
        calls = [lambda r=r: self._pool.infer(model.name, r.tensors, names) for r in plan.requests]
        responses = await gather_bounded(calls, self.max_calls, tally.add)
        self.learn_width(model, options, responses[0])
        return plan.assemble(responses)

    async def probe(self, model: ModelInfo, prompt: NormalizedPrompt, timeout: float, queue_timeout: float) -> None:
        """One tiny inference with its own client deadline and queue timeout (the /health probe)."""
        options = EncodeOptions()
        plan = plan_requests([prompt], model, options)
        (request,) = plan.requests
        response = await self._pool.infer(model.name, request.tensors, plan.outputs, timeout=timeout,
                                          queue_timeout=queue_timeout)
        self.learn_width(model, options, response)

    def learn_width(self, model: ModelInfo, options: EncodeOptions, response: Mapping[str, np.ndarray]) -> None:
        # A sparse answer's width is its request's most nonzeros, no bound on another request's: not learnt.
        if options.dimensions is None and not model.sparse:
            self.widths[model.name] = int(response[OUTPUT_TENSOR[model.task]].shape[-1])

    async def score(self, model: ModelInfo, queries: Sequence[str], documents: Sequence[str],
                    use_activation: bool | None, truncate_prompt_tokens: int | None,
                    max_tokens: int | None = None) -> tuple[list[float], int]:
        """vLLM's score: embed → cosine (a sparse model: the dot product), one-label seq_classify → the pair's
        score, token_embed → MaxSim.
        Returns one score per pair and the prompt tokens used."""
        plan = score_plan(model, list(queries), list(documents))
        outputs = [o for prompts, role in plan.groups for o in await self.encode(
            model, normalize_prompts(prompts), EncodeOptions(None, use_activation, truncate_prompt_tokens, role),
            max_tokens)]
        return [r.outputs.score for r in plan.finish(outputs)], sum(o.num_tokens for o in outputs)
