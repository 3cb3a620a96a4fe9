"""The tests' zoo of small seeded checkpoints, by kind: the embedded default's two classifier shapes plus the
encoder shapes the tests serve. Written with the builder's seeded-checkpoint machinery."""

from __future__ import annotations

from pathlib import Path

from triton_pooling_server.builder.seeded import DEFAULT_SHAPES, Shape, step_tag_id, write_checkpoint

__all__ = ["KINDS", "make_checkpoint", "step_tag_id"]

# initializer_range 0.2 (not HF's 0.02) so untrained heads give scores that differ visibly between texts.
_BERT = dict(initializer_range=0.2, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=128)

KINDS: dict[str, Shape] = {
    "bert-seq-3": ("BertForSequenceClassification", "BertConfig", dict(_BERT, num_labels=3)),
    "bert-token-5": ("BertForTokenClassification", "BertConfig", dict(_BERT, num_labels=5)),
    "bert-embed": ("BertModel", "BertConfig", dict(_BERT)),
    **DEFAULT_SHAPES,
    # RoBERTa positions start after pad_token_id, hence the extra positions; type_vocab_size 2 for text pairs.
    "roberta-seq-2": ("RobertaForSequenceClassification", "RobertaConfig",
                      dict(_BERT, num_labels=2, max_position_embeddings=130, type_vocab_size=2)),
    "distilbert-embed": ("DistilBertModel", "DistilBertConfig",
                         dict(initializer_range=0.2, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                              max_position_embeddings=128)),
}


def make_checkpoint(kind: str, out_dir: Path, seed: int = 0, **overrides) -> Path:
    """Write a seeded checkpoint of `kind` (see KINDS) to `out_dir`; returns the directory."""
    return write_checkpoint(KINDS[kind], out_dir, seed, **overrides)
