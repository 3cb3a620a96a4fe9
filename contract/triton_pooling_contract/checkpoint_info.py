"""What a checkpoint directory says about itself, read from its JSON files only (no torch).

Shared by the builder (deciding what to build) and the backend (serving it).

Sources: `config.json` (architectures, labels, problem type) and, for sentence-transformers folders,
`modules.json` → the Pooling module's `config.json`, the Normalize module, `sentence_bert_config.json`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .tasks import PoolingType

# sentence-transformers Pooling flags → our pooling types (first set flag wins, as in vLLM).
ST_POOLING_FLAGS = {
    "pooling_mode_cls_token": PoolingType.CLS,
    "pooling_mode_mean_tokens": PoolingType.MEAN,
    "pooling_mode_lasttoken": PoolingType.LAST,
}
# config.json keys of the hidden size across families (DistilBERT says dim, T5-style d_model).
_HIDDEN_SIZE_KEYS = ("hidden_size", "dim", "d_model")
# tokenizer_config.json's model_max_length is a huge sentinel when a tokenizer sets no limit.
NO_TOKENIZER_LIMIT = 1_000_000
_ST_POOLING_MODE = {"cls": PoolingType.CLS, "mean": PoolingType.MEAN, "lasttoken": PoolingType.LAST}


@dataclasses.dataclass(frozen=True)
class SentenceTransformersInfo:
    pooling: PoolingType | None  # None: the Pooling module uses a mode we do not serve (e.g. max)
    pooling_mode: str  # as written in the folder, for messages
    normalize: bool  # a Normalize module follows the pooling
    max_seq_length: int | None


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    architectures: tuple[str, ...]
    model_type: str
    num_labels: int | None  # None: the config does not say (bare encoders)
    has_safetensors: bool
    sentence_transformers: SentenceTransformersInfo | None
    hidden_size: int | None = None
    token_limit: int | None = None  # min(position embeddings, tokenizer_config model_max_length); None: unknown
    # Segment ids matter only with 2+ segment types (BERT pairs); RoBERTa (1) and decoders (none) ignore them.
    uses_token_types: bool = False
    id2label: tuple[str, ...] = ()  # class names by index, from config.json's id2label; () when it has none
    problem_type: str | None = None  # transformers' problem_type (regression, single/multi-label classification)
    auto_map: tuple[str, ...] = ()  # config.json auto_map keys: the checkpoint brings its own code


class CheckpointError(ValueError):
    """A directory that is not a readable Hugging Face checkpoint; the message says which file and why."""


def inspect_checkpoint(path: Path) -> CheckpointInfo:
    path = Path(path)
    config = _read_json(path / "config.json")
    if config is None:
        raise CheckpointError(f"MODEL_DIR {str(path)!r} is not a Hugging Face checkpoint: {path / 'config.json'} not found")
    labels = config.get("id2label") or config.get("label2id")
    num_labels = config.get("num_labels") or (len(labels) if labels else None)
    return CheckpointInfo(
        path=path.resolve(),
        architectures=tuple(config.get("architectures") or ()),
        model_type=str(config.get("model_type", "")),
        num_labels=int(num_labels) if num_labels else None,
        id2label=_id2label(config.get("id2label")),
        has_safetensors=any(path.glob("*.safetensors")),
        sentence_transformers=_sentence_transformers(path),
        hidden_size=next((int(config[k]) for k in _HIDDEN_SIZE_KEYS if config.get(k)), None),
        uses_token_types=int(config.get("type_vocab_size") or 0) >= 2,
        token_limit=_token_limit(path, config),
        problem_type=config.get("problem_type") or None,
        auto_map=tuple(sorted(config.get("auto_map") or ())),
    )


def _id2label(value) -> tuple[str, ...]:
    """{"0": "NEG", "1": "POS"} in index order; () unless the keys are exactly 0..n-1."""
    if not isinstance(value, dict):
        return ()
    try:
        by_index = {int(k): str(v) for k, v in value.items()}
    except (TypeError, ValueError):
        return ()
    return tuple(by_index[i] for i in range(len(by_index))) if sorted(by_index) == list(range(len(by_index))) else ()


def _token_limit(path: Path, config: dict) -> int | None:
    tokenizer_limit = (_read_json(path / "tokenizer_config.json") or {}).get("model_max_length")
    limits = [config.get("max_position_embeddings")]
    if isinstance(tokenizer_limit, (int, float)) and tokenizer_limit < NO_TOKENIZER_LIMIT:
        limits.append(tokenizer_limit)
    limits = [int(v) for v in limits if v]
    return min(limits) if limits else None


def _sentence_transformers(path: Path) -> SentenceTransformersInfo | None:
    modules = _read_json(path / "modules.json")
    if not isinstance(modules, list):
        return None
    types = {str(m.get("type", "")).rsplit(".", 1)[-1]: m for m in modules if isinstance(m, dict)}
    pooling, mode = None, "none"
    if "Pooling" in types:
        flags = _read_json(path / types["Pooling"].get("path", "") / "config.json") or {}
        pooling, mode = _pooling_from_flags(flags)
    st_config = _read_json(path / "sentence_bert_config.json") or {}
    max_len = st_config.get("max_seq_length")
    return SentenceTransformersInfo(pooling, mode, "Normalize" in types, int(max_len) if max_len else None)


def _pooling_from_flags(flags: dict) -> tuple[PoolingType | None, str]:
    # sentence-transformers >= 3 writes `pooling_mode: "cls"`; older folders write boolean flags.
    mode = flags.get("pooling_mode")
    if isinstance(mode, str):
        return _ST_POOLING_MODE.get(mode.lower()), mode
    for flag, pooling in ST_POOLING_FLAGS.items():
        if flags.get(flag):
            return pooling, flag
    named = [k for k, v in flags.items() if k.startswith("pooling_mode_") and v]
    return None, ", ".join(named) or "none"


def _read_json(path: Path):
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from e
