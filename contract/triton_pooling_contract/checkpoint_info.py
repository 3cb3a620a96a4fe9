"""What a checkpoint directory says about itself, read from its JSON files only (no torch).

Shared by the builder (deciding what to build) and the backend (serving it).

Sources: `config.json` (architectures, labels, problem type) and, for sentence-transformers folders,
`modules.json` → the Pooling module's `config.json`, the Normalize module, `sentence_bert_config.json`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .late_interaction import LateInteraction, read_late_interaction
from .st_pipeline import Pipeline, Splade, read_pipeline
from .tasks import PoolingType, is_masked_lm

# sentence-transformers Pooling modes -> our pooling types.
ST_POOLING_MODES = {
    "cls": PoolingType.CLS, "mean": PoolingType.MEAN, "lasttoken": PoolingType.LAST, "max": PoolingType.MAX,
    "mean_sqrt_len_tokens": PoolingType.MEAN_SQRT_LEN, "weightedmean": PoolingType.WEIGHTED_MEAN,
}
# config.json keys of the hidden size across families (DistilBERT says dim, T5-style d_model).
_HIDDEN_SIZE_KEYS = ("hidden_size", "dim", "d_model")
# tokenizer_config.json's model_max_length is a huge sentinel when a tokenizer sets no limit.
NO_TOKENIZER_LIMIT = 1_000_000


@dataclasses.dataclass(frozen=True)
class SentenceTransformersInfo:
    pooling: PoolingType | None  # None: no Pooling module, or several modes at once (refused by rules.check_pipeline)
    pooling_mode: str  # as written in the folder, for messages ("none" without a Pooling module)
    normalize: bool  # a Normalize module ends the pipeline
    max_seq_length: int | None
    pipeline: Pipeline = Pipeline(())  # every module, in order (st_pipeline)
    prompts: tuple[tuple[str, str], ...] = ()  # config_sentence_transformers.json prompts, by name
    default_prompt_name: str | None = None
    transformer_task: str | None = None  # sentence_bert_config.json's: "fill-mask" for a SparseEncoder's MLM
    late_interaction: LateInteraction | None = None  # a ColBERT folder (PyLate's or MultiVectorEncoder's)

    @property
    def window(self) -> int | None:
        """The token limit the folder sets (max_seq_length); a ColBERT folder's per-role lengths replace it (PyLate
        writes document_length - 1 there)."""
        return self.max_seq_length if self.late_interaction is None else None


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    architectures: tuple[str, ...]
    model_type: str
    num_labels: int | None  # None: the config does not say (bare encoders)
    has_safetensors: bool
    sentence_transformers: SentenceTransformersInfo | None
    hidden_size: int | None = None
    token_limit: int | None = None  # min(usable positions, tokenizer_config model_max_length); None: unknown
    positions: int | None = None  # usable positions (position_limit): what no max_tokens may exceed
    # Segment ids matter only with 2+ segment types (BERT pairs); RoBERTa (1) and decoders (none) ignore them.
    uses_token_types: bool = False
    id2label: tuple[str, ...] = ()  # class names by index, from config.json's id2label; () when it has none
    problem_type: str | None = None  # transformers' problem_type (regression, single/multi-label classification)
    auto_map: tuple[str, ...] = ()  # config.json auto_map keys: the checkpoint brings its own code
    # A sentence-transformers CrossEncoder's own activation (a torch.nn class path), where the folder names one
    cross_encoder_activation: str | None = None
    # vLLM's Matryoshka declaration in config.json: None: none; (): is_matryoshka, every size; else matryoshka_dimensions
    matryoshka_dimensions: tuple[int, ...] | None = None

    @property
    def masked_lm(self) -> bool:
        return is_masked_lm(self.architectures)

    @property
    def late_interaction(self) -> LateInteraction | None:
        """A ColBERT folder's per-role shaping; None for every other checkpoint."""
        st = self.sentence_transformers
        return st.late_interaction if st is not None else None

    @property
    def splade(self) -> Splade:
        """The SPLADE pooling a sparse build serves: the SparseEncoder's SpladePooling, else SPLADE's default."""
        st = self.sentence_transformers
        return (st.pipeline.splade if st is not None else None) or Splade()


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
        positions=position_limit(config),
        problem_type=config.get("problem_type") or None,
        cross_encoder_activation=_cross_encoder_activation(path, config),
        matryoshka_dimensions=_matryoshka(config),
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


