"""The one owner of `config.pbtxt` text: it renders a model's config from its ModelSpec (the contract's tensors, the
definition's parameters, the serving tuning from `tuning.py`), reads the parameters back (the artifact cache, the
repository's other models), and rewrites only the tuning lines (retune). Nothing else writes or parses config text.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_contract.parameters import TUNING_FLAGS_PARAMETER, InstanceKind
from triton_pooling_contract.tasks import (
    OUTPUT_TENSOR, TASK_PARAMETER, TOKEN_LEVEL_TASKS, PoolingTask, PoolingType, Tensor,
)

DEFAULT_QUEUE_DELAY_US = 0  # tuning.CPU_QUEUE_DELAY_US: a spec written without a plan gets the CPU rule's delay
# Overload is refused early (Triton answers UNAVAILABLE, like TEI's 429) instead of queueing
# without bound: at most this many requests wait, and none waits longer than the timeout.
DEFAULT_MAX_QUEUE_SIZE = 256
DEFAULT_QUEUE_TIMEOUT_US = 30_000_000

# (name, Triton type, dims, extra fields) — every model declares every input (see DESIGN.md).
INPUTS = (
    (Tensor.TEXT, "TYPE_STRING", "1", ""),
    (Tensor.INPUT_IDS, "TYPE_INT64", "-1", " allow_ragged_batch: true"),
    (Tensor.TEXT_PAIR, "TYPE_STRING", "1", ""),
    (Tensor.TRUNCATE_PROMPT_TOKENS, "TYPE_INT32", "1", ""),
    (Tensor.DIMENSIONS, "TYPE_INT32", "1", ""),
    (Tensor.USE_ACTIVATION, "TYPE_BOOL", "1", ""),
    (Tensor.PROMPT_NAME, "TYPE_STRING", "1", ""),
)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    definition: ModelDefinition  # the parameters, and max_batch_size
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    preferred_batch_sizes: tuple[int, ...] = ()
    instance_count: int = 1  # per GPU for KIND_GPU
    instance_kind: InstanceKind = InstanceKind.CPU
    gpus: tuple[int, ...] = ()  # KIND_GPU: the devices; each instance runs on its own model_instance_device_id
    tuning_note: str = ""  # a comment line saying where the tuning came from
    response_cache: bool = False
    max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE  # 0: unbounded
    queue_timeout_us: int = DEFAULT_QUEUE_TIMEOUT_US  # 0: none; a request's own timeout may override it

    @property
    def task(self) -> PoolingTask:
        return self.definition.task


# A sparse (SPLADE) embed model's outputs instead of EMBEDDING: per text, its nonzero entries.
SPARSE_OUTPUT_LINES = (
    f'  {{ name: "{Tensor.SPARSE_INDICES}" data_type: TYPE_INT32 dims: [ -1 ] }},',
    f'  {{ name: "{Tensor.SPARSE_VALUES}" data_type: TYPE_FP32 dims: [ -1 ] }},',
    f'  {{ name: "{Tensor.SPARSE_TOKENS}" data_type: TYPE_STRING dims: [ -1 ] }},',
)


def output_lines(spec: ModelSpec) -> tuple[str, ...]:
    if spec.definition.pooling_type is PoolingType.SPLADE:
        return SPARSE_OUTPUT_LINES
    out_dims = "-1, -1" if spec.task in TOKEN_LEVEL_TASKS else "-1"
    return (f'  {{ name: "{OUTPUT_TENSOR[spec.task]}" data_type: TYPE_FP32 dims: [ {out_dims} ] }},',)


def render_config(spec: ModelSpec) -> str:
    inputs = ",\n".join(
        f'  {{ name: "{n}" data_type: {t} dims: [ {d} ] optional: true{x} }}' for n, t, d, x in INPUTS
    )
    params = spec.definition.to_parameters()
    lines = [
        f"# triton-pooling model: serves exactly one pooling task ({TASK_PARAMETER} below).",
        *([f"# tuning: {spec.tuning_note}"] if spec.tuning_note else []),
        f'name: "{spec.name}"',
        'backend: "python"',
        f"max_batch_size: {spec.definition.max_batch_size}",
        f"dynamic_batching {{\n{_preferred(spec)}  max_queue_delay_microseconds: {spec.queue_delay_us}\n"
        f"{_queue_policy(spec)}}}",
        instance_group_line(spec.instance_count, spec.instance_kind, spec.gpus),
        "",
        f"input [\n{inputs}\n]",
        "output [",
        *output_lines(spec),
        f'  {{ name: "{Tensor.NUM_TOKENS}" data_type: TYPE_INT32 dims: [ 1 ] }}',
        "]",
        "",
        *(f'parameters {{ key: "{k}" value {{ string_value: "{_escape(str(v))}" }} }}' for k, v in params.items()),
    ]
    if spec.response_cache:
        lines.append("response_cache { enable: true }")
    return "\n".join(lines) + "\n"


def instance_group_line(count: int, kind: InstanceKind = InstanceKind.CPU, gpus: tuple[int, ...] = ()) -> str:
    devices = f" gpus: [ {', '.join(str(g) for g in gpus)} ]" if gpus else ""
    return f"instance_group [ {{ count: {count} kind: {InstanceKind(kind).value}{devices} }} ]"


def _preferred(spec: ModelSpec) -> str:
    return preferred_batch_line(spec.preferred_batch_sizes) if spec.preferred_batch_sizes else ""


def preferred_batch_line(sizes: tuple[int, ...]) -> str:
    """The dynamic_batching line that lists preferred batch sizes (indented, newline-ended)."""
    return f"  preferred_batch_size: [ {', '.join(str(n) for n in sizes)} ]\n"


def _queue_policy(spec: ModelSpec) -> str:
    fields = ["timeout_action: REJECT", f"default_timeout_microseconds: {spec.queue_timeout_us}",
              "allow_timeout_override: true", f"max_queue_size: {spec.max_queue_size}"]
    return "  default_queue_policy {\n" + "".join(f"    {f}\n" for f in fields) + "  }\n"


def render_model_py(task: PoolingTask) -> str:
    return (
        f'"""Triton model serving the {task.value!r} pooling task; all logic lives in triton_pooling_backend."""\n\n'
        "from triton_pooling_backend.triton_model import TritonPoolingModel\n\n\n"
        "class TritonPythonModel(TritonPoolingModel):\n"
        f'    task = "{task.value}"\n'
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


# -- reading back and rewriting (the artifact cache, retune) --
_PARAMETER = re.compile(r'parameters\s*\{\s*key:\s*"((?:[^"\\]|\\.)*)"\s*value\s*\{\s*string_value:\s*"((?:[^"\\]|\\.)*)"\s*\}\s*\}')
_MAX_BATCH = re.compile(r"^max_batch_size:\s*(\d+)", re.MULTILINE)
_PYTHON = re.compile(r'^backend:\s*"python"', re.MULTILINE)
_GROUP = re.compile(r"^instance_group \[.*\]$", re.MULTILINE)
_KIND_CPU = re.compile(r"^instance_group \[[^\]]*KIND_CPU", re.MULTILINE)
_DELAY = re.compile(r"max_queue_delay_microseconds: \d+")
_PREFERRED = re.compile(r"^  preferred_batch_size: \[[^\]]*\]\n", re.MULTILINE)
_NOTE = re.compile(r"^# tuning: .*\n", re.MULTILINE)
_TUNING_PARAMETERS = ("intra_op_threads", "max_batch_tokens", TUNING_FLAGS_PARAMETER)


def read_parameters(text: str) -> dict[str, str]:
    """The `parameters` of a config's text, as `render_config` writes them."""
    return {_unescape(k): _unescape(v) for k, v in _PARAMETER.findall(text)}


