"""Checkpoint folders made of JSON alone: the builder reads nothing else, so unit tests need no weights."""

from __future__ import annotations

import json
from pathlib import Path


def fake_checkpoint(path: Path, architectures=("BertModel",), *, num_labels=None, st_pooling=None,
                    normalize=False, max_seq_length=None, weights="model.safetensors") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = {"architectures": list(architectures), "model_type": "bert"}
    if num_labels:
        config["num_labels"] = num_labels
    (path / "config.json").write_text(json.dumps(config))
    (path / weights).write_bytes(b"weights")
    if st_pooling is not None:
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (path / "modules.json").write_text(json.dumps(modules))
        (path / "1_Pooling").mkdir(exist_ok=True)
        (path / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **st_pooling}))
        if max_seq_length:
            (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length}))
    return path