def _matryoshka(config: dict) -> tuple[int, ...] | None:
    sizes = config.get("matryoshka_dimensions")
    if isinstance(sizes, list) and sizes:
        try:
            return tuple(sorted({int(s) for s in sizes}))
        except (TypeError, ValueError):
            raise CheckpointError(f"config.json matryoshka_dimensions is {sizes!r}; expected a list of sizes") from None
    return () if config.get("is_matryoshka") else None


def _cross_encoder_activation(path: Path, config: dict) -> str | None:
    """Where sentence-transformers' CrossEncoder keeps it: config_sentence_transformers.json (v5+), then config.json's
    `sentence_transformers.activation_fn`, then the pre-v4 `sbert_ce_default_activation_function`."""
    st_config = _read_json(path / "config_sentence_transformers.json") or {}
    if st_config.get("model_type") == "CrossEncoder" and st_config.get("activation_fn"):
        return str(st_config["activation_fn"])
    nested = config.get("sentence_transformers")
    if isinstance(nested, dict) and nested.get("activation_fn"):
        return str(nested["activation_fn"])
    return str(config["sbert_ce_default_activation_function"]) if config.get("sbert_ce_default_activation_function") else None


# Families whose position ids start after the padding index (RoBERTa's create_position_ids_from_input_ids): a
# sequence may use max_position_embeddings - (pad_token_id + 1) positions.
POSITION_OFFSET_MODEL_TYPES = frozenset({"roberta", "xlm-roberta", "camembert", "mpnet", "longformer", "data2vec-text",
                                         "roberta-prelayernorm", "xmod", "xlm-roberta-xl", "ibert"})


def position_limit(config: dict) -> int | None:
    """The tokens a sequence can really address: the position embeddings, less RoBERTa-family's offset."""
    positions = config.get("max_position_embeddings")
    if not positions:
        return None
    if str(config.get("model_type", "")) in POSITION_OFFSET_MODEL_TYPES:
        return int(positions) - (int(config.get("pad_token_id") or 0) + 1)
    return int(positions)


def _token_limit(path: Path, config: dict) -> int | None:
    tokenizer_limit = (_read_json(path / "tokenizer_config.json") or {}).get("model_max_length")
    limits = [position_limit(config)]
    if isinstance(tokenizer_limit, (int, float)) and tokenizer_limit < NO_TOKENIZER_LIMIT:
        limits.append(tokenizer_limit)
    limits = [int(v) for v in limits if v]
    return min(limits) if limits else None


def _sentence_transformers(path: Path) -> SentenceTransformersInfo | None:
    try:
        pipeline = read_pipeline(path)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: a sentence-transformers module config is not valid JSON: {e}") from e
    if pipeline is None:
        return None
    modes = pipeline.pooling_modes
    pooling = ST_POOLING_MODES.get(modes[0]) if len(modes) == 1 else None
    if pipeline.splade is not None:  # a SparseEncoder: its SpladePooling pools (rules.check_pipeline checks the rest)
        pooling, modes = PoolingType.SPLADE, (f"SpladePooling {pipeline.splade.strategy}",)
    st_config = _read_json(path / "sentence_bert_config.json") or {}
    max_len = st_config.get("max_seq_length")
    model_config = _read_json(path / "config_sentence_transformers.json") or {}
    prompts = model_config.get("prompts") if isinstance(model_config.get("prompts"), dict) else {}
    return SentenceTransformersInfo(pooling, ", ".join(modes) or "none", pipeline.normalize,
                                    int(max_len) if max_len else None, pipeline,
                                    tuple(sorted((str(k), str(v)) for k, v in prompts.items())),
                                    model_config.get("default_prompt_name") or None,
                                    st_config.get("transformer_task") or None,
                                    read_late_interaction(model_config, st_config, _mask_config(pipeline),
                                                          pipeline.normalize,
                                                          _read_json(path / "tokenizer_config.json") or {}))


def _mask_config(pipeline: Pipeline) -> dict | None:
    masks = pipeline.of_kind("MultiVectorMask")
    return masks[0].config if masks else None


def _read_json(path: Path):
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from e