def read_definition(model_dir: Path) -> ModelDefinition:
    """The definition a model folder's config.pbtxt carries, its checkpoint found on this host."""
    text = (Path(model_dir) / "config.pbtxt").read_text(encoding="utf-8")
    batch = _MAX_BATCH.search(text)
    definition = ModelDefinition.from_parameters(read_parameters(text),
                                                 max_batch_size=int(batch.group(1)) if batch else 0)
    return definition.located(model_dir)


def is_pooling_model(text: str) -> bool:
    """A Python-backend pooling model (not an ensemble, not one of its steps)."""
    return bool(re.search(rf'key:\s*"{TASK_PARAMETER}"', text) and _PYTHON.search(text))


def runs_on_cpu(text: str) -> bool:
    return bool(_KIND_CPU.search(text))


def rewrite_tuning(text: str, *, instances: int | None = None, kind: InstanceKind | None = None,
                   gpus: tuple[int, ...] = (), queue_delay_us: int | None = None,
                   preferred_batch_sizes: tuple[int, ...] | None = None, threads: int | None = None,
                   note: str | None = None) -> str:
    """The config with the given tuning in place of its own (None: kept); everything else untouched."""
    if kind is not None:
        text = _GROUP.sub(instance_group_line(instances or 1, kind, gpus), text, count=1)
    elif instances is not None:
        text = _GROUP.sub(lambda m: re.sub(r"count: \d+", f"count: {instances}", m.group(0)), text, count=1)
    if queue_delay_us is not None:
        text = _DELAY.sub(f"max_queue_delay_microseconds: {queue_delay_us}", text, count=1)
    if preferred_batch_sizes is not None:
        text = _PREFERRED.sub("", text)
        if preferred_batch_sizes:
            text = text.replace("dynamic_batching {\n", "dynamic_batching {\n" + preferred_batch_line(preferred_batch_sizes), 1)
    if threads is not None:
        text = set_parameter(text, "intra_op_threads", str(threads))
    if note is not None:
        first, _, rest = _NOTE.sub("", text).partition("\n")
        text = f"{first}\n# tuning: {note}\n{rest}"
    return text


def enable_response_cache(text: str) -> str:
    return text if "response_cache" in text else text + "response_cache { enable: true }\n"


def strip_tuning(text: str) -> str:
    """The config without its tuning: two configs equal here describe the same model."""
    text = _NOTE.sub("", _PREFERRED.sub("", _DELAY.sub("", _GROUP.sub("", text))))
    for key in _TUNING_PARAMETERS:
        text = _parameter_line(key).sub("", text)
    return text


def _parameter_line(key: str) -> re.Pattern:
    return re.compile(rf'^parameters {{ key: "{key}" value {{ string_value: "((?:[^"\\]|\\.)*)" }} }}\n', re.MULTILINE)


def set_parameter(text: str, key: str, value: str) -> str:
    """The config with parameter `key` set to `value` (replaced, or added last)."""
    line = f'parameters {{ key: "{key}" value {{ string_value: "{_escape(value)}" }} }}\n'
    pattern = _parameter_line(key)
    if pattern.search(text):
        return pattern.sub(lambda _: line, text, count=1)
    return text.rstrip("\n") + "\n" + line


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)
