"""Every "is this servable, and how" decision, stated once. `triton-pooling build` calls these before it writes
a model, the stub calls them again before it loads one (a config edited by hand gets the same answer), and
each wraps a refusal (`NotServable`) in its own error type. Messages name an option the way the caller's user
spells it (`Spelling`: build flags or config parameters). Standard library only: decided from JSON files.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from .checkpoint_info import POSITION_OFFSET_MODEL_TYPES as _OFFSET
from .checkpoint_info import CheckpointInfo
from .parameters import LEAN_RUNTIMES, Activation, DefinitionError, DType, Runtime
from .st_pipeline import SERVED_ACTIVATIONS, SERVED_MODULES, SPLADE_ACTIVATIONS, SPLADE_STRATEGIES, activation_name
from .tasks import POOLING_TYPES, PoolingTask, PoolingType, default_pooling, supported_tasks


class NotServable(DefinitionError):
    """A checkpoint or option the product does not serve exactly: refused, naming what is served instead."""


@dataclasses.dataclass(frozen=True)
class Spelling:
    """How a message names each option: as a build flag or as a config.pbtxt parameter."""

    task: str
    pooling_type: str
    step_tag_id: str
    returned_token_ids: str
    allow_unsafe_weights: str
    trust_remote_code: str
    runtime: str
    dtype: str
    classifier_from_token: str = "--classifier-from-tokens"
    classifier_method: str = "--classifier-method"
    score_template: str = "--score-template"
    chunked_processing: str = "--enable-chunked-processing"
    matryoshka_dimensions: str = "--matryoshka-dimensions"


FLAGS = Spelling("--task", "--pooling-type", "--step-tag-id", "--returned-token-ids", "--allow-unsafe-weights",
                 "--trust-remote-code", "--runtime", "--dtype")
PARAMETERS = Spelling(*(f"parameter {name!r}" for name in (
    "pooling_task", "pooling_type", "step_tag_id", "returned_token_ids", "allow_unsafe_weights", "trust_remote_code",
    "runtime", "dtype", "classifier_from_token", "classifier_method", "score_template", "enable_chunked_processing",
    "matryoshka_dimensions")))


@dataclasses.dataclass(frozen=True)
class Decision:
    """A value and where it came from (build prints one line per decision)."""

    value: object
    reason: str


def listing(values) -> str:
    return ", ".join(repr(str(getattr(v, "value", v))) for v in values)


def check_task(task: PoolingTask, info: CheckpointInfo, spell: Spelling,
               classifier_from_token: Sequence[str] = ()) -> None:
    """A checkpoint serves the tasks its architecture supports (vLLM's rule), nothing else; a causal LM with label
    tokens (an LLM reranker) serves seq_classify."""
    if classifier_from_token:
        check_causal_lm(task, info, spell)
        return
    can_serve = supported_tasks(info.architectures)
    if task not in can_serve:
        archs = list(info.architectures) or "none listed"
        raise NotServable(f"{spell.task} is {task.value!r}, but checkpoint {info.path} (architectures {archs}) cannot "
                          f"serve it; supported tasks: {listing(can_serve)}")


def pooling_for(task: PoolingTask, explicit: PoolingType | None, info: CheckpointInfo, step_tag_id: int | None,
                spell: Spelling, token_head: bool = False) -> Decision:
    """Explicit > STEP when a step tag is given (token_classify) > the sentence-transformers Pooling module
    (embed) > the architecture's default (as vLLM). An LLM reranker (label tokens) reads its LAST token."""
    valid = POOLING_TYPES[task]
    if token_head:
        if explicit is PoolingType.NATIVE:
            raise NotServable(f"{spell.pooling_type} is 'NATIVE', but with {spell.classifier_from_token} the head is the "
                              "label tokens' lm_head rows, read at a pooled token: use LAST (the default), CLS or MEAN")
        if explicit is None:
            return Decision(PoolingType.LAST, "the last token (an LLM reranker reads its label tokens' logits there)")
    if explicit is not None:
        if explicit not in valid:
            raise NotServable(f"{spell.pooling_type} is {explicit.value!r}; task {task.value!r} allows {listing(valid)}")
        return Decision(explicit, spell.pooling_type)
    if task is PoolingTask.TOKEN_CLASSIFY and step_tag_id is not None:
        return Decision(PoolingType.STEP, f"{spell.step_tag_id} given")
    st = info.sentence_transformers
    if task is PoolingTask.EMBED and st is not None and st.pooling_mode != "none":
        if st.pooling is None:
            raise NotServable(f"the sentence-transformers Pooling module of {info.path} combines the modes "
                              f"{st.pooling_mode!r} (one vector concatenated from each), which is not served; one mode is "
                              f"(give {spell.pooling_type} with one of {listing(valid)} to pool differently)")
        return Decision(st.pooling, f"sentence-transformers Pooling module ({st.pooling_mode})")
    pooling = default_pooling(task, info.architectures)
    return Decision(pooling, f"default for {task.value} and architectures {list(info.architectures) or 'none listed'}")


def check_step_options(task: PoolingTask, pooling: PoolingType, step_tag_id: int | None,
                       returned_token_ids: Sequence[int] | None, num_labels: int | None, spell: Spelling) -> None:
    """STEP pooling needs its tag; the tag and the returned columns mean nothing without STEP."""
    if pooling is PoolingType.STEP and step_tag_id is None:
        raise NotServable(f"{spell.pooling_type} STEP needs {spell.step_tag_id} (the token id that ends a step)")
    if pooling is not PoolingType.STEP and step_tag_id is not None:
        raise NotServable(f"{spell.step_tag_id} applies to token_classify with STEP pooling; this model is "
                          f"{task.value} with {pooling.value} pooling")
    if returned_token_ids is None:
        return
    if pooling is not PoolingType.STEP:
        raise NotServable(f"{spell.returned_token_ids} applies to STEP pooling only (give {spell.step_tag_id})")
    check_returned_token_ids(returned_token_ids, num_labels, spell)


def check_returned_token_ids(returned_token_ids: Sequence[int], num_labels: int | None, spell: Spelling) -> None:
    bad = [i for i in returned_token_ids if i < 0 or (num_labels is not None and i >= num_labels)]
    if bad or not returned_token_ids:
        raise NotServable(f"{spell.returned_token_ids} is {list(returned_token_ids)}; this checkpoint has labels "
                          f"0..{(num_labels or 1) - 1}")


def check_weights_and_code(info: CheckpointInfo, allow_unsafe_weights: bool, trust_remote_code: bool,
                           spell: Spelling) -> None:
    """Nothing of the checkpoint's executes unless asked for: pickled weights, remote code."""
    if not allow_unsafe_weights and not info.has_safetensors:
        raise NotServable(f"checkpoint {info.path} has no *.safetensors weights; pickled weights are served only with "
                          f"{spell.allow_unsafe_weights} (allow_unsafe_weights = true)")
    if info.auto_map and not trust_remote_code:
        raise NotServable(f"checkpoint {info.path} brings its own code (config.json auto_map {sorted(info.auto_map)}); "
                          f"it runs only with {spell.trust_remote_code} (trust_remote_code = true)")


def check_runtime(runtime: Runtime, dtype: DType, gpu_placement: str | None, spell: Spelling) -> None:
    """The lean runtimes serve the exported float32 graph, on the CPU. `gpu_placement` says where a model meant for
    GPUs runs ("this build is for GPUs [0]"); None: the CPU."""
    if runtime not in LEAN_RUNTIMES:
        return
    if gpu_placement is not None:
        raise NotServable(f"{spell.runtime} {runtime.value} runs on the CPU, but {gpu_placement}: use {spell.runtime} "
                          "torch (or tensorrt) on GPUs, or KIND_CPU instances (--profile cpu)")
    if dtype is not DType.FLOAT32:
        raise NotServable(f"{spell.runtime} {runtime.value} serves float32 only; {spell.dtype} {dtype.value} runs with "
                          f"{spell.runtime} torch")


# A CrossEncoder's activation_fn -> ours (torch.nn.modules.* only: anything else would run the checkpoint's code).
CROSS_ENCODER_ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": Activation.NONE,
    "torch.nn.modules.activation.Sigmoid": Activation.SIGMOID,
    "torch.nn.modules.activation.Softmax": Activation.SOFTMAX,
}


