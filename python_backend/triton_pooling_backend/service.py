"""The pooling service: a batch of Triton requests in, one result or one error per request out.

Knows nothing of Triton's Python API (see `triton_model`), so tests can drive it directly.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from triton_pooling_contract.tasks import PoolingTask, Tensor

from .chunking import combine_chunks, split_chunks
from .engine import PoolingEngine
from .errors import InvalidInputError, PoolingError
from .late_interaction import LateInteractionShaper
from .limits import RequestLimits
from .loading import Instance, LoadedModel, load_model
from .outputs import pack_outputs, pack_sparse
from .prompts import PromptBook
from .request_parsing import InputLimits, TextInput, parse_request
from .score_template import ScoreTemplate
from triton_pooling_contract.definition import ModelDefinition
from .tokenization import EncodedText

RequestTensors = Mapping[str, "np.ndarray | None"]
# Chunked processing takes prompts of at most this many windows unless max_embed_len says otherwise (vLLM's cap).
DEFAULT_EMBED_WINDOWS = 64
Outputs = dict[str, np.ndarray]


@dataclasses.dataclass
class _Pending:
    """One request's texts on their way through the batch."""

    inputs: list[TextInput]
    first: int  # index of its first text in the flattened batch


class PoolingService:
    def __init__(self, definition: ModelDefinition, model: LoadedModel):
        self.definition = definition
        self.model = model
        self.facts = model.facts
        self.engine = PoolingEngine(model.facts, model.encoder, definition)
        self.tokenizer = model.tokenizer
        self.prompts = PromptBook(definition, model.tokenizer.prompt_length)
        self.template = ScoreTemplate(definition.score_template)
        self.late = None if model.late_interaction is None else LateInteractionShaper(
            model.late_interaction, model.tokenizer, model.facts.max_tokens, model.facts.with_token_types)
        request_limits = RequestLimits.resolve(definition.max_text_bytes, definition.max_texts_per_request,
                                               definition.max_batch_size)
        self.limits = InputLimits(definition.task, model.facts.max_tokens, model.facts.hidden_size,
                                  model.facts.vocab_size, request_limits, definition.matryoshka_dimensions,
                                  self.token_limit)

    @classmethod
    def load(cls, definition: ModelDefinition, instance: Instance) -> "PoolingService":
        """`instance` says where Triton runs it (its version folder holds the built model); in-process use (tests,
        benchmarks) builds one with triton_pooling_server.builder.artifact.load_service."""
        return cls(definition, load_model(definition, instance))

    def handle(self, requests: list[RequestTensors]) -> list[Outputs | PoolingError]:
        """Answer every request: a bad one gets its own error, its batch-mates their results."""
        answers: list[Outputs | PoolingError | None] = [None] * len(requests)
        pending: dict[int, _Pending] = {}
        flat: list[TextInput] = []
        for r, tensors in enumerate(requests):
            try:
                inputs = parse_request(tensors, self.limits)
                if self.late is not None:
                    self.late.check(inputs)  # truncation is its own (per role), not TRUNCATE_PROMPT_TOKENS
                inputs = self.template.apply(self.prompts.apply(inputs))
                self._check_truncation(inputs)
                if self.late is None:
                    self._check_size(inputs)
            except PoolingError as e:
                answers[r] = e
                continue
            pending[r] = _Pending(inputs, len(flat))
            flat.extend(inputs)
        tokenizer = self.late or self.tokenizer
        encoded = tokenizer.encode(flat) if flat else []
        for r, p in list(pending.items()):
            try:
                self._check_lengths(p, encoded)
            except PoolingError as e:
                answers[r] = e
                del pending[r]
        keep = [i for p in pending.values() for i in range(p.first, p.first + len(p.inputs))]
        pieces = {i: self._pieces(encoded[i]) for i in keep}
        flat_pieces = [piece for i in keep for piece in pieces[i]]
        raw = iter(self.engine.run(flat_pieces) if flat_pieces else [])
        for r, p in pending.items():
            idx = range(p.first, p.first + len(p.inputs))
            results = [self._finish(flat[i], pieces[i], raw) for i in idx]
            counts = [len(encoded[i]) for i in idx]
            answers[r] = (pack_sparse(results, counts, self.tokenizer.id_to_token) if self.engine.pooler.sparse
                          else pack_outputs(self.definition.task, results, counts))
        return answers  # type: ignore[return-value]

    @property
    def token_limit(self) -> int:
        """The most tokens a text may have: the model's window, or with chunked processing max_embed_len."""
        limit = self.facts.max_tokens
        if self.definition.chunked_processing:
            return self.definition.max_embed_len or DEFAULT_EMBED_WINDOWS * limit
        return limit

    def _check_size(self, inputs: list[TextInput]) -> None:
        """A text too long to serve is refused before it is tokenized whole (a megabyte costs seconds and a GB)."""
        limit = self.token_limit
        for row, item in enumerate(inputs):
            if item.text is None or item.truncate is not None:
                continue  # pre-tokenized ids are checked by length; truncation reads only the tail
            for name, text in ((Tensor.TEXT, item.text), (Tensor.TEXT_PAIR, item.text_pair)):
                if text is not None and self.tokenizer.too_long(text, limit):
                    raise InvalidInputError(
                        f"{name}[{row}] has more than {limit} tokens; this model takes at most {limit}"
                        f"{' (max_embed_len)' if self.definition.chunked_processing else ''}: shorten it, or send "
                        f"TRUNCATE_PROMPT_TOKENS up to {self.facts.max_tokens} to keep the last tokens")

    def _pieces(self, encoded: EncodedText) -> list[EncodedText]:
        """What the encoder runs for one text: the text, or its chunks (chunked processing)."""
        limit = self.facts.max_tokens
        if self.definition.chunked_processing and len(encoded) > limit:
            return split_chunks(encoded, limit)
        return [encoded]

    def _finish(self, item: TextInput, pieces: list[EncodedText], raw) -> np.ndarray:
        finished = [self.engine.finish(next(raw), item) for _ in pieces]
        return finished[0] if len(pieces) == 1 else combine_chunks(finished, [len(p) for p in pieces])

    def _check_truncation(self, inputs: list[TextInput]) -> None:
        """Keeping fewer tokens than the special tokens would keep no text: refuse, naming the minimum."""
        for row, item in enumerate(inputs):
            if item.truncate is None or item.input_ids is not None:
                continue
            least = self.tokenizer.minimum_truncation(item.text_pair is not None)
            if item.truncate < least:
                raise InvalidInputError(
                    f"{Tensor.TRUNCATE_PROMPT_TOKENS}[{row}] is {item.truncate}; this model adds {least - 1} special "
                    f"tokens to each {'pair' if item.text_pair is not None else 'text'}, so keeping fewer than "
                    f"{least} tokens keeps no text: send at least {least}, or -1 for no truncation"
                )

    @property
    def runtime(self):
        return self.engine.runtime

    def _check_lengths(self, p: _Pending, encoded) -> None:
        limit = self.facts.max_tokens
        for row, item in enumerate(p.inputs):
            n = len(encoded[p.first + row])
            if self.definition.chunked_processing and n > self.token_limit:
                raise InvalidInputError(f"{Tensor.TEXT}[{row}] has {n} tokens; this model chunks prompts of at most "
                                        f"{self.token_limit} tokens (max_embed_len): shorten it")
            if n > limit and not self.definition.chunked_processing and self.late is None:  # ColBERT: its roles' lengths
                name = Tensor.TEXT if item.input_ids is None else Tensor.INPUT_IDS
                chunking = (" or build it with --enable-chunked-processing (parameter enable_chunked_processing)"
                            if self.definition.task is PoolingTask.EMBED else "")
                raise InvalidInputError(
                    f"{name}[{row}] has {n} tokens; this model takes at most {limit}: shorten it, send "
                    f"TRUNCATE_PROMPT_TOKENS up to {limit} to keep the last tokens{chunking}"
                )
            if n == 0:
                raise InvalidInputError(f"{Tensor.TEXT}[{row}] tokenizes to no tokens")

