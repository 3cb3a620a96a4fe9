"""ColBERT's per-role token shaping (contract/late_interaction.py says what MultiVectorEncoder does): right
truncation to the role's length, a query's expansion tokens, a document's skiplist. The projection and the
normalization are the pooler's (EmbeddingHead over every kept token row)."""

from __future__ import annotations

from triton_pooling_contract.late_interaction import DOCUMENT, QUERY, LateInteraction
from triton_pooling_contract.tasks import Tensor

from .errors import InvalidInputError
from .request_parsing import TextInput
from .tokenization import EncodedText, TextTokenizer


class LateInteractionShaper:
    def __init__(self, spec: LateInteraction, tokenizer: TextTokenizer, model_max: int, with_token_types: bool):
        self.spec = spec
        self.tokenizer = tokenizer
        self.model_max = model_max
        self.with_token_types = with_token_types
        # Skiplist words the vocabulary lacks are dropped (MultiVectorMask: else every [UNK] would be skipped).
        self.skip_ids = frozenset(i for i in map(tokenizer.token_id, spec.skiplist_words) if i is not None)
        token = spec.expansion_token
        self.expansion_id = tokenizer.token_id(token) if token else None
        if spec.expansion is not None and self.expansion_id is None:
            raise ValueError(f"the ColBERT model expands queries with {token!r}, which its tokenizer does not have")

    def check(self, inputs: list[TextInput]) -> None:
        """What MultiVectorEncoder has no form for is refused, naming the tensor."""
        for row, item in enumerate(inputs):
            for name, given in ((Tensor.INPUT_IDS, item.input_ids is not None), (Tensor.TEXT_PAIR, item.text_pair),
                                (Tensor.TRUNCATE_PROMPT_TOKENS, item.truncate is not None)):
                if given:
                    raise InvalidInputError(
                        f"{name}[{row}] is given, but this ColBERT model encodes one TEXT per row as MultiVectorEncoder "
                        f"does (PROMPT_NAME 'query' or 'document'; queries keep {self.spec.length_for(QUERY, self.model_max)}"
                        f" tokens, documents {self.spec.length_for(None, self.model_max)}): send TEXT only")

    def encode(self, inputs: list[TextInput]) -> list[EncodedText]:
        by_length: dict[int, list[int]] = {}
        for i, item in enumerate(inputs):
            by_length.setdefault(self.spec.length_for(self._role(item), self.model_max), []).append(i)
        encoded: list[EncodedText | None] = [None] * len(inputs)
        for length, rows in by_length.items():
            for i, ids in zip(rows, self.tokenizer.encode_head([inputs[i].text for i in rows], length)):
                encoded[i] = self._shape(ids, self._role(inputs[i]))
        return encoded  # type: ignore[return-value]

    def _shape(self, ids: list[int], role: str) -> EncodedText:
        attention, keep = [1] * len(ids), [True] * len(ids)
        expansion = self.spec.expansion if role == QUERY else None
        if expansion is not None:
            extra = max(0, expansion.length - len(ids))
            ids = ids + [self.expansion_id] * extra
            attention += [int(expansion.attend)] * extra
            keep += [True] * extra  # expansion rows are scored whether attended to or not
        if role in self.spec.skiplist_tasks and self.skip_ids:
            keep = [k and i not in self.skip_ids for k, i in zip(keep, ids)]
        return EncodedText(ids, [0] * len(ids) if self.with_token_types else None, attention=attention, keep=keep)

    @staticmethod
    def _role(item: TextInput) -> str:
        """The prompt's name is the role; none (or any other) is a document's (MultiVectorMask: task None)."""
        return QUERY if item.prompt_name == QUERY else DOCUMENT