def classifier_activation(problem_type: str | None, num_labels: int | None,
                          cross_encoder_activation: str | None = None) -> Activation:
    """A sentence-transformers CrossEncoder's own activation where its folder names one (as CrossEncoder.predict
    and vLLM apply it); else vLLM's rule: HF `problem_type` wins; otherwise sigmoid for one label, softmax for
    several (transformers' default is 2 labels when a config names none)."""
    if cross_encoder_activation is not None:
        if cross_encoder_activation not in CROSS_ENCODER_ACTIVATIONS:
            raise NotServable(f"the checkpoint's cross-encoder activation {cross_encoder_activation!r} is not served; "
                              f"served: {listing(CROSS_ENCODER_ACTIVATIONS)}")
        return CROSS_ENCODER_ACTIVATIONS[cross_encoder_activation]
    if problem_type == "regression":
        return Activation.NONE
    if problem_type == "multi_label_classification":
        return Activation.SIGMOID
    if problem_type == "single_label_classification":
        return Activation.SOFTMAX
    return Activation.SIGMOID if (num_labels or 2) == 1 else Activation.SOFTMAX


def check_pipeline(info: CheckpointInfo, task: PoolingTask) -> None:
    """A sentence-transformers folder serves only if every module of its pipeline is served exactly: Transformer,
    one Pooling, then Dense / LayerNorm, then Normalize last. Anything else is refused, naming the module."""
    st = info.sentence_transformers
    if st is None:
        return
    modules = st.pipeline.modules
    for module in modules:
        if not module.is_sentence_transformers or module.kind not in SERVED_MODULES:
            raise NotServable(f"checkpoint {info.path} has sentence-transformers module {module.describe()}, which is "
                              f"not served; served modules: {listing(SERVED_MODULES)}")
        if module.kind == "Dense" and activation_name(module) not in SERVED_ACTIVATIONS:
            raise NotServable(f"the Dense module {module.describe()} of {info.path} uses activation "
                              f"{module.config.get('activation_function')!r}, which is not served; served: "
                              f"{listing(SERVED_ACTIVATIONS)}")
        if module.kind == "Dense" and module.config.get("use_residual"):
            raise NotServable(f"the Dense module {module.describe()} of {info.path} adds its input back (use_residual), "
                              "which is not served; served: Dense without use_residual")
    kinds = [m.kind for m in modules]
    if st.pipeline.splade is not None or "MLMTransformer" in kinds or st.transformer_task == "fill-mask":
        _check_splade_pipeline(info, task, kinds)
        return
    if st.late_interaction is not None or "MultiVectorMask" in kinds:
        _check_late_interaction_pipeline(info, task, kinds)
        return
    order = ["Transformer", "Pooling"] if "Pooling" in kinds else ["Transformer"]
    head = [k for k in kinds[len(order):] if k != "Normalize"]
    normalize_last = "Normalize" not in kinds or (kinds.index("Normalize") == len(kinds) - 1 and kinds.count("Normalize") == 1)
    if kinds[:len(order)] != order or any(k not in ("Dense", "LayerNorm") for k in head) or not normalize_last:
        raise NotServable(f"the sentence-transformers pipeline of {info.path} is {' -> '.join(kinds)}; served: "
                          "Transformer -> Pooling -> any of Dense / LayerNorm -> Normalize (last, optional)")
    if st.pipeline.head and task is not PoolingTask.EMBED:  # (a ColBERT folder's projection is per token: above)
        raise NotServable(f"checkpoint {info.path} ends its pipeline with {', '.join(m.describe() for m in st.pipeline.head)}, "
                          f"which sentence-transformers applies to the pooled sentence vector; task {task.value!r} does "
                          "not pool: build it as 'embed'")


