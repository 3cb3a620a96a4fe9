"""Decide what model a build makes: a ModelDefinition (task, pooling, every config parameter) decided by the
contract's rules with the precedence explicit flag > sentence-transformers config > architecture default (as
vLLM), then its serving plan and runtime."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from triton_pooling_contract import rules
from triton_pooling_contract.checkpoint_info import CheckpointInfo
from triton_pooling_contract.definition import DEFAULT_MAX_BATCH_SIZE, ModelDefinition, parse_matryoshka_dimensions
from triton_pooling_contract.parameters import (
    DEFAULT_CPU_RUNTIME, Activation, ClassifierMethod, DefinitionError, DType, Runtime,
)
from triton_pooling_contract.tasks import EMBEDDING_TASKS, PoolingTask, PoolingType, default_task, parse_task

from .config_text import ModelSpec
from .errors import BuildError, listing
from .tuning import ServingPlan, TuningFlags

DTYPES = tuple(d.value for d in DType)
RUNTIMES = tuple(r.value for r in Runtime)
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
    trust_remote_code: bool = False
    chunked_processing: bool = False
    matryoshka_dimensions: str | None = None  # "all" or "64,128,256"; None: what the checkpoint declares
    prompts: tuple[tuple[str, str], ...] = ()  # --prompt NAME=TEXT: added to (or replacing) the checkpoint's
    default_prompt_name: str | None = None
    # LLM rerankers: label tokens ([false, true] for from_2_way_softmax), the method, and a score template's text
    classifier_from_token: tuple[str, ...] = ()
    classifier_method: str | None = None
    score_template: str | None = None
    tuning: TuningFlags = TuningFlags()


@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    spec: ModelSpec  # the definition and, once planned, its tuning
    pooling: PoolingType
    runtime: Runtime | None  # None: decided with the serving plan (apply_plan)
    info: CheckpointInfo
    decisions: tuple[str, ...]  # one line per choice and where it came from, printed by the CLI

    @property
    def definition(self) -> ModelDefinition:
        return self.spec.definition


def resolve(request: BuildRequest, info: CheckpointInfo) -> ResolvedModel:
    """The model a request makes of a checkpoint, every refusal first (the rules the stub applies again)."""
    try:
        return _resolve(request, info)
    except DefinitionError as e:  # rules.NotServable included
        raise BuildError(str(e)) from None


def _resolve(request: BuildRequest, info: CheckpointInfo) -> ResolvedModel:
    decisions: list[str] = []
    spell = rules.FLAGS
    task = _resolve_task(request, info, decisions)
    rules.check_classifier_options(task, request.classifier_from_token, request.classifier_method,
                                   request.score_template, spell)
    rules.check_pipeline(info, task)
    explicit = _parse_pooling(request.pooling_type) if request.pooling_type is not None else None
    token_head = bool(request.classifier_from_token)
    if token_head:
        if request.runtime == Runtime.TENSORRT.value:
            raise BuildError("--classifier-from-tokens is served by the lean runtimes and torch; --runtime tensorrt "
                             "does not fold label tokens: use --runtime onnx, openvino or torch")
        decisions.append(_label_tokens(request, info))
    if request.score_template is not None:
        from triton_pooling_backend.errors import ModelConfigError
        from triton_pooling_backend.score_template import compile_template

        try:
            compile_template(request.score_template, "--score-template")
        except ModelConfigError as e:
            raise BuildError(str(e)) from None
        decisions.append("score template: every (TEXT, TEXT_PAIR) pair is rendered into one text (--score-template)")
    pooling = rules.pooling_for(task, explicit, info, request.step_tag_id, spell, token_head=token_head)
    decisions.append(f"pooling {pooling.value.value}: {pooling.reason}")
    pooling = pooling.value
    rules.check_step_options(task, pooling, request.step_tag_id, request.returned_token_ids, info.num_labels, spell)
    rules.check_sparse(task, pooling, info, request.chunked_processing,
                       info.matryoshka_dimensions if request.matryoshka_dimensions is None else request.matryoshka_dimensions,
                       spell)
    if pooling is PoolingType.SPLADE:
        if request.runtime == Runtime.TENSORRT.value:
            raise BuildError("SPLADE (sparse) models are served by the lean runtimes and torch; --runtime tensorrt does "
                             "not build their masked-LM pooling: use --runtime onnx, openvino or torch")
        decisions.append(f"sparse embeddings: SPLADE, {info.splade.describe()}; SPARSE_INDICES / SPARSE_VALUES / "
                         "SPARSE_TOKENS, no dense vector")
    rules.check_weights_and_code(info, request.allow_unsafe_weights, request.trust_remote_code, spell)
    if request.chunked_processing and task is not PoolingTask.EMBED:
        raise BuildError(f"--enable-chunked-processing applies to task 'embed' only (one vector averaged over a long "
                         f"prompt's chunks, as vLLM); task {task.value!r} fits long texts with TRUNCATE_PROMPT_TOKENS")
    if request.chunked_processing:
        decisions.append("chunked processing: prompts longer than max_tokens are encoded in chunks and averaged")
    if request.max_batch_size < 1:
        raise BuildError(f"--max-batch-size is {request.max_batch_size}; expected an integer >= 1")
    name = request.name or task.value
    _check_name(name)
    definition = ModelDefinition(
        task=task, checkpoint=CHECKPOINT_FOLDER if request.copy_checkpoint else str(info.path),
        checkpoint_path=info.path,
        # Always written: the config then says what it serves without re-reading the checkpoint's files.
        pooling_type=pooling, use_activation=_activation(request, info, task, pooling, decisions),
        max_tokens=_max_tokens(request, info, decisions), dtype=_dtype(request),
        allow_unsafe_weights=not info.has_safetensors, trust_remote_code=bool(info.auto_map), step_tag_id=request.step_tag_id,
        returned_token_ids=request.returned_token_ids, chunked_processing=request.chunked_processing,
        id2label=() if token_head else _class_names(info, task),
        activation=_classifier_activation(info, task, decisions, request),
        classifier_from_token=request.classifier_from_token,
        classifier_method=ClassifierMethod(request.classifier_method) if request.classifier_method else None,
        score_template=request.score_template,
        matryoshka_dimensions=_matryoshka(request, info, task, decisions),
        **_prompts(request, info, task, decisions),
        max_batch_size=request.max_batch_size,
    )
    runtime = _parse_runtime(request.runtime)
    return ResolvedModel(ModelSpec(name, definition), pooling, runtime, info, tuple(decisions))


def _matryoshka(request: BuildRequest, info: CheckpointInfo, task: PoolingTask,
                decisions: list[str]) -> tuple[int, ...] | None:
    """DIMENSIONS is served only for models declared Matryoshka (as vLLM): by the flag, else by config.json."""
    if request.matryoshka_dimensions is not None:
        if task not in EMBEDDING_TASKS:
            raise BuildError(f"--matryoshka-dimensions applies to embed and token_embed; this build is {task.value}")
        try:
            sizes = parse_matryoshka_dimensions(request.matryoshka_dimensions)
        except DefinitionError:
            raise BuildError(f"--matryoshka-dimensions is {request.matryoshka_dimensions!r}; expected 'all' or "
                             "comma-separated sizes >= 1, e.g. 64,128,256") from None
        decisions.append(f"Matryoshka dimensions {request.matryoshka_dimensions}: --matryoshka-dimensions")
        return sizes
    if task in EMBEDDING_TASKS and info.matryoshka_dimensions is not None:
        decisions.append(f"Matryoshka dimensions {', '.join(map(str, info.matryoshka_dimensions)) or 'all'}: "
                         "config.json (is_matryoshka / matryoshka_dimensions)")
        return info.matryoshka_dimensions
    return None


def _prompts(request: BuildRequest, info: CheckpointInfo, task: PoolingTask, decisions: list[str]) -> dict:
    """sentence-transformers' prompts (config_sentence_transformers.json) with the flags' added or replacing them."""
    st, late = info.sentence_transformers, info.late_interaction
    prompts = dict(st.prompts if st and task is PoolingTask.EMBED else ())
    if late is not None:  # a ColBERT folder's prefixes are its query / document prompts; the names are its roles
        prompts = {"query": "", "document": "", **dict(late.prompts)}
    elif (request.prompts or request.default_prompt_name) and task is not PoolingTask.EMBED:
        raise BuildError(f"--prompt / --default-prompt-name apply to embed models; this build is {task.value}")
    prompts.update(request.prompts)
    default = request.default_prompt_name or (st.default_prompt_name if st and task is PoolingTask.EMBED else None)
    if default is not None and default not in prompts:
        raise BuildError(f"--default-prompt-name is {default!r}; this model's prompts are "
                         f"{listing(prompts) or 'none'} (add one with --prompt {default}=TEXT)")
    if prompts:
        decisions.append(f"prompts {', '.join(repr(n) for n in sorted(prompts))}"
                         f"{f', default {default!r}' if default else ''}: config_sentence_transformers.json"
                         f"{' and --prompt' if request.prompts else ''}")
    include = st.pipeline.include_prompt if st else True
    return {"prompts": tuple(sorted(prompts.items())), "default_prompt_name": default, "include_prompt": include}


def _label_tokens(request: BuildRequest, info: CheckpointInfo) -> str:
    """Each label a single token of the checkpoint's tokenizer (refused naming it), found as vLLM finds it."""
    import transformers

    from triton_pooling_backend.encoders.token_head import label_token_ids
    from triton_pooling_backend.errors import ModelConfigError

    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(info.path), trust_remote_code=request.trust_remote_code)
        ids = label_token_ids(tokenizer, request.classifier_from_token, "--classifier-from-tokens", str(info.path))
    except ModelConfigError as e:
        raise BuildError(str(e)) from None
    except Exception as e:
        raise BuildError(f"--classifier-from-tokens: cannot load the tokenizer of {info.path}: {type(e).__name__}: {e}") from e
    labels = ", ".join(f"{t!r} = id {i}" for t, i in zip(request.classifier_from_token, ids))
    formula = ("score = logit_true - logit_false (sigmoid: from_2_way_softmax)"
               if request.classifier_method == ClassifierMethod.FROM_2_WAY_SOFTMAX.value else "one label per token's logit")
    return f"LLM reranker: lm_head rows of {labels} folded into the head; {formula}"


