"""Render a per-task model's `config.pbtxt` and `model.py`: the one place the contract's tensors
are written down for Triton (the default repository and `triton-pooling build` both use it). The serving
tuning in a spec (instances, threads, devices, batcher) comes from `tuning.py`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping

from triton_pooling_contract.tasks import OUTPUT_TENSOR, TASK_PARAMETER, TOKEN_LEVEL_TASKS, PoolingTask, Tensor

DEFAULT_MAX_BATCH_SIZE = 64
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
)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    task: PoolingTask
    checkpoint: str  # a directory (absolute or relative to the model folder) or package:<module>
    parameters: Mapping[str, str] = dataclasses.field(default_factory=dict)  # more config parameters
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    preferred_batch_sizes: tuple[int, ...] = ()
    instance_count: int = 1  # per GPU for KIND_GPU
    instance_kind: str = "KIND_CPU"
    gpus: tuple[int, ...] = ()  # KIND_GPU: the devices; each instance runs on its own model_instance_device_id
    tuning_note: str = ""  # a comment line saying where the tuning came from
    response_cache: bool = False
    max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE  # 0: unbounded
    queue_timeout_us: int = DEFAULT_QUEUE_TIMEOUT_US  # 0: none; a request's own timeout may override it


def render_config(spec: ModelSpec) -> str:
    output = OUTPUT_TENSOR[spec.task]
    out_dims = "-1, -1" if spec.task in TOKEN_LEVEL_TASKS else "-1"
    inputs = ",\n".join(
        f'  {{ name: "{n}" data_type: {t} dims: [ {d} ] optional: true{x} }}' for n, t, d, x in INPUTS
    )
    params = {TASK_PARAMETER: spec.task.value, "checkpoint": spec.checkpoint, **spec.parameters}
    lines = [
        f"# triton-pooling model: serves exactly one pooling task ({TASK_PARAMETER} below).",
        *([f"# tuning: {spec.tuning_note}"] if spec.tuning_note else []),
        f'name: "{spec.name}"',
        'backend: "python"',
        f"max_batch_size: {spec.max_batch_size}",
        f"dynamic_batching {{\n{_preferred(spec)}  max_queue_delay_microseconds: {spec.queue_delay_us}\n"
        f"{_queue_policy(spec)}}}",
        instance_group_line(spec.instance_count, spec.instance_kind, spec.gpus),
        "",
        f"input [\n{inputs}\n]",
        "output [",
        f'  {{ name: "{output}" data_type: TYPE_FP32 dims: [ {out_dims} ] }},',
        f'  {{ name: "{Tensor.NUM_TOKENS}" data_type: TYPE_INT32 dims: [ 1 ] }}',
        "]",
        "",
        *(f'parameters {{ key: "{k}" value {{ string_value: "{_escape(str(v))}" }} }}' for k, v in params.items()),
    ]
    if spec.response_cache:
        lines.append("response_cache { enable: true }")
    return "\n".join(lines) + "\n"


def instance_group_line(count: int, kind: str = "KIND_CPU", gpus: tuple[int, ...] = ()) -> str:
    devices = f" gpus: [ {', '.join(str(g) for g in gpus)} ]" if gpus else ""
    return f"instance_group [ {{ count: {count} kind: {kind}{devices} }} ]"


def _preferred(spec: ModelSpec) -> str:
    return preferred_batch_line(spec.preferred_batch_sizes) if spec.preferred_batch_sizes else ""


def preferred_batch_line(sizes: tuple[int, ...]) -> str:
    """The dynamic_batching line that lists preferred batch sizes (indented, newline-ended)."""
    return f"  preferred_batch_size: [ {', '.join(str(n) for n in sizes)} ]\n"


def _queue_policy(spec: ModelSpec) -> str:
    fields = ["timeout_action: REJECT", f"default_timeout_microseconds: {spec.queue_timeout_us}",
              "allow_timeout_override: true", f"max_queue_size: {spec.max_queue_size}"]
    return "  default_queue_policy {\n" + "".join(f"    {f}\n" for f in fields) + "  }\n"


def write_model_folder(repository: Path, spec: ModelSpec, artifact: bool = True) -> Path:
    """Write one per-task model folder (config.pbtxt + 1/model.py) into a repository, with the built artifact its
    runtime serves (exported once, then taken from the shared cache). A checkpoint the served model would refuse
    (pickled weights, remote code, a task it cannot serve) gets no artifact: loading it then fails with that
    refusal, as it should. Tests write their models with this; `triton-pooling build` is the user's way."""
    folder = Path(repository) / spec.name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    (folder / "config.pbtxt").write_text(render_config(spec))
    (folder / "1" / "model.py").write_text(render_model_py(spec.task))
    if artifact:
        from triton_pooling_server.builder.artifact import CheckpointRefused
        from triton_pooling_server.builder.artifact.folder import ensure_folder
        from triton_pooling_backend.errors import ModelConfigError

        try:
            ensure_folder(folder, log=lambda message: None)
        except (CheckpointRefused, ModelConfigError):
            pass  # the served model refuses it with the same message when it loads
    return folder


def render_model_py(task: PoolingTask) -> str:
    return (
        f'"""Triton model serving the {task.value!r} pooling task; all logic lives in triton_pooling_backend."""\n\n'
        "from triton_pooling_backend.triton_model import TritonPoolingModel\n\n\n"
        "class TritonPythonModel(TritonPoolingModel):\n"
        f'    task = "{task.value}"\n'
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
