"""The TensorRT layout: one task per model kept, the encoder on TensorRT.

`<name>` is an ensemble (it carries the `pooling_task` parameter and the contract's tensors) of three steps:
  `<name>_tokenize` (Python backend): TEXT / INPUT_IDS / TEXT_PAIR / TRUNCATE_PROMPT_TOKENS → padded ids + mask;
  `<name>_encoder` (`tensorrt_plan`): ids + mask → hidden states (embed, token_embed) or the checkpoint's own
      logits (seq_classify, token_classify);
  `<name>_head` (Python backend): the task's pooling and head (normalization, Matryoshka, activation, STEP).
The encoder's graph comes from tensorrt/export_onnx.py, its engine from tensorrt/build_engine.py with
the optimization profile below. `python-onnxruntime` is a CPU stand-in for the encoder step (the same
ONNX graph in a Python model) that lets the rest of the ensemble run where there is no GPU.
"""

from __future__ import annotations

import dataclasses

from triton_pooling_contract.ensemble import (
    ATTENTION_MASK, ENCODER_FILES, ENCODER_PLATFORMS, HIDDEN_STATES, INPUT_IDS, LOGITS, STEP_TASK_PARAMETER, TOKEN_TYPE_IDS,
)
from triton_pooling_contract.parameters import InstanceKind
from triton_pooling_contract.tasks import OUTPUT_TENSOR, TASK_PARAMETER, TOKEN_LEVEL_TASKS, PoolingTask, Tensor, default_pooling

from ..config_text import INPUTS, render_config
from ..errors import BuildError, listing
from ..resolution import CHECKPOINT_FOLDER, ResolvedModel

STEP_CLASSES = {"tokenize": "TokenizeStep", "head": "HeadStep", "encoder": "OnnxEncoderStep"}


@dataclasses.dataclass(frozen=True)
class Profile:
    """TensorRT optimization profile: (batch, tokens) shapes of every encoder input."""

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]


