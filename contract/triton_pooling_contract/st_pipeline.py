"""A sentence-transformers folder's whole pipeline, read from modules.json and each module's config (JSON only).

Every module is named with its kind; whether the product serves it is decided by `rules.check_pipeline`, never
by skipping a module here. Served after the Transformer: one Pooling, then any of Dense / LayerNorm, then
Normalize last (sentence-transformers' own order for every model that ships these).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

# Module kinds this product serves exactly (the class name sentence-transformers writes in modules.json).
SERVED_MODULES = ("Transformer", "Pooling", "Dense", "LayerNorm", "Normalize", "MLMTransformer", "SpladePooling",
                  "MultiVectorMask")
# Other libraries' modules sentence-transformers loads as its own (MultiVectorEncoder's _CLASS_REF_ALIASES).
MODULE_ALIASES = {"pylate.models.Dense.Dense": "sentence_transformers.base.modules.dense.Dense"}
# A SparseEncoder's SpladePooling options (sentence-transformers' SPLADE_POOLING_MODES / SPLADE_ACTIVATION): all served.
SPLADE_STRATEGIES = ("max", "sum")
SPLADE_ACTIVATIONS = ("relu", "log1p_relu")
# Dense activation functions served (torch.nn class names, as Dense's config writes them).
SERVED_ACTIVATIONS = ("Identity", "Tanh", "ReLU", "Sigmoid", "GELU", "SiLU")
# Pooling modes sentence-transformers computes; all are served.
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
_OLD_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max", "pooling_mode_mean_tokens": "mean",
              "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
              "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}


@dataclasses.dataclass(frozen=True)
class PipelineModule:
    kind: str  # the class name (Transformer, Pooling, Dense, ...)
    type: str  # as modules.json writes it (sentence_transformers.….Dense, or a custom module's path)
    path: str  # its folder, relative to the checkpoint ("" for the Transformer)
    config: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    @property
    def is_sentence_transformers(self) -> bool:
        return MODULE_ALIASES.get(self.type, self.type).startswith("sentence_transformers.")

    def describe(self) -> str:
        return f"{self.path or '.'} ({self.type})"


@dataclasses.dataclass(frozen=True)
class Splade:
    """SPLADE's pooling: weights = log1p(relu(MLM logits)) (log1p twice for log1p_relu) over the real tokens, then
    the strategy over tokens. A plain *ForMaskedLM checkpoint gets the default (SPLADE v2 and later: max, relu)."""

    strategy: str = "max"
    activation: str = "relu"

    def describe(self) -> str:
        return f"{self.strategy} of log1p({'log1p(relu)' if self.activation == 'log1p_relu' else 'relu'}(MLM logits))"


@dataclasses.dataclass(frozen=True)
class Pipeline:
    modules: tuple[PipelineModule, ...]

    def of_kind(self, kind: str) -> tuple[PipelineModule, ...]:
        return tuple(m for m in self.modules if m.kind == kind)

    @property
    def pooling_modes(self) -> tuple[str, ...]:
        """The Pooling module's modes, in sentence-transformers' order; () without a Pooling module."""
        pooling = self.of_kind("Pooling")
        return pooling_modes(pooling[0].config) if pooling else ()

    @property
    def include_prompt(self) -> bool:
        pooling = self.of_kind("Pooling")
        return bool(pooling[0].config.get("include_prompt", True)) if pooling else True

    @property
    def head(self) -> tuple[PipelineModule, ...]:
        """What runs on the pooled vector before Normalize: the Dense and LayerNorm modules, in order."""
        return tuple(m for m in self.modules if m.kind in ("Dense", "LayerNorm"))

    @property
    def normalize(self) -> bool:
        return bool(self.of_kind("Normalize"))

    @property
    def splade(self) -> Splade | None:
        """A SparseEncoder's SpladePooling as served (its options as written; rules.check_pipeline checks them)."""
        pooling = self.of_kind("SpladePooling")
        if not pooling:
            return None
        config = pooling[0].config
        return Splade(str(config.get("pooling_strategy", "max")), str(config.get("activation_function", "relu")))


def read_pipeline(path: Path) -> Pipeline | None:
    """The pipeline of a sentence-transformers folder; None for a plain Hugging Face checkpoint."""
    path = Path(path)
    modules = _read_json(path / "modules.json")
    if not isinstance(modules, list):
        return None
    found = []
    for entry in modules:
        if not isinstance(entry, dict):
            continue
        type_ = str(entry.get("type", ""))
        folder = str(entry.get("path", ""))
        config = _read_json(path / folder / "config.json") if folder else None
        found.append(PipelineModule(type_.rsplit(".", 1)[-1], type_, folder, config if isinstance(config, dict) else {}))
    return Pipeline(tuple(found))


def pooling_modes(config: dict) -> tuple[str, ...]:
    """sentence-transformers >= 3 writes `pooling_mode: "cls"` (or a list); older folders write boolean flags."""
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        return (mode.lower(),)
    if isinstance(mode, list):
        return tuple(str(m).lower() for m in mode)
    return tuple(name for flag, name in _OLD_FLAGS.items() if config.get(flag))


def activation_name(dense: PipelineModule) -> str:
    """torch.nn.modules.activation.Tanh -> Tanh (Tanh when the config names none: Dense's own default)."""
    return str(dense.config.get("activation_function") or "torch.nn.modules.activation.Tanh").rsplit(".", 1)[-1]


def _read_json(path: Path):
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
