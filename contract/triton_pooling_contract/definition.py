"""The one typed description of a built pooling model: every `parameters` entry its config.pbtxt carries.

`triton-pooling build` decides a ModelDefinition and writes it (`to_parameters`); the stub reads it back from
the model config Triton hands it (`from_model_config`). Both go through the same constructor, so the same
validation runs on both sides. Standard library only.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from pathlib import Path
from typing import Any, Mapping

from .parameters import (
    CHUNKED_PROCESSING_PARAMETER, ID2LABEL_PARAMETER, KNOWN_PARAMETERS, PACKAGE_PREFIX, TUNING_FLAGS_PARAMETER,
    Activation, ClassifierMethod, DefinitionError, Device, DType, InstanceKind, Runtime, allowed,
)
from .serving import PackageCheckpointError, package_checkpoint
from .tasks import EMBEDDING_TASKS, POOLING_TYPES, TASK_NAMES, TASK_PARAMETER, PoolingTask, PoolingType, parse_task

# Micro-batch bound: padded tokens (rows x longest row) per forward pass. Small on purpose: on CPU,
# cutting a length-sorted batch into short passes wastes little on padding; 512 ran a mixed-length
# batch of 32 ~2.4x faster than one 16384-token pass (docs/performance.md). GPUs want it larger.
DEFAULT_MAX_BATCH_TOKENS = 512
DEFAULT_MAX_BATCH_SIZE = 64
MATRYOSHKA_ALL = "all"


@dataclasses.dataclass(frozen=True)
class ModelDefinition:
    """A built model. Parameter fields default to "not written" (None / False / 0): the config then says only
    what build decided, and the stub falls back to the checkpoint's own value where one exists."""

    task: PoolingTask
    checkpoint: str  # as the config names it: a directory (absolute, or relative to the model folder) or package:<module>
    pooling_type: PoolingType | None = None  # None: from the checkpoint, then the architecture (rules.pooling_for)
    use_activation: bool = True  # embed: L2-normalize; classify: sigmoid/softmax
    max_tokens: int | None = None  # None: the checkpoint's
    dtype: DType = DType.FLOAT32
    runtime: Runtime | None = None  # None: the runtime the built artifact was checked with (serving.json)
    device: Device = Device.AUTO
    trust_remote_code: bool = False
    allow_unsafe_weights: bool = False  # pickled .bin weights; safetensors only unless set
    step_tag_id: int | None = None
    returned_token_ids: tuple[int, ...] | None = None
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS
    intra_op_threads: int = 0  # 0: the CPUs split among the instances (threads)
    max_text_bytes: int | None = None  # None: the backend's default
    max_texts_per_request: int | None = None  # None: max_batch_size
    chunked_processing: bool = False  # embed only: prompts longer than max_tokens are encoded in chunks
    max_embed_len: int | None = None  # vLLM's: the longest prompt chunked processing takes (tokens); None: 64 windows
    id2label: tuple[str, ...] = ()  # class names for clients (the gateway); the backend does not need them
    # Matryoshka sizes DIMENSIONS may ask for (vLLM's is_matryoshka / matryoshka_dimensions): None: not a Matryoshka
    # model (DIMENSIONS refused); (): every size up to the full one ("all"); else the declared sizes
    matryoshka_dimensions: tuple[int, ...] | None = None
    # embed: sentence-transformers' prompts (name -> text prepended to a text) and the one used when a request
    # names none; include_prompt False: the prompt's tokens are left out of the pooling (its Pooling module)
    prompts: tuple[tuple[str, str], ...] = ()
    default_prompt_name: str | None = None
    include_prompt: bool = True
    activation: Activation | None = None  # classifiers: decided at build (rules.classifier_activation); None: same rule at load
    tuning_flags: str = ""  # the tuning flags build was given, kept by a later build into the same repository
    # LLM rerankers (vLLM's classifier_from_token + method): a *ForCausalLM served as seq_classify, its head the
    # lm_head rows of these tokens ([false, true] for from_2_way_softmax), folded into the graph at build
    classifier_from_token: tuple[str, ...] = ()
    classifier_method: ClassifierMethod | None = None
    # seq_classify: a Jinja template over query / document (/ instruction) that renders every (TEXT, TEXT_PAIR) pair
    # into the one text the model reads (score_template.py)
    score_template: str | None = None
    # Not parameters: the config's own fields, and where the checkpoint's files are on this host.
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    instance_count: int = 1  # instances (per GPU listed): they share the CPUs
    checkpoint_path: Path | None = None  # resolved from `checkpoint` (from_model_config), or given by the builder

    def __post_init__(self):
        if self.pooling_type is not None and self.pooling_type not in POOLING_TYPES[self.task]:
            raise DefinitionError(f"parameter 'pooling_type' is {self.pooling_type.value!r}; task {self.task.value!r} "
                                  f"allows {allowed(POOLING_TYPES[self.task])}")
        if self.chunked_processing and self.task is not PoolingTask.EMBED:
            raise DefinitionError(
                f"parameter {CHUNKED_PROCESSING_PARAMETER!r} is true, but it applies to task 'embed' only (one vector "
                f"averaged over a long prompt's chunks, as vLLM); this model serves {self.task.value!r}: remove it, "
                "and send TRUNCATE_PROMPT_TOKENS to fit long texts")
        if self.matryoshka_dimensions is not None and self.task not in EMBEDDING_TASKS:
            raise DefinitionError(f"parameter 'matryoshka_dimensions' applies to embed and token_embed models; this "
                                  f"model serves {self.task.value!r}")
        if (self.prompts or self.default_prompt_name) and self.task not in EMBEDDING_TASKS:
            raise DefinitionError(f"parameter 'prompts' applies to embed and token_embed models; this model serves "
                                  f"{self.task.value!r}")
        if self.default_prompt_name is not None and self.default_prompt_name not in dict(self.prompts):
            raise DefinitionError(f"parameter 'default_prompt_name' is {self.default_prompt_name!r}; this model's prompts "
                                  f"are {allowed(repr(n) for n, _ in self.prompts) or 'none'}")
        if not self.checkpoint.strip():
            raise DefinitionError("parameter 'checkpoint' is missing: give a Hugging Face checkpoint directory")
        from .rules import PARAMETERS, check_classifier_options

        check_classifier_options(self.task, self.classifier_from_token,
                                 self.classifier_method.value if self.classifier_method else None, self.score_template,
                                 PARAMETERS)

    @property
    def token_head(self) -> tuple[tuple[str, ...], ClassifierMethod] | None:
        """An LLM reranker's label tokens and method; None for every other model."""
        return (self.classifier_from_token, self.classifier_method) if self.classifier_from_token else None

    @property
    def threads(self) -> int:
        """Intra-op threads per instance: as set, else the CPUs split among the instances (more threads than
        cores stalled ONNX Runtime's pool on 2 cores, docs/performance.md)."""
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return self.intra_op_threads or max(1, cpus // max(1, self.instance_count))

    # -- the config.pbtxt form --
    def to_parameters(self) -> dict[str, str]:
        """The `parameters` of config.pbtxt: the task and checkpoint, then every field that is not its default."""
        params = {TASK_PARAMETER: self.task.value, "checkpoint": self.checkpoint}
        for f in _PARAMETER_FIELDS:
            value = getattr(self, f.name)
            if value != f.default:
                params[_KEYS[f.name]] = _WRITERS.get(f.name, _text)(value)
        return params

    @classmethod
    def from_parameters(cls, raw: Mapping[str, str], **config_fields) -> "ModelDefinition":
        """Parse `parameters` (key -> string value); `config_fields` are max_batch_size / instance_count."""
        unknown = sorted(set(raw) - set(KNOWN_PARAMETERS))
        if unknown:
            raise DefinitionError(f"unknown parameter(s) {allowed(unknown)} in config.pbtxt; known: "
                                  f"{allowed(KNOWN_PARAMETERS)}")
        values: dict[str, Any] = {"task": parse_single_task(raw.get(TASK_PARAMETER)),
                                  "checkpoint": raw.get("checkpoint", "").strip()}
        for f in _PARAMETER_FIELDS:
            text = raw.get(_KEYS[f.name], "").strip()
            if text:
                values[f.name] = _PARSERS[f.name](_KEYS[f.name], text)
        return cls(**values, **config_fields)

    @classmethod
    def from_model_config(cls, config: Mapping[str, Any], model_dir: Path | None = None) -> "ModelDefinition":
        """From Triton's model config in the JSON form the Python backend receives; with `model_dir` (the model's
        folder) the checkpoint is found on this host too."""
        raw = {k: (v or {}).get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
        definition = cls.from_parameters(raw, max_batch_size=int(config.get("max_batch_size", 0)),
                                         instance_count=instance_count(config))
        return definition if model_dir is None else definition.located(model_dir)

    def located(self, model_dir: Path | None = None) -> "ModelDefinition":
        """This definition with `checkpoint_path` found on this host (a relative checkpoint needs the model's folder)."""
        return dataclasses.replace(self, checkpoint_path=checkpoint_dir(self.checkpoint, Path(model_dir or ".")))


def checkpoint_dir(value: str, model_dir: Path) -> Path:
    """A checkpoint is a directory (absolute, or relative to the model's folder) or `package:<module>` for an
    installed package with `get_model_path()`; refused unless it holds a config.json."""
    if value.startswith(PACKAGE_PREFIX):
        try:
            return package_checkpoint(value)
        except PackageCheckpointError as e:
            raise DefinitionError(f"parameter 'checkpoint': {e}") from None
    path = Path(value)
    path = path if path.is_absolute() else (Path(model_dir) / path)
    if not (path / "config.json").is_file():
        raise DefinitionError(f"parameter 'checkpoint' is {value!r}: {path} is not a Hugging Face checkpoint "
                              "(no config.json)")
    return path.resolve()


def instance_count(config: Mapping[str, Any]) -> int:
    """Instances of a model: each group's count, times its GPUs where it lists some."""
    return sum(int(g.get("count", 1)) * max(1, len(g.get("gpus") or [])) for g in config.get("instance_group") or [{}])


def instance_kind(config: Mapping[str, Any]) -> InstanceKind:
    groups = config.get("instance_group") or [{}]
    return InstanceKind.parse(str(groups[0].get("kind") or InstanceKind.CPU.value))


def declared_task(config: Mapping[str, Any]) -> PoolingTask:
    """The one task a model config names (its `pooling_task` parameter), checked on its own."""
    return parse_single_task(((config.get("parameters") or {}).get(TASK_PARAMETER) or {}).get("string_value"))


def parse_single_task(value: str | None) -> PoolingTask:
    if value is None or not value.strip():
        raise DefinitionError(
            f"config.pbtxt names no task: add parameters {{ key: \"{TASK_PARAMETER}\" "
            f"value {{ string_value: \"<task>\" }} }} with one of {allowed(TASK_NAMES)}")
    names = [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
    if len(names) != 1:
        raise DefinitionError(
            f"parameter '{TASK_PARAMETER}' names {len(names)} tasks ({value!r}); a model serves exactly one "
            f"of {allowed(TASK_NAMES)} (vLLM's one-task-per-model rule): build one model per task")
    try:
        return parse_task(names[0])
    except ValueError as e:
        raise DefinitionError(f"parameter '{TASK_PARAMETER}': {e}") from None


# -- parameter text: one key, one parser and one writer per field --
def _bool(key: str, text: str) -> bool:
    value = text.lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise DefinitionError(f"parameter {key!r} is {text!r}; allowed: true, false")


def _int(minimum: int):
    def parse(key: str, text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise DefinitionError(f"parameter {key!r} is {text!r}; expected an integer >= {minimum}") from None
        if number < minimum:
            raise DefinitionError(f"parameter {key!r} is {number}; expected an integer >= {minimum}")
        return number
    return parse


def _enum(enum_type):
    def parse(key: str, text: str):
        try:
            return enum_type(text.lower() if enum_type is not PoolingType else text.upper())
        except ValueError:
            raise DefinitionError(f"parameter {key!r} is {text!r}; allowed: "
                                  f"{allowed(m.value for m in enum_type)}") from None
    return parse


def _int_list(key: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise DefinitionError(f"parameter {key!r} is {text!r}; expected comma-separated integers") from None


def parse_matryoshka_dimensions(text: str, key: str = "matryoshka_dimensions") -> tuple[int, ...]:
    """`all` (every size: ()), or comma-separated sizes >= 1 (sorted, unique)."""
    return _sizes(key, text)


def _sizes(key: str, text: str) -> tuple[int, ...]:
    """`all`, or comma-separated sizes >= 1."""
    if text.lower() == MATRYOSHKA_ALL:
        return ()
    sizes = _int_list(key, text)
    if not sizes or min(sizes) < 1:
        raise DefinitionError(f"parameter {key!r} is {text!r}; expected {MATRYOSHKA_ALL!r} or comma-separated sizes >= 1")
    return tuple(sorted(set(sizes)))


def _prompts(key: str, text: str) -> tuple[tuple[str, str], ...]:
    try:
        mapping = json.loads(text)
    except ValueError:
        mapping = None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise DefinitionError(f"parameter {key!r} is {text!r}; expected a JSON object of prompt name -> text")
    return tuple(sorted(mapping.items()))


def _labels(key: str, text: str) -> tuple[str, ...]:
    try:
        mapping = {int(k): str(v) for k, v in json.loads(text).items()}
    except (ValueError, AttributeError, TypeError):
        raise DefinitionError(f"parameter {key!r} is {text!r}; expected a JSON object of class index -> name") from None
    if sorted(mapping) != list(range(len(mapping))):
        raise DefinitionError(f"parameter {key!r} is {text!r}; its keys must be 0..n-1")
    return tuple(mapping[i] for i in range(len(mapping)))


def _token_list(key: str, text: str) -> tuple[str, ...]:
    try:
        tokens = json.loads(text)
    except ValueError:
        tokens = None
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise DefinitionError(f"parameter {key!r} is {text!r}; expected a JSON list of token strings, e.g. [\"no\", \"yes\"]")
    return tuple(tokens)


def _json_text(key: str, text: str) -> str:
    """A text stored JSON-encoded (config.pbtxt strings hold no raw newlines)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, str):
        raise DefinitionError(f"parameter {key!r} is {text[:80]!r}; expected a JSON string (the template's text)")
    return value


def _text(value) -> str:
    if value == ():
        return MATRYOSHKA_ALL  # the one tuple field whose empty value is written (see matryoshka_dimensions)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):  # prompts
        return json.dumps(dict(value), ensure_ascii=False)
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        return json.dumps({str(i): label for i, label in enumerate(value)})
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


_PARSERS = {
    "pooling_type": _enum(PoolingType), "use_activation": _bool, "max_tokens": _int(1), "dtype": _enum(DType),
    "runtime": _enum(Runtime), "device": _enum(Device), "trust_remote_code": _bool, "allow_unsafe_weights": _bool,
    "step_tag_id": _int(0), "returned_token_ids": _int_list, "max_batch_tokens": _int(1),
    "intra_op_threads": _int(0), "max_text_bytes": _int(1), "max_texts_per_request": _int(1),
    "chunked_processing": _bool, "max_embed_len": _int(1), "id2label": _labels, "activation": _enum(Activation),
    "matryoshka_dimensions": _sizes, "prompts": _prompts, "default_prompt_name": lambda key, text: text,
    "include_prompt": _bool, "tuning_flags": lambda key, text: text, "classifier_from_token": _token_list,
    "classifier_method": _enum(ClassifierMethod), "score_template": _json_text,
}
# Fields whose text is not _text's.
_WRITERS = {"classifier_from_token": lambda tokens: json.dumps(list(tokens)), "score_template": json.dumps}
# Field name -> config key, where they differ.
_KEYS = {name: name for name in _PARSERS} | {
    "chunked_processing": CHUNKED_PROCESSING_PARAMETER, "id2label": ID2LABEL_PARAMETER,
    "tuning_flags": TUNING_FLAGS_PARAMETER,
}
_PARAMETER_FIELDS = tuple(f for f in dataclasses.fields(ModelDefinition) if f.name in _PARSERS)
