"""Small seeded LLM-reranker checkpoints (a Qwen3ForCausalLM over the byte-level Qwen2 tokenizer, with "yes" / "no" /
"Yes" as single tokens and Qwen3's chat markers as special tokens) and the reference the tests compare with:
transformers' causal LM on the templated text, the label tokens' logits at the last position, the method's formula."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "docs" / "templates"
QWEN3_TEMPLATE = TEMPLATES / "qwen3_reranker.jinja"
GEMMA_TEMPLATE = TEMPLATES / "bge_reranker_v2_gemma.jinja"
LABELS = ["yes", "no", "Yes", "No"]
SPECIALS = ["<|im_start|>", "<|im_end|>", "<think>", "</think>"]
QWEN3 = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
             intermediate_size=64, max_position_embeddings=512, initializer_range=0.2)


# Gemma-2's shape for bge-reranker-v2-gemma's family: its logits are softcapped (tanh(x / cap) * cap); a small cap
# makes the seeded logits (~±5) land where tanh bends, so a head that forgot the softcap would be far off.
GEMMA2 = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
              intermediate_size=64, max_position_embeddings=512, initializer_range=0.2, final_logit_softcapping=2.0,
              query_pre_attn_scalar=8, sliding_window=64)


def make_reranker(out_dir: Path, seed: int = 0, tie_word_embeddings: bool = True, family: str = "qwen3") -> Path:
    """A seeded Qwen3ForCausalLM (or, family "gemma2", Gemma2ForCausalLM) reranker-shaped checkpoint in `out_dir`."""
    import torch
    import transformers

    from triton_pooling_server.builder.seeded import byte_level_qwen2_tokenizer

    tokenizer = byte_level_qwen2_tokenizer()
    tokenizer.add_tokens(LABELS)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIALS})
    prefix, shape = ("Gemma2", GEMMA2) if family == "gemma2" else ("Qwen3", QWEN3)
    config = getattr(transformers, f"{prefix}Config")(vocab_size=len(tokenizer), tie_word_embeddings=tie_word_embeddings,
                                                      pad_token_id=tokenizer.pad_token_id, **shape)
    config.architectures = [f"{prefix}ForCausalLM"]
    torch.manual_seed(seed)
    model = getattr(transformers, f"{prefix}ForCausalLM")(config).eval()
    out_dir = Path(out_dir)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def render(template_path: Path, query: str, document: str) -> str:
    import jinja2

    return jinja2.Environment(keep_trailing_newline=True).from_string(template_path.read_text()).render(
        query=query, document=document)


def reference_scores(checkpoint: Path, texts: list[str], tokens: list[str], method: str,
                     activation: bool = True) -> np.ndarray:
    """[N, L]: the full causal LM on each text alone, the label tokens' logits at the last position, then the method."""
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32).eval()
    ids = [tokenizer.convert_tokens_to_ids(t) for t in tokens]
    rows = []
    with torch.inference_mode():
        for text in texts:
            encoded = tokenizer(text, return_tensors="pt")
            logits = model(**encoded).logits[0, -1, ids].double().numpy()
            rows.append(logits)
    logits = np.array(rows)
    if method == "from_2_way_softmax":  # softmax over [false, true] -> p(true) = sigmoid(true - false)
        raw = (logits[:, 1] - logits[:, 0])[:, None]
        return 1.0 / (1.0 + np.exp(-raw)) if activation else raw
    if not activation:
        return logits
    if logits.shape[1] == 1:
        return 1.0 / (1.0 + np.exp(-logits))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