def _check_splade_pipeline(info: CheckpointInfo, task: PoolingTask, kinds: list[str]) -> None:
    """A SparseEncoder: its masked LM (MLMTransformer, or Transformer with transformer_task fill-mask), then
    SpladePooling, nothing after; the one sparse vector it makes is an embedding."""
    st = info.sentence_transformers
    mlm = kinds[:1] == ["MLMTransformer"] or (kinds[:1] == ["Transformer"] and st.transformer_task == "fill-mask")
    if kinds[1:] != ["SpladePooling"] or not mlm:
        raise NotServable(f"the sentence-transformers pipeline of {info.path} is {' -> '.join(kinds)} (transformer_task "
                          f"{st.transformer_task or 'not set'}); served sparse pipeline: MLMTransformer (or Transformer "
                          "with transformer_task 'fill-mask') -> SpladePooling")
    splade = st.pipeline.splade
    if splade.strategy not in SPLADE_STRATEGIES or splade.activation not in SPLADE_ACTIVATIONS:
        raise NotServable(f"the SpladePooling module of {info.path} has pooling_strategy {splade.strategy!r} and "
                          f"activation_function {splade.activation!r}; served: pooling_strategy {listing(SPLADE_STRATEGIES)}, "
                          f"activation_function {listing(SPLADE_ACTIVATIONS)}")
    if task is not PoolingTask.EMBED:
        raise NotServable(f"checkpoint {info.path} is a SparseEncoder (SpladePooling makes one sparse vector per text); "
                          f"task {task.value!r} is not served for it: build it as 'embed'")


