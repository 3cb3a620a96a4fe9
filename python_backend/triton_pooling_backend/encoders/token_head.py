"""LLM rerankers scored from token logits (vLLM's `classifier_from_token` + `method`): a *ForCausalLM checkpoint
served as seq_classify whose head is the lm_head rows of its label tokens, so the graph never computes the
vocabulary.

    from_2_way_softmax  tokens [false, true]: one label, logit_true - logit_false (sigmoid'ed: softmax's p(true))
    no_post_processing  one label per token: that token's logit

Imports torch and transformers when used (build time and `runtime: torch`), never in a lean stub."""

from __future__ import annotations

import copy
from typing import Sequence

from triton_pooling_contract.parameters import ClassifierMethod

from ..errors import ModelConfigError


def label_token_ids(tokenizer, tokens: Sequence[str], source: str = "parameter 'classifier_from_token'",
                    where: str = "the checkpoint") -> list[int]:
    """Each label's one token id, as vLLM finds it (the tokenizer's vocabulary entry), else the text's encoding when
    it is a single token; a label that is several tokens (or none) is refused, naming it."""
    vocab = tokenizer.get_vocab()
    ids = []
    for token in tokens:
        if token in vocab:
            ids.append(int(vocab[token]))
            continue
        pieces = tokenizer.encode(token, add_special_tokens=False)
        if len(pieces) != 1:
            split = tokenizer.convert_ids_to_tokens(pieces)
            raise ModelConfigError(
                f"{source} names {token!r}, which the tokenizer of {where} splits into {len(pieces)} tokens {split}; "
                "each label must be a single token of its vocabulary (e.g. 'yes' / 'no' for Qwen3-Reranker, 'Yes' for "
                "bge-reranker-v2-gemma)")
        ids.append(int(pieces[0]))
    return ids


def num_labels(tokens: Sequence[str], method: ClassifierMethod) -> int:
    return 1 if method is ClassifierMethod.FROM_2_WAY_SOFTMAX else len(tokens)


def token_score_model(causal_lm, token_ids: Sequence[int], method: ClassifierMethod):
    """The causal LM as a seq_classify model: `.base_model` (hidden states) and `.score` (the label rows), the shape
    torch_encoder.forward computes per token for decoder classifiers."""
    import torch

    output = causal_lm.get_output_embeddings()
    rows = output.weight.detach()[list(token_ids)].float()
    bias = None if getattr(output, "bias", None) is None else output.bias.detach()[list(token_ids)].float()
    softcap = getattr(causal_lm.config, "final_logit_softcapping", None)
    two_way = method is ClassifierMethod.FROM_2_WAY_SOFTMAX

    class LabelHead(torch.nn.Module):
        """hidden [B, T, H] -> label logits [B, T, L], as the causal LM's logits at those tokens (softcapped where
        the model softcaps), then the method."""

        def __init__(self):
            super().__init__()
            fold = two_way and softcap is None  # logit_true - logit_false is one row: vLLM's folded score weight
            weight = (rows[1:2] - rows[0:1]) if fold else rows
            folded_bias = None if bias is None else ((bias[1:2] - bias[0:1]) if fold else bias)
            self.linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=folded_bias is not None)
            with torch.no_grad():
                self.linear.weight.copy_(weight)
                if folded_bias is not None:
                    self.linear.bias.copy_(folded_bias)
            self.fold = fold

        def forward(self, hidden):
            logits = self.linear(hidden.to(self.linear.weight.dtype))
            if softcap is not None:
                logits = torch.tanh(logits / softcap) * softcap
            if two_way and not self.fold:
                logits = logits[..., 1:2] - logits[..., 0:1]
            return logits

    class TokenScoreModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.base_model = causal_lm.base_model
            self.score = LabelHead()
            self.config = copy.deepcopy(causal_lm.config)
            self.config.num_labels = 1 if two_way else len(token_ids)

        def forward(self, input_ids, attention_mask):
            hidden = self.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.score(hidden)

    return TokenScoreModel()


def load_token_score_model(checkpoint, tokens: Sequence[str], method: ClassifierMethod, dtype,
                           trust_remote_code: bool, allow_unsafe_weights: bool):
    """Load the *ForCausalLM checkpoint and fold its label rows into the head (float32 head, vLLM computes the folded
    weight in float32 too)."""
    import transformers

    causal_lm = transformers.AutoModelForCausalLM.from_pretrained(
        str(checkpoint), dtype=dtype, trust_remote_code=trust_remote_code, use_safetensors=not allow_unsafe_weights)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(checkpoint), trust_remote_code=trust_remote_code)
    ids = label_token_ids(tokenizer, tokens, where=str(checkpoint))
    model = token_score_model(causal_lm, ids, method)
    del causal_lm.lm_head  # the vocabulary-size head is not served
    return model
