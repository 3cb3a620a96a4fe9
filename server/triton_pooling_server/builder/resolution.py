"""Decide what model a build makes: task, pooling and config parameters, with the precedence
explicit flag > sentence-transformers config > architecture default (as vLLM)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .model_config import DEFAULT_MAX_BATCH_SIZE, ModelSpec
from triton_pooling_contract.tasks import (
    EMBEDDING_TASKS,
    POOLING_TYPES,
    PoolingTask,
    PoolingType,
    default_pooling,
    default_task,
    parse_task,
    supported_tasks,
)
from triton_pooling_contract.parameters import CHUNKED_PROCESSING_PARAMETER, ID2LABEL_PARAMETER, DEFAULT_CPU_RUNTIME, LEAN_RUNTIMES, TUNING_FLAGS_PARAMETER, DType, Runtime

from .errors import BuildError, listing
from .inspection import CheckpointInfo
from .tuning import ServingPlan, TuningFlags

DTYPES = tuple(d.value for d in DType)
# The backend's runtimes (the `runtime` parameter: what the Python backend computes the encoder with; the lean
# ones serve the graph this build exports), and tensorrt: an ensemble around an engine.
BACKEND_RUNTIMES = tuple(r.value for r in Runtime)
RUNTIMES = (*BACKEND_RUNTIMES, "tensorrt")
LEAN = tuple(r.value for r in LEAN_RUNTIMES)
# Folder name a copied checkpoint gets inside the model folder (config refers to it relatively).
CHECKPOINT_FOLDER = "checkpoint"


@dataclasses.dataclass(frozen=True)
class BuildRequest:
    checkpoint: Path
    task: str | None = None
    name: str | None = None
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    pooling_type: str | None = None
    use_activation: bool | None = None
    max_tokens: int | None = None
    dtype: str | None = None
    runtime: str | None = None
    step_tag_id: int | None = None
    returned_token_ids: tuple[int, ...] | None = None
    copy_checkpoint: bool = False
    allow_unsafe_weights: bool = False
    chunked_processing: bool = False
    tuning: TuningFlags = TuningFlags()


@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    spec: ModelSpec
    pooling: PoolingType
    runtime: str
    info: CheckpointInfo
    decisions: tuple[str, ...]  # one line per choice and where it came from, printed by the CLI


def resolve(request: BuildRequest, info: CheckpointInfo) -> ResolvedModel:
    decisions: list[str] = []
    task = _resolve_task(request, info, decisions)
    pooling = _resolve_pooling(request, info, task, decisions)
    # Always written: the config then says what it serves without re-reading the checkpoint's files.
    params: dict[str, str] = {"pooling_type": pooling.value}
    _step_options(request, info, task, pooling, params)
    # Class names for clients that cannot read the checkpoint (the gateway); Hugging Face's defaults
    # (LABEL_0, LABEL_1, ...) are what they assume anyway.
    defaults = tuple(f"LABEL_{i}" for i in range(len(info.id2label)))
    if task in (PoolingTask.SEQ_CLASSIFY, PoolingTask.TOKEN_CLASSIFY) and info.id2label not in ((), defaults):
        params[ID2LABEL_PARAMETER] = json.dumps(dict(enumerate(info.id2label)))
    _activation(request, info, task, params, decisions)
    _max_tokens(request, info, params, decisions)
    runtime = _check_runtime(request)
    if request.chunked_processing:
        if task is not PoolingTask.EMBED:
            raise BuildError(f"--enable-chunked-processing applies to task 'embed' only (one vector averaged over a long "
                             f"prompt's chunks, as vLLM); task {task.value!r} fits long texts with TRUNCATE_PROMPT_TOKENS")
        params[CHUNKED_PROCESSING_PARAMETER] = "true"
        decisions.append("chunked processing: prompts longer than max_tokens are encoded in chunks and averaged")
    if request.dtype is not None:
        if request.dtype not in DTYPES:
            raise BuildError(f"--dtype is {request.dtype!r}; allowed: {listing(DTYPES)}")
        params["dtype"] = request.dtype
    if not info.has_safetensors:
        if not request.allow_unsafe_weights:
            raise BuildError(f"checkpoint {info.path} has no *.safetensors weights; pickled weights are served "
                             "only with --allow-unsafe-weights")
        params["allow_unsafe_weights"] = "true"
    if request.max_batch_size < 1:
        raise BuildError(f"--max-batch-size is {request.max_batch_size}; expected an integer >= 1")
    name = request.name or task.value
    _check_name(name)
    checkpoint = CHECKPOINT_FOLDER if request.copy_checkpoint else str(info.path)
    spec = ModelSpec(name, task, checkpoint, params, max_batch_size=request.max_batch_size)
    return ResolvedModel(spec, pooling, runtime, info, tuple(decisions))


def _resolve_task(request: BuildRequest, info: CheckpointInfo, decisions: list[str]) -> PoolingTask:
    can_serve = supported_tasks(info.architectures)
    archs = list(info.architectures) or "none listed"
    if request.task is None:
        task = default_task(info.architectures)
        decisions.append(f"task {task.value}: default for architectures {archs}")
        return task
    try:
        task = parse_task(request.task)
    except ValueError as e:
        raise BuildError(f"--task: {e}") from e
    if task not in can_serve:
        raise BuildError(f"--task is {request.task!r}, but checkpoint {info.path} (architectures {archs}) cannot "
                         f"serve it; supported tasks: {listing(t.value for t in can_serve)}")
    decisions.append(f"task {task.value}: --task {request.task}")
    return task


def _resolve_pooling(request: BuildRequest, info: CheckpointInfo, task: PoolingTask,
                     decisions: list[str]) -> PoolingType:
    allowed = POOLING_TYPES[task]
    if request.pooling_type is not None:
        pooling = _parse_pooling(request.pooling_type)
        if pooling not in allowed:
            raise BuildError(f"--pooling-type is {request.pooling_type!r}; task {task.value!r} allows "
                             f"{listing(p.value for p in allowed)}")
        decisions.append(f"pooling {pooling.value}: --pooling-type")
        return pooling
    if task is PoolingTask.TOKEN_CLASSIFY and request.step_tag_id is not None:
        decisions.append("pooling STEP: --step-tag-id given")
        return PoolingType.STEP
    st = info.sentence_transformers
    if task is PoolingTask.EMBED and st is not None and st.pooling_mode != "none":
        if st.pooling is None:
            raise BuildError(f"the sentence-transformers Pooling module of {info.path} uses {st.pooling_mode!r}, "
                             f"which is not served; pass --pooling-type with one of {listing(p.value for p in allowed)}")
        decisions.append(f"pooling {st.pooling.value}: sentence-transformers Pooling module ({st.pooling_mode})")
        return st.pooling
    pooling = default_pooling(task, info.architectures)
    decisions.append(f"pooling {pooling.value}: default for {task.value} and architectures "
                     f"{list(info.architectures) or 'none listed'}")
    return pooling


def _parse_pooling(value: str) -> PoolingType:
    try:
        return PoolingType(value.strip().upper())
    except ValueError:
        raise BuildError(f"--pooling-type is {value!r}; allowed: {listing(p.value for p in PoolingType)}") from None


def _step_options(request, info, task, pooling, params) -> None:
    if pooling is PoolingType.STEP:
        if request.step_tag_id is None:
            raise BuildError("--pooling-type STEP needs --step-tag-id (the token id that ends a step)")
        params["step_tag_id"] = str(request.step_tag_id)
    elif request.step_tag_id is not None:
        raise BuildError(f"--step-tag-id applies to token_classify with STEP pooling; this build is "
                         f"{task.value} with {pooling.value} pooling")
    if request.returned_token_ids is None:
        return
    if pooling is not PoolingType.STEP:
        raise BuildError("--returned-token-ids applies to STEP pooling only (give --step-tag-id)")
    labels = info.num_labels
    bad = [i for i in request.returned_token_ids if i < 0 or (labels is not None and i >= labels)]
    if bad or not request.returned_token_ids:
        raise BuildError(f"--returned-token-ids is {list(request.returned_token_ids)}; this checkpoint has labels "
                         f"0..{(labels or 1) - 1}")
    params["returned_token_ids"] = ",".join(str(i) for i in request.returned_token_ids)


def _activation(request, info, task, params, decisions) -> None:
    if request.use_activation is not None:
        params["use_activation"] = str(request.use_activation).lower()
        decisions.append(f"use_activation {params['use_activation']}: --use-activation")
    elif task is PoolingTask.EMBED and info.sentence_transformers is not None:
        # vLLM normalizes a sentence-transformers embedder only when its folder has a Normalize module.
        params["use_activation"] = str(info.sentence_transformers.normalize).lower()
        decisions.append(f"use_activation {params['use_activation']}: sentence-transformers Normalize module "
                         f"{'present' if info.sentence_transformers.normalize else 'absent'}")


def _max_tokens(request, info, params, decisions) -> None:
    if request.max_tokens is not None:
        if request.max_tokens < 1:
            raise BuildError(f"--max-tokens is {request.max_tokens}; expected an integer >= 1")
        params["max_tokens"] = str(request.max_tokens)
    elif info.sentence_transformers is not None and info.sentence_transformers.max_seq_length:
        params["max_tokens"] = str(info.sentence_transformers.max_seq_length)
        decisions.append(f"max_tokens {params['max_tokens']}: sentence_bert_config.json max_seq_length")
    elif request.runtime == "tensorrt":  # pinned: the engine's profile and the tokenize step must agree
        if info.token_limit is None:
            raise BuildError(f"cannot tell the token limit of {info.path} (no max_position_embeddings or "
                             "tokenizer model_max_length): pass --max-tokens")
        params["max_tokens"] = str(info.token_limit)
        decisions.append(f"max_tokens {params['max_tokens']}: the checkpoint's position / tokenizer limit")


def _check_runtime(request: BuildRequest) -> str:
    """The asked runtime, or '' (decided with the serving plan: `apply_plan`)."""
    runtime = request.runtime or ""
    if runtime and runtime not in RUNTIMES:
        raise BuildError(f"--runtime is {runtime!r}; allowed: {listing(RUNTIMES)}")
    return runtime


def apply_plan(model: ResolvedModel, plan: ServingPlan, flags: TuningFlags | None = None) -> ResolvedModel:
    """The model with its serving tuning and its runtime: torch on GPUs (the lean runtimes run on the CPU), on
    CPUs the asked runtime or the measured default (DEFAULT_CPU_RUNTIME) for float32."""
    spec, decisions = model.spec, list(model.decisions)
    params = dict(spec.parameters)
    runtime = _runtime_for(model, plan, params.get("dtype", DType.FLOAT32.value), decisions)
    if runtime != "tensorrt":
        params["runtime"] = runtime
        params["intra_op_threads"] = str(plan.threads)
        if plan.max_batch_tokens is not None:
            params["max_batch_tokens"] = str(plan.max_batch_tokens)
    flags_text = (flags or TuningFlags()).as_flags()
    if flags_text:
        params[TUNING_FLAGS_PARAMETER] = flags_text
    decisions.append(f"serving: {plan.describe()} ({plan.reason})")
    spec = dataclasses.replace(
        spec, parameters=params, instance_count=plan.instances, instance_kind=plan.kind, gpus=plan.gpus,
        queue_delay_us=plan.queue_delay_us, preferred_batch_sizes=plan.preferred_batch_sizes,
        tuning_note=f"{plan.describe()}; {plan.reason} (triton-pooling build, docs/performance.md)")
    return dataclasses.replace(model, spec=spec, runtime=runtime, decisions=tuple(decisions))


def _runtime_for(model: ResolvedModel, plan: ServingPlan, dtype: str, decisions: list[str]) -> str:
    asked = model.runtime
    if asked == "tensorrt":
        return asked
    if plan.on_gpu:
        if asked in LEAN:
            raise BuildError(f"--runtime {asked} runs on the CPU, but this build is for GPUs {list(plan.gpus)}: use "
                             "--runtime torch (or tensorrt), or --profile cpu")
        decisions.append("runtime torch: GPU profile" + (" (--runtime torch)" if asked else ""))
        return Runtime.TORCH.value
    if asked in LEAN and dtype != DType.FLOAT32.value:
        raise BuildError(f"--runtime {asked} serves float32 only; --dtype {dtype} runs with --runtime torch")
    if asked:
        decisions.append(f"runtime {asked}: --runtime")
        return asked
    if dtype != DType.FLOAT32.value:
        decisions.append(f"runtime torch: --dtype {dtype} (the lean runtimes serve float32)")
        return Runtime.TORCH.value
    decisions.append(f"runtime {DEFAULT_CPU_RUNTIME.value}: the CPU default (docs/performance.md)")
    return DEFAULT_CPU_RUNTIME.value


def _check_name(name: str) -> None:
    if not name or name.startswith(".") or any(c in name for c in '/\\" '):
        raise BuildError(f"--name is {name!r}; a model name must be non-empty and contain no '/', '\\', '\"' or spaces")