def _check_late_interaction_pipeline(info: CheckpointInfo, task: PoolingTask, kinds: list[str]) -> None:
    """A ColBERT folder: Transformer -> Dense projection(s) -> MultiVectorMask -> Normalize (PyLate's folders stop
    after the Dense: MultiVectorEncoder adds the other two), every option read served exactly, task token_embed."""
    late = info.late_interaction
    dense = [k for k in kinds[1:] if k == "Dense"]
    tail = kinds[1 + len(dense):]
    served_tail = ([], ["MultiVectorMask"], ["MultiVectorMask", "Normalize"]) if late and late.legacy else \
        (["MultiVectorMask", "Normalize"],)
    if late is None or kinds[:1] != ["Transformer"] or not dense or kinds[1:1 + len(dense)] != dense or \
            tail not in served_tail:
        raise NotServable(f"the late-interaction (ColBERT) pipeline of {info.path} is {' -> '.join(kinds)}; served: "
                          "Transformer -> Dense (one or more) -> MultiVectorMask -> Normalize (PyLate folders: "
                          "Transformer -> Dense)")
    if late.problems:
        raise NotServable(f"the ColBERT folder {info.path} sets {'; '.join(late.problems)}, which is not served exactly")
    if task is not PoolingTask.TOKEN_EMBED:
        raise NotServable(f"checkpoint {info.path} is a ColBERT (late-interaction) model: one vector per token, scored "
                          f"by MaxSim; task {task.value!r} is not served for it: build it as 'token_embed'")


def check_sparse(task: PoolingTask, pooling: PoolingType, info: CheckpointInfo, chunked_processing: bool,
                 matryoshka_dimensions, spell: Spelling) -> None:
    """SPLADE pooling reads a masked-LM head; its weights are one per vocabulary entry, so neither Matryoshka sizes
    nor averaged chunks mean anything for it."""
    if pooling is not PoolingType.SPLADE:
        return
    if not info.masked_lm:
        raise NotServable(f"{spell.pooling_type} SPLADE pools a masked-LM head's logits, but checkpoint {info.path} "
                          f"(architectures {list(info.architectures) or 'none listed'}) has none: SPLADE needs a "
                          "*ForMaskedLM checkpoint or a sentence-transformers SparseEncoder folder")
    if chunked_processing:
        raise NotServable(f"{spell.chunked_processing} averages dense chunk vectors; a SPLADE model's sparse weights "
                          "are not served chunked: remove it, and send TRUNCATE_PROMPT_TOKENS to fit long texts")
    if matryoshka_dimensions is not None:
        raise NotServable(f"{spell.matryoshka_dimensions} is set, but a SPLADE model's sparse weights are one per "
                          "vocabulary entry (no Matryoshka sizes): remove it")