def _classifier_activation(info: CheckpointInfo, task: PoolingTask, decisions: list[str],
                           request: BuildRequest | None = None) -> Activation | None:
    """Written for classifiers, so every runtime (the ensemble's head step included) reads one decision."""
    if task not in (PoolingTask.SEQ_CLASSIFY, PoolingTask.TOKEN_CLASSIFY):
        return None
    if request is not None and request.classifier_from_token:
        from triton_pooling_backend.encoders.token_head import num_labels

        labels = num_labels(request.classifier_from_token, ClassifierMethod(request.classifier_method))
        activation = rules.classifier_activation(None, labels)
        decisions.append(f"activation {activation.value}: {labels} label(s) from {request.classifier_method} (vLLM's rule)")
        return activation
    activation = rules.classifier_activation(info.problem_type, info.num_labels, info.cross_encoder_activation)
    source = (f"the cross-encoder's activation_fn {info.cross_encoder_activation}" if info.cross_encoder_activation
              else f"{info.num_labels or 2} label(s), problem_type {info.problem_type or 'not set'} (vLLM's rule)")
    decisions.append(f"activation {activation.value}: {source}")
    return activation


def _class_names(info: CheckpointInfo, task: PoolingTask) -> tuple[str, ...]:
    """Class names for clients that cannot read the checkpoint (the gateway); Hugging Face's defaults
    (LABEL_0, LABEL_1, ...) are what they assume anyway."""
    defaults = tuple(f"LABEL_{i}" for i in range(len(info.id2label)))
    classifier = task in (PoolingTask.SEQ_CLASSIFY, PoolingTask.TOKEN_CLASSIFY)
    return info.id2label if classifier and info.id2label != defaults else ()


