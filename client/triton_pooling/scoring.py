"""`score(queries, documents)` as vLLM: pairing rules and the three ways to score a pair.

embed → cosine similarity (bi-encoder); a sparse (SPLADE) embed model → the dot product of the sparse vectors
(SparseEncoder's similarity); seq_classify with one label → the model scores the pair (cross-encoder, TEXT +
TEXT_PAIR); token_embed → MaxSim (late interaction, ColBERT).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from .discovery import ModelInfo
from .errors import InvalidRequestError
from .outputs import PoolingRequestOutput, ScoringOutput, ScoringRequestOutput
from .sparse import sparse_dot
from triton_pooling_contract.tasks import PoolingTask

SCORE_TASKS = (PoolingTask.EMBED, PoolingTask.SEQ_CLASSIFY, PoolingTask.TOKEN_EMBED)


def pair_up(queries: Any, documents: Any) -> list[tuple[Any, Any]]:
    """vLLM's rule: 1 query with N documents, or N with N (pairwise)."""
    queries = [queries] if isinstance(queries, str) else list(queries)
    documents = [documents] if isinstance(documents, str) else list(documents)
    if not queries or not documents:
        raise InvalidRequestError(f"score needs at least one query and one document; got {len(queries)} and {len(documents)}")
    if len(queries) == 1:
        return [(queries[0], d) for d in documents]
    if len(queries) != len(documents):
        raise InvalidRequestError(
            f"score takes 1 query and N documents, or N queries and N documents (pairwise); "
            f"got {len(queries)} queries and {len(documents)} documents"
        )
    return list(zip(queries, documents))


@dataclasses.dataclass(frozen=True)
class ScorePlan:
    """What to encode for a score call and how to turn the outputs into one score per pair."""

    model: ModelInfo
    pairs: tuple[tuple[Any, Any], ...]

    @property
    def prompts(self) -> list:
        if self.model.task is PoolingTask.SEQ_CLASSIFY:
            return [(q, d) for q, d in self.pairs]
        # Bi-encoders: encode each distinct text once.
        return list(dict.fromkeys(_key(t) for pair in self.pairs for t in pair))

    @property
    def groups(self) -> list[tuple[list, str | None]]:
        """What to encode, as (prompts, prompt_name) in order: a ColBERT model encodes the queries and the documents
        in their roles (MultiVectorEncoder's encode_query / encode_document); every other model one group."""
        if not self.model.roles:
            return [(self.prompts, None)]
        return [(list(dict.fromkeys(_key(q) for q, _ in self.pairs)), "query"),
                (list(dict.fromkeys(_key(d) for _, d in self.pairs)), "document")]

    def finish(self, outputs: Sequence[PoolingRequestOutput]) -> list[ScoringRequestOutput]:
        """`outputs`: one per prompt of `groups`, in their order."""
        if self.model.task is PoolingTask.SEQ_CLASSIFY:
            scores = [self._cross_encoder_score(o) for o in outputs]
        elif self.model.roles:
            (queries, _), (documents, _) = self.groups
            by_query = {q: o.outputs for q, o in zip(queries, outputs)}
            by_document = {d: o.outputs for d, o in zip(documents, outputs[len(queries):])}
            scores = [self._similarity(by_query[_key(q)], by_document[_key(d)]) for q, d in self.pairs]
        else:
            by_text = {_key(p): o.outputs for p, o in zip(self.prompts, outputs)}
            scores = [self._similarity(by_text[_key(q)], by_text[_key(d)]) for q, d in self.pairs]
        return [
            ScoringRequestOutput(str(i), q, d, ScoringOutput(float(s)), self.model.name)
            for i, ((q, d), s) in enumerate(zip(self.pairs, scores))
        ]

    def _similarity(self, query, document) -> float:
        if self.model.sparse:
            return sparse_dot(query, document)
        similarity = cosine if self.model.task is PoolingTask.EMBED else maxsim
        return similarity(query.data, document.data)

    def _cross_encoder_score(self, output: PoolingRequestOutput) -> float:
        if output.outputs.data.shape != (1,):
            raise InvalidRequestError(
                f"score with a seq_classify model needs a one-label cross-encoder; model {self.model.name!r} "
                f"returns {output.outputs.data.shape[-1]} labels: use classify() for it"
            )
        return float(output.outputs.data[0])


def score_plan(model: ModelInfo, queries: Any, documents: Any) -> ScorePlan:
    if model.task not in SCORE_TASKS:
        raise InvalidRequestError(
            f"score needs a model serving one of {', '.join(t.value for t in SCORE_TASKS)}; model "
            f"{model.name!r} serves {model.task.value!r}"
        )
    pairs = pair_up(queries, documents)
    if model.task is PoolingTask.SEQ_CLASSIFY and not all(isinstance(t, str) for p in pairs for t in p):
        raise InvalidRequestError("score with a cross-encoder takes texts (str) for queries and documents")
    return ScorePlan(model, tuple(pairs))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def maxsim(query: np.ndarray, document: np.ndarray) -> float:
    """ColBERT late interaction: for each query token its best document token, summed."""
    sims = np.asarray(query, dtype=np.float64) @ np.asarray(document, dtype=np.float64).T
    return float(sims.max(axis=1).sum())


def _key(prompt: Any) -> Any:
    # Token-id prompts are lists (unhashable); tuples keep them usable as dict keys.
    return tuple(prompt) if isinstance(prompt, list) else prompt
