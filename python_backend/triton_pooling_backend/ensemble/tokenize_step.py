"""Ensemble step 1: the contract's text inputs → right-padded ids, attention mask (and segment ids).

Validation, truncation and token limits are the Python backend's own (request_parsing, tokenization)."""

from __future__ import annotations

import numpy as np

from triton_pooling_contract.ensemble import ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS
from triton_pooling_contract.tasks import Tensor

from ..checkpoint import read_checkpoint_info
from ..model_facts import max_tokens_of, pad_token_id_of
from ..errors import InvalidInputError
from ..limits import RequestLimits
from ..request_parsing import InputLimits, parse_request
from ..tokenization import TextTokenizer
from .step import StepModel


class TokenizeStep(StepModel):
    def setup(self) -> None:
        import transformers

        definition = self.step_definition()
        path = str(definition.checkpoint_path)
        hf_config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=definition.trust_remote_code)
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=definition.trust_remote_code)
        tokenizer.truncation_side = "left"  # vLLM: truncate_prompt_tokens keeps the last k tokens
        # The encoder takes segment ids only if the layout says so (the ONNX graph was exported the same way).
        self.with_types = TOKEN_TYPE_IDS in {o["name"] for o in self.config["output"]}
        rust = tokenizer.backend_tokenizer
        rust.no_padding()
        rust.no_truncation()
        self.tokenizer = TextTokenizer(rust, self.with_types)
        self.max_tokens = max_tokens_of(definition, read_checkpoint_info(definition.checkpoint_path), hf_config, tokenizer)
        self.pad_token_id = pad_token_id_of(tokenizer, hf_config)
        requests = RequestLimits.resolve(definition.max_text_bytes, definition.max_texts_per_request,
                                         definition.max_batch_size)
        self.limits = InputLimits(definition.task, self.max_tokens, int(hf_config.hidden_size),
                                  int(hf_config.vocab_size), requests, definition.matryoshka_dimensions)

    def answer(self, tensors):
        inputs = parse_request(tensors, self.limits)
        encoded = self.tokenizer.encode(inputs)
        for row, (item, e) in enumerate(zip(inputs, encoded)):
            name = Tensor.TEXT if item.input_ids is None else Tensor.INPUT_IDS
            if len(e) > self.max_tokens:
                raise InvalidInputError(
                    f"{name}[{row}] has {len(e)} tokens; this model takes at most {self.max_tokens}: shorten it or "
                    f"send TRUNCATE_PROMPT_TOKENS between 1 and {self.max_tokens} to keep the last tokens")
            if len(e) == 0:
                raise InvalidInputError(f"{name}[{row}] tokenizes to no tokens")
        width = max(len(e) for e in encoded)
        ids = np.full((len(encoded), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        types = np.zeros((len(encoded), width), dtype=np.int64)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = e.input_ids
            mask[row, : len(e)] = 1
            if e.token_type_ids is not None:
                types[row, : len(e)] = e.token_type_ids
        outputs = {INPUT_IDS: ids, ATTENTION_MASK: mask}
        if self.with_types:
            outputs[TOKEN_TYPE_IDS] = types
        return outputs