def _resolve_task(request: BuildRequest, info: CheckpointInfo, decisions: list[str]) -> PoolingTask:
    if request.task is None and request.classifier_from_token:
        rules.check_causal_lm(PoolingTask.SEQ_CLASSIFY, info, rules.FLAGS)
        decisions.append("task seq_classify: --classifier-from-tokens (an LLM reranker)")
        return PoolingTask.SEQ_CLASSIFY
    if request.task is None and info.late_interaction is not None:
        decisions.append("task token_embed: a ColBERT (late-interaction) folder, one vector per token")
        return PoolingTask.TOKEN_EMBED
    if request.task is None:
        task = default_task(info.architectures)
        decisions.append(f"task {task.value}: default for architectures {list(info.architectures) or 'none listed'}")
        return task
    try:
        task = parse_task(request.task)
    except ValueError as e:
        raise BuildError(f"--task: {e}") from e
    rules.check_task(task, info, rules.FLAGS, request.classifier_from_token)
    decisions.append(f"task {task.value}: --task {request.task}")
    return task


def _parse_pooling(value: str) -> PoolingType:
    try:
        return PoolingType(value.strip().upper())
    except ValueError:
        raise BuildError(f"--pooling-type is {value!r}; allowed: {listing(p.value for p in PoolingType)}") from None


def _activation(request, info, task, pooling, decisions) -> bool:
    if request.use_activation is not None:
        decisions.append(f"use_activation {str(request.use_activation).lower()}: --use-activation")
        return request.use_activation
    if pooling is PoolingType.SPLADE and info.sentence_transformers is None:
        decisions.append("use_activation false: SPLADE weights are served as computed (SparseEncoder, vLLM)")
        return False
    if task is PoolingTask.EMBED and info.sentence_transformers is not None:
        # vLLM normalizes a sentence-transformers embedder only when its folder has a Normalize module.
        normalize = info.sentence_transformers.normalize
        decisions.append(f"use_activation {str(normalize).lower()}: sentence-transformers Normalize module "
                         f"{'present' if normalize else 'absent'}")
        return normalize
    return True