def check_head_runtime(info: CheckpointInfo, runtime: Runtime, spell: Spelling) -> None:
    """The pipeline's Dense / LayerNorm modules run in the lean stub from weights the build extracts."""
    st = info.sentence_transformers
    if st is not None and st.pipeline.head and runtime not in LEAN_RUNTIMES:
        raise NotServable(f"checkpoint {info.path} has {', '.join(m.describe() for m in st.pipeline.head)} after its "
                          f"pooling; {spell.runtime} {runtime.value} does not run them: served with "
                          f"{listing(LEAN_RUNTIMES)}")


def check_max_tokens(max_tokens: int | None, source: str, info: CheckpointInfo) -> None:
    """A token limit above the positions the model can address fails inside the engine; refused naming both."""
    if max_tokens is not None and info.positions is not None and max_tokens > info.positions:
        raise NotServable(f"{source} is {max_tokens}, but checkpoint {info.path} addresses at most {info.positions} "
                          f"tokens (its position embeddings{', less the padding offset' if info.model_type in _OFFSET else ''}): "
                          f"use at most {info.positions}")


# What an LLM reranker's label tokens make of a causal LM (vLLM's classifier_from_token + method).
CLASSIFIER_METHODS = ("from_2_way_softmax", "no_post_processing")


def check_classifier_options(task: PoolingTask, tokens: Sequence[str], method: str | None, score_template: str | None,
                             spell: Spelling) -> None:
    """Label tokens need a method and the method its arity; both, and a score template, mean seq_classify."""
    if tokens and method is None:
        raise NotServable(f"{spell.classifier_from_token} is {list(tokens)}, but {spell.classifier_method} is not given; "
                          f"allowed: {listing(CLASSIFIER_METHODS)}")
    if method is not None and not tokens:
        raise NotServable(f"{spell.classifier_method} is {method!r}, but {spell.classifier_from_token} is not given "
                          "(the label tokens, e.g. no,yes)")
    if method is not None and method not in CLASSIFIER_METHODS:
        raise NotServable(f"{spell.classifier_method} is {method!r}; allowed: {listing(CLASSIFIER_METHODS)}")
    if method == "from_2_way_softmax" and len(tokens) != 2:
        raise NotServable(f"{spell.classifier_method} from_2_way_softmax needs exactly 2 tokens [false_token, "
                          f"true_token] (e.g. no,yes); {spell.classifier_from_token} is {list(tokens)}")
    if any(not t for t in tokens):
        raise NotServable(f"{spell.classifier_from_token} is {list(tokens)}; a label token cannot be empty")
    if (tokens or score_template is not None) and task is not PoolingTask.SEQ_CLASSIFY:
        which = spell.classifier_from_token if tokens else spell.score_template
        raise NotServable(f"{which} applies to task 'seq_classify' (a reranker scoring (query, document) pairs); this "
                          f"model serves {task.value!r}")


def check_causal_lm(task: PoolingTask, info: CheckpointInfo, spell: Spelling) -> None:
    """Label tokens read a language-model head: the checkpoint must be a *ForCausalLM."""
    if not any(a.endswith("ForCausalLM") for a in info.architectures):
        raise NotServable(f"{spell.classifier_from_token} reads label-token logits from a causal LM's lm_head, but "
                          f"checkpoint {info.path} has architectures {list(info.architectures) or 'none listed'}; "
                          "served: *ForCausalLM checkpoints (Qwen3-Reranker, bge-reranker-v2-gemma, mxbai-rerank-v2)")
    if task is not PoolingTask.SEQ_CLASSIFY:
        raise NotServable(f"{spell.classifier_from_token} applies to {spell.task} seq_classify; this build is {task.value}")
