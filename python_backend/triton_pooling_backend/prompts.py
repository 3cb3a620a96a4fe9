"""sentence-transformers' prompts, as `SentenceTransformer.encode(prompt_name=...)` applies them: the named prompt
(or the model's default) is prepended to the text before tokenization; with the Pooling module's
`include_prompt: false` its tokens — the prompt tokenized alone, less a trailing special token — are left out of
the pooling."""

from __future__ import annotations

import dataclasses
from typing import Callable

from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_contract.tasks import Tensor

from .errors import InvalidInputError
from .request_parsing import TextInput


class PromptBook:
    def __init__(self, definition: ModelDefinition, prompt_length: Callable[[str], int]):
        self._prompts = dict(definition.prompts)
        self._default = definition.default_prompt_name
        self._include = definition.include_prompt
        # Counted once per prompt at load: the pooling leaves these leading tokens out.
        self._lengths = {name: prompt_length(text) if text else 0 for name, text in self._prompts.items()}

    def apply(self, inputs: list[TextInput]) -> list[TextInput]:
        return [self._one(item, row) for row, item in enumerate(inputs)]

    def _one(self, item: TextInput, row: int) -> TextInput:
        name = item.prompt_name or self._default
        if name is None or item.input_ids is not None:
            return item
        if name not in self._prompts:
            served = ", ".join(repr(n) for n in sorted(self._prompts)) or "none (this model has no prompts)"
            raise InvalidInputError(f"{Tensor.PROMPT_NAME}[{row}] is {name!r}; this model's prompts: {served}")
        text = self._prompts[name]
        if not text:
            return item
        if not self._include and item.truncate is not None:
            raise InvalidInputError(f"{Tensor.TRUNCATE_PROMPT_TOKENS}[{row}] with prompt {name!r}: this model leaves the "
                                    "prompt's tokens out of its pooling, and truncation would cut into them; send -1")
        start = 0 if self._include else self._lengths[name]
        return dataclasses.replace(item, text=text + item.text, pooling_start=start)