def _max_tokens(request, info, decisions) -> int | None:
    if request.max_tokens is not None:
        if request.max_tokens < 1:
            raise BuildError(f"--max-tokens is {request.max_tokens}; expected an integer >= 1")
        rules.check_max_tokens(request.max_tokens, "--max-tokens", info)
        return request.max_tokens
    window = info.sentence_transformers.window if info.sentence_transformers else None
    if window:
        rules.check_max_tokens(window, "sentence_bert_config.json max_seq_length", info)
        decisions.append(f"max_tokens {window}: sentence_bert_config.json max_seq_length")
        return window
    if request.runtime == Runtime.TENSORRT.value:  # pinned: the engine's profile and the tokenize step must agree
        if info.token_limit is None:
            raise BuildError(f"cannot tell the token limit of {info.path} (no max_position_embeddings or "
                             "tokenizer model_max_length): pass --max-tokens")
        decisions.append(f"max_tokens {info.token_limit}: the checkpoint's position / tokenizer limit")
        return info.token_limit
    return None


def _dtype(request) -> DType:
    if request.dtype is None:
        return DType.FLOAT32
    if request.dtype not in DTYPES:
        raise BuildError(f"--dtype is {request.dtype!r}; allowed: {listing(DTYPES)}")
    return DType(request.dtype)


def _parse_runtime(value: str | None) -> Runtime | None:
    """The asked runtime, or None (decided with the serving plan: `apply_plan`)."""
    if not value:
        return None
    try:
        return Runtime(value)
    except ValueError:
        raise BuildError(f"--runtime is {value!r}; allowed: {listing(RUNTIMES)}") from None


def apply_plan(model: ResolvedModel, plan: ServingPlan, flags: TuningFlags | None = None) -> ResolvedModel:
    """The model with its serving tuning and its runtime: torch on GPUs (the lean runtimes run on the CPU), on
    CPUs the asked runtime or the measured default (DEFAULT_CPU_RUNTIME) for float32."""
    decisions = list(model.decisions)
    runtime = _runtime_for(model, plan, decisions)
    try:
        rules.check_head_runtime(model.info, runtime, rules.FLAGS)
    except rules.NotServable as e:
        raise BuildError(str(e)) from None
    definition = model.definition
    if runtime is not Runtime.TENSORRT:
        definition = dataclasses.replace(definition, runtime=runtime, intra_op_threads=plan.threads,
                                         max_batch_tokens=plan.max_batch_tokens or definition.max_batch_tokens)
    definition = dataclasses.replace(definition, tuning_flags=(flags or TuningFlags()).as_flags(),
                                     instance_count=plan.total_instances)
    decisions.append(f"serving: {plan.describe()} ({plan.reason})")
    spec = dataclasses.replace(
        model.spec, definition=definition, instance_count=plan.instances, instance_kind=plan.kind, gpus=plan.gpus,
        queue_delay_us=plan.queue_delay_us, preferred_batch_sizes=plan.preferred_batch_sizes, tuning_note=plan.note)
    return dataclasses.replace(model, spec=spec, runtime=runtime, decisions=tuple(decisions))


def _runtime_for(model: ResolvedModel, plan: ServingPlan, decisions: list[str]) -> Runtime:
    asked, dtype = model.runtime, model.definition.dtype
    if asked is Runtime.TENSORRT:
        return asked
    placement = f"this build is for GPUs {list(plan.gpus)}" if plan.on_gpu else None
    if asked is not None:
        try:
            rules.check_runtime(asked, dtype, placement, rules.FLAGS)
        except rules.NotServable as e:
            raise BuildError(str(e)) from None
    if plan.on_gpu:
        decisions.append("runtime torch: GPU profile" + (" (--runtime torch)" if asked else ""))
        return Runtime.TORCH
    if asked is not None:
        decisions.append(f"runtime {asked.value}: --runtime")
        return asked
    if dtype is not DType.FLOAT32:
        decisions.append(f"runtime torch: --dtype {dtype.value} (the lean runtimes serve float32)")
        return Runtime.TORCH
    decisions.append(f"runtime {DEFAULT_CPU_RUNTIME.value}: the CPU default (docs/performance.md)")
    return DEFAULT_CPU_RUNTIME


def _check_name(name: str) -> None:
    if not name or name.startswith(".") or any(c in name for c in '/\\" '):
        raise BuildError(f"--name is {name!r}; a model name must be non-empty and contain no '/', '\\', '\"' or spaces")
