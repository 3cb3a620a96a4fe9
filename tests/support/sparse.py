"""Seeded SPLADE checkpoints in both layouts the product builds (a sentence-transformers SparseEncoder folder and
a plain BertForMaskedLM), and their reference: sentence-transformers' SparseEncoder.encode."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from triton_pooling_server.builder.seeded import write_checkpoint

from .checkpoints import _BERT

# The untrained MLM's logits are ~N(0, 1.1): shifting its output bias down leaves a few hundred positive logits per
# text, as trained SPLADE models have (a seeded model without it weighs ~20,000 of the 30,523 entries).
LOGIT_SHIFT = -3.0
LAYOUTS = ("sparse_encoder", "masked_lm")


def make_splade(out_dir: Path, layout: str = "sparse_encoder", seed: int = 0, strategy: str = "max",
                activation: str = "relu") -> Path:
    """A seeded BERT masked LM; `sparse_encoder`: saved by SparseEncoder with SpladePooling(strategy, activation)
    (Transformer with transformer_task fill-mask), `masked_lm`: the plain transformers checkpoint."""
    import torch
    import transformers

    out_dir = Path(out_dir)
    mlm = out_dir / "masked_lm" if layout == "sparse_encoder" else out_dir
    write_checkpoint(("BertForMaskedLM", "BertConfig", dict(_BERT)), mlm, seed)
    model = transformers.AutoModelForMaskedLM.from_pretrained(str(mlm))
    with torch.no_grad():
        model.cls.predictions.bias.add_(LOGIT_SHIFT)
    model.save_pretrained(mlm, safe_serialization=True)
    if layout == "masked_lm":
        return out_dir
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sparse_encoder.modules import SpladePooling

    folder = out_dir / "folder"
    SparseEncoder(modules=[Transformer(str(mlm), transformer_task="fill-mask"),
                           SpladePooling(strategy, activation)]).save(str(folder))
    return folder


def reference_weights(checkpoint: Path, texts: list[str], strategy: str = "max", activation: str = "relu") -> np.ndarray:
    """SparseEncoder.encode as a dense [texts, vocabulary] array: the folder's pipeline, or for a plain masked LM
    MLMTransformer + SpladePooling (SPLADE's defaults unless given)."""
    from sentence_transformers import SparseEncoder

    if (Path(checkpoint) / "modules.json").is_file():
        model = SparseEncoder(str(checkpoint), device="cpu")
    else:
        from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling

        model = SparseEncoder(modules=[MLMTransformer(str(checkpoint)), SpladePooling(strategy, activation)], device="cpu")
    return model.encode(texts, convert_to_tensor=True).to_dense().numpy()


def as_dense(indices: np.ndarray, values: np.ndarray, vocabulary: int) -> np.ndarray:
    """A served request's SPARSE_INDICES / SPARSE_VALUES (padded with -1 / 0) as a dense [texts, vocabulary] array."""
    dense = np.zeros((indices.shape[0], vocabulary), dtype=np.float32)
    for row in range(indices.shape[0]):
        keep = indices[row] >= 0
        dense[row, indices[row][keep]] = values[row][keep]
    return dense