def optimization_profile(max_batch_size: int, max_tokens: int, opt_batch: int | None = None,
                         opt_tokens: int | None = None) -> Profile:
    """min 1x1; max = what the model accepts; opt = the shape TensorRT tunes kernels for (default: a
    quarter of the batch and 128 tokens, typical embedding traffic), kept within min..max."""
    if max_batch_size < 1 or max_tokens < 1:
        raise BuildError(f"profile needs max_batch_size >= 1 and max_tokens >= 1; got {max_batch_size}, {max_tokens}")
    opt = (opt_batch or max(1, max_batch_size // 4), opt_tokens or min(128, max_tokens))
    if not (1 <= opt[0] <= max_batch_size and 1 <= opt[1] <= max_tokens):
        raise BuildError(f"opt shape {opt} is outside min (1, 1) .. max ({max_batch_size}, {max_tokens})")
    return Profile((1, 1), opt, (max_batch_size, max_tokens))


def encoder_inputs(uses_token_types: bool) -> tuple[str, ...]:
    return (INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS) if uses_token_types else (INPUT_IDS, ATTENTION_MASK)


def encoder_output(task: PoolingTask) -> str:
    return HIDDEN_STATES if task in (PoolingTask.EMBED, PoolingTask.TOKEN_EMBED) else LOGITS


def step_names(name: str) -> dict[str, str]:
    return {step: f"{name}_{step}" for step in ("tokenize", "encoder", "head")}


def tensorrt_files(model: ResolvedModel, encoder_platform: str = "tensorrt_plan") -> dict[str, str]:
    if encoder_platform not in ENCODER_PLATFORMS:
        raise BuildError(f"encoder platform is {encoder_platform!r}; allowed: {listing(ENCODER_PLATFORMS)}")
    spec, info = model.spec, model.info
    task = spec.task
    if task is PoolingTask.SEQ_CLASSIFY and model.pooling is not default_pooling(task, info.architectures):
        raise BuildError(f"--runtime tensorrt serves seq_classify with the checkpoint's own head pooling "
                         f"({default_pooling(task, info.architectures).value}); got --pooling-type {model.pooling.value}")
    width = _encoded_width(model)
    names = step_names(spec.name)
    # Steps live in sibling folders: a copied checkpoint (relative path) is reached through the ensemble's folder.
    ref = spec.definition.checkpoint
    checkpoint = f"../{spec.name}/{CHECKPOINT_FOLDER}" if ref == CHECKPOINT_FOLDER else ref
    step_spec = dataclasses.replace(spec, definition=dataclasses.replace(spec.definition, checkpoint=checkpoint))
    ids_in = encoder_inputs(info.uses_token_types)
    int_tensors = [(n, "TYPE_INT64", "-1") for n in ids_in]
    encoded = (encoder_output(task), "TYPE_FP32", width)
    files = {
        f"{spec.name}/config.pbtxt": _ensemble_config(model, names, ids_in),
        f"{spec.name}/1/.keep": "",  # Triton needs a version folder, even for an ensemble
        f"{names['tokenize']}/config.pbtxt": _python_step(step_spec, names["tokenize"], None, int_tensors),
        f"{names['tokenize']}/1/model.py": _step_model_py("tokenize"),
        f"{names['head']}/config.pbtxt": _python_step(
            step_spec, names["head"], [encoded, (INPUT_IDS, "TYPE_INT64", "-1"), (ATTENTION_MASK, "TYPE_INT64", "-1"),
                                       *[(n, t, d) for n, t, d, _ in INPUTS if n in (Tensor.DIMENSIONS, Tensor.USE_ACTIVATION)]],
            None),
        f"{names['head']}/1/model.py": _step_model_py("head"),
        f"{names['encoder']}/config.pbtxt": _encoder_config(spec, names["encoder"], int_tensors, encoded, encoder_platform),
    }
    if encoder_platform == "python-onnxruntime":
        files[f"{names['encoder']}/1/model.py"] = _step_model_py("encoder")
    return files


def _encoded_width(model: ResolvedModel) -> str:
    """Dims of the encoder output after the batch axis."""
    info, task = model.info, model.spec.task
    if task in (PoolingTask.EMBED, PoolingTask.TOKEN_EMBED):
        if not info.hidden_size:
            raise BuildError(f"{info.path}/config.json names no hidden size (hidden_size, dim or d_model)")
        return f"-1, {info.hidden_size}"
    labels = info.num_labels or 2  # transformers' default when a classifier's config names no labels
    return f"{labels}" if task is PoolingTask.SEQ_CLASSIFY else f"-1, {labels}"


def _tensor_lines(tensors, optional_names=()) -> str:
    return ",\n".join(f'  {{ name: "{n}" data_type: {t} dims: [ {d} ]{" optional: true" if n in optional_names else ""} }}'
                      for n, t, d in tensors)


def _python_step(spec, name: str, inputs, outputs) -> str:
    """A Python-backend step: the contract's inputs (tokenize) or the encoded tensors (head), same parameters."""
    config = render_config(dataclasses.replace(spec, name=name)).replace(
        f'key: "{TASK_PARAMETER}"', f'key: "{STEP_TASK_PARAMETER}"')
    config = config.replace(config.splitlines()[0], f"# triton-pooling ensemble step of model {spec.name!r}.", 1)
    head, _, rest = config.partition("\ninput [")
    _, _, params = rest.partition("\n]\n\n")
    if inputs is None:  # tokenize: the contract's inputs, ids and mask out
        io = "input [" + rest.partition("\noutput [")[0] + f"\noutput [\n{_tensor_lines(outputs)}\n]\n"
    else:
        task = spec.task
        out_dims = "-1, -1" if task in TOKEN_LEVEL_TASKS else "-1"
        outs = [(OUTPUT_TENSOR[task], "TYPE_FP32", out_dims), (Tensor.NUM_TOKENS, "TYPE_INT32", "1")]
        io = (f"input [\n{_tensor_lines(inputs, (Tensor.DIMENSIONS, Tensor.USE_ACTIVATION))}\n]\n"
              f"output [\n{_tensor_lines(outs)}\n]\n")
    return f"{head}\n{io}\n{params}"


def _encoder_config(spec, name: str, inputs, encoded, platform: str) -> str:
    kind = (InstanceKind.GPU if platform == "tensorrt_plan" else InstanceKind.CPU).value
    python = platform == "python-onnxruntime"  # its model file is model.py; the graph sits beside it
    engine = 'backend: "python"' if python else f'platform: "{platform}"\ndefault_model_filename: "{ENCODER_FILES[platform]}"'
    return "\n".join([
        f'name: "{name}"', engine, f"max_batch_size: {spec.definition.max_batch_size}",
        f"dynamic_batching {{ max_queue_delay_microseconds: {spec.queue_delay_us} }}",
        f"instance_group [ {{ count: {spec.instance_count} kind: {kind} }} ]",
        f"input [\n{_tensor_lines(inputs)}\n]", f"output [\n{_tensor_lines([encoded])}\n]", "",
    ])


def _ensemble_config(model: ResolvedModel, names: dict[str, str], ids_in) -> str:
    spec = model.spec
    config = render_config(spec)
    head, _, rest = config.partition("\ninput [")
    io, _, params = rest.partition("\n]\n\n")
    header = [line for line in head.splitlines()
              if not line.startswith(("backend:", "dynamic_batching", "instance_group", "  ", "}"))]
    header.insert(2, 'platform: "ensemble"')
    task_out = OUTPUT_TENSOR[spec.task]
    contract_inputs = [n for n, *_ in INPUTS]
    steps = [
        _step(names["tokenize"], {n: n for n in contract_inputs}, {n: f"_{n}" for n in ids_in}),
        _step(names["encoder"], {n: f"_{n}" for n in ids_in}, {encoder_output(spec.task): "_encoded"}),
        _step(names["head"], {encoder_output(spec.task): "_encoded", INPUT_IDS: f"_{INPUT_IDS}",
                              ATTENTION_MASK: f"_{ATTENTION_MASK}", Tensor.DIMENSIONS: Tensor.DIMENSIONS,
                              Tensor.USE_ACTIVATION: Tensor.USE_ACTIVATION},
              {task_out: task_out, Tensor.NUM_TOKENS: Tensor.NUM_TOKENS}),
    ]
    body = "ensemble_scheduling {\n  step [\n" + ",\n".join(steps) + "\n  ]\n}"
    return "\n".join([*header, "", "input [" + io + "\n]", "", body, "", params.rstrip("\n"), ""])


def _step(model_name: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
    maps = [f'      input_map {{ key: "{k}" value: "{v}" }}' for k, v in inputs.items()]
    maps += [f'      output_map {{ key: "{k}" value: "{v}" }}' for k, v in outputs.items()]
    return f'    {{\n      model_name: "{model_name}"\n      model_version: -1\n' + "\n".join(maps) + "\n    }"


def _step_model_py(step: str) -> str:
    module = {"tokenize": "tokenize_step", "head": "head_step", "encoder": "onnx_encoder_step"}[step]
    return (f'"""The {step} step of a triton-pooling TensorRT ensemble; the logic lives in triton_pooling_backend."""\n\n'
            f"from triton_pooling_backend.ensemble.{module} import {STEP_CLASSES[step]} as TritonPythonModel  "
            "# noqa: F401\n")
