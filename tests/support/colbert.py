"""Seeded ColBERT checkpoints in the layouts the product builds: PyLate's (a `pylate.models.Dense.Dense` projection
without bias, PyLate's flat keys in config_sentence_transformers.json) and sentence-transformers' MultiVectorEncoder
re-save of it (Transformer -> Dense -> MultiVectorMask -> Normalize); their reference is MultiVectorEncoder itself."""

from __future__ import annotations

import json
import string
from pathlib import Path

from triton_pooling_server.builder.seeded import write_checkpoint

from .checkpoints import _BERT

PROJECTION = 16  # ColBERT's projection (e.g. 384 -> 128), here 32 -> 16
QUERY_LENGTH, DOCUMENT_LENGTH = 8, 24


def make_pylate(out_dir: Path, seed: int = 0, attend: bool = False, expansion: bool = True) -> Path:
    """A PyLate v3 folder over a seeded BERT: prefixes [unused0] / [unused1], queries expanded with [MASK] to
    QUERY_LENGTH (attended to only with `attend`), documents cut at DOCUMENT_LENGTH with punctuation skipped."""
    import torch
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    write_checkpoint(("BertModel", "BertConfig", dict(_BERT)), out_dir, seed)
    torch.manual_seed(seed + 1)
    dense = out_dir / "1_Dense"
    dense.mkdir()
    save_file({"linear.weight": (torch.randn(PROJECTION, _BERT["hidden_size"]) / 6).contiguous()},
              str(dense / "model.safetensors"))
    _write(dense / "config.json", {"in_features": _BERT["hidden_size"], "out_features": PROJECTION, "bias": False,
                                   "activation_function": "torch.nn.modules.linear.Identity", "use_residual": False})
    _write(out_dir / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"}])
    _write(out_dir / "sentence_bert_config.json", {"max_seq_length": DOCUMENT_LENGTH - 1, "do_lower_case": False})
    _write(out_dir / "config_sentence_transformers.json", {
        "model_type": "ColBERT", "prompts": {"query": "", "document": ""}, "default_prompt_name": None,
        "similarity_fn_name": "MaxSim", "query_prefix": "[unused0]", "document_prefix": "[unused1]",
        "query_length": QUERY_LENGTH, "document_length": DOCUMENT_LENGTH, "attend_to_expansion_tokens": attend,
        "skiplist_words": list(string.punctuation), "do_query_expansion": expansion})
    return out_dir


def resave_native(pylate: Path, out_dir: Path) -> Path:
    """The PyLate folder as MultiVectorEncoder saves it (its own layout)."""
    from sentence_transformers import MultiVectorEncoder

    MultiVectorEncoder(str(pylate), device="cpu").save(str(out_dir))
    return Path(out_dir)


def with_min_expansion(native: Path, out_dir: Path, length: int = 6, query_length: int = 10) -> Path:
    """A copy of a MultiVectorEncoder folder whose queries are expanded to at least `length` tokens and cut at
    `query_length` (the `min` strategy, only MultiVectorEncoder's own layout has it)."""
    import shutil

    shutil.copytree(native, out_dir)
    config_path = Path(out_dir) / "sentence_bert_config.json"
    config = json.loads(config_path.read_text())
    config.update(query_expansion={"strategy": "min", "attend": False, "token": None, "length": length},
                  query_length=query_length)
    _write(config_path, config)
    return Path(out_dir)


def reference(folder: Path, texts: list[str], role: str):
    """MultiVectorEncoder's token vectors (one [rows, PROJECTION] array per text) for queries or documents."""
    from sentence_transformers import MultiVectorEncoder

    model = MultiVectorEncoder(str(folder), device="cpu")
    encode = model.encode_query if role == "query" else model.encode_document
    return encode(texts, convert_to_numpy=True), model


def _write(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1), encoding="utf-8")
