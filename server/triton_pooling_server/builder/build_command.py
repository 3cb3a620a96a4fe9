"""`triton-pooling build MODEL_DIR --repository DIR`: a Hugging Face checkpoint → a tuned, lean per-task Triton model.

Decides the task and pooling from the checkpoint's files, the serving tuning from this host (or the flags) with
one core budget for every model of the repository, exports the graph once and checks it against transformers on
mixed-length batches, and writes config.pbtxt, 1/model.py and the built artifact (1/encoder.onnx, tokenizer.json,
serving.json). MODEL_DIR may also be `package:<module>` (an installed package with get_model_path()).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from triton_pooling_contract.definition import DEFAULT_MAX_BATCH_SIZE
from triton_pooling_contract.parameters import LEAN_RUNTIMES, PACKAGE_PREFIX, Runtime
from triton_pooling_contract.serving import PackageCheckpointError, package_checkpoint
from triton_pooling_contract.tasks import TASK_ALIASES, TASK_NAMES, PoolingType

from . import BuildError, BuildRequest, inspect_checkpoint, resolve, write_model_folder
from .layout import model_files, stale_folders
from .resolution import CHECKPOINT_FOLDER, DTYPES, RUNTIMES, ResolvedModel, apply_plan
from .model_size import checkpoint_weight_bytes, graph_bytes
from .retune import retune_others, sharing_models, sharing_needs
from .tuning import Host, ModelNeeds, Profile, TuningFlags, plan_repository

VERSION = "1"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("build", help="turn a Hugging Face checkpoint directory into a per-task Triton model",
                              description=__doc__)
    p.add_argument("model_dir", metavar="MODEL_DIR", help="Hugging Face checkpoint directory, or package:<module>")
    p.add_argument("--repository", type=Path, required=True, help="Triton model repository to write into")
    p.add_argument("--task", choices=TASK_NAMES + tuple(TASK_ALIASES),
                   help="pooling task (default: from the architecture, as vLLM; 'classify' = seq_classify)")
    p.add_argument("--name", help="model name (default: the task name)")
    p.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE)
    p.add_argument("--pooling-type", type=str.upper, choices=[t.value for t in PoolingType],
                   help="override the sentence-transformers / architecture pooling")
    p.add_argument("--use-activation", choices=("true", "false"),
                   help="normalize (embed) / sigmoid-softmax (classify) by default")
    p.add_argument("--max-tokens", type=int, help="token limit (default: the checkpoint's)")
    p.add_argument("--dtype", choices=DTYPES)
    p.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="onnx / openvino: the exported fp32 graph in a lean stub (CPU; default: the measured CPU "
                        "default); onnx_int8 / openvino_bf16: opt-in fast paths with a measured error (bf16 needs a CPU "
                        "with bf16 instructions; docs/performance.md); torch: the checkpoint itself (GPU profiles, other dtypes); tensorrt: an ensemble "
                        "around a TensorRT engine (then run python -m triton_pooling_server.builder.tensorrt)")
    p.add_argument("--step-tag-id", type=int, help="PRM step token id (token_classify with STEP pooling)")
    p.add_argument("--returned-token-ids", type=_int_list, help="STEP pooling: label columns to return, e.g. 1 or 0,1")
    p.add_argument("--copy-checkpoint", action="store_true",
                   help=f"copy the checkpoint into <name>/{CHECKPOINT_FOLDER} (a self-contained repository)")
    p.add_argument("--allow-unsafe-weights", action="store_true", help="serve pickled .bin weights")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="serve a checkpoint that brings its own code (config.json auto_map): it runs at build and load")
    p.add_argument("--enable-chunked-processing", action="store_true",
                   help="embed: encode prompts longer than max_tokens in chunks and average them (vLLM's rule)")
    p.add_argument("--matryoshka-dimensions", metavar="SIZES",
                   help="embed / token_embed: the sizes DIMENSIONS may ask for, e.g. 64,128,256, or 'all' (default: "
                        "what config.json declares; a model declared nowhere refuses DIMENSIONS, as vLLM)")
    p.add_argument("--prompt", action="append", type=_prompt, default=[], metavar="NAME=TEXT",
                   help="embed: a prompt requests may name (PROMPT_NAME), prepended to the text as sentence-transformers "
                        "does; adds to or replaces the checkpoint's config_sentence_transformers.json prompts; repeatable")
    p.add_argument("--default-prompt-name", help="embed: the prompt used when a request names none")
    p.add_argument("--classifier-from-tokens", type=_token_names, metavar="TOKENS",
                   help="seq_classify from a *ForCausalLM (an LLM reranker): the label tokens whose lm_head rows become "
                        "the head, e.g. no,yes ([false, true] for from_2_way_softmax) or Yes (vLLM's classifier_from_token)")
    p.add_argument("--classifier-method", choices=("from_2_way_softmax", "no_post_processing"),
                   help="from_2_way_softmax: score = sigmoid(logit_true - logit_false); no_post_processing: each "
                        "token's logit is a label (vLLM's method)")
    p.add_argument("--score-template", type=Path, metavar="FILE",
                   help="seq_classify: a Jinja template over query, document (and optional instruction) that renders "
                        "each (TEXT, TEXT_PAIR) pair into the one text the model reads (docs/templates/)")
    p.add_argument("--force", action="store_true", help="replace a different model of the same name")
    tuning = p.add_argument_group("serving tuning (default: from this host; docs/performance.md)")
    tuning.add_argument("--profile", choices=[v.value for v in Profile], default="auto",
                        help="cpu or gpu instances (auto: gpu when the host has GPUs)")
    tuning.add_argument("--instances", type=int, help="instances (per GPU with --profile gpu)")
    tuning.add_argument("--threads", type=int, help="intra-op threads per instance")
    tuning.add_argument("--gpus", type=_int_list, help="GPU ids for --profile gpu, e.g. 0,1 (default: the host's)")
    tuning.add_argument("--queue-delay-us", type=int, help="dynamic batcher delay in microseconds")
    tuning.add_argument("--preferred-batch-sizes", type=_int_list, help="dynamic batcher preferred sizes, e.g. 8,16")
    tuning.add_argument("--max-batch-tokens", type=int, help="padded tokens per forward pass (default: 512, 2048 "
                                                             "for runtimes that reward wide passes)")
    tuning.add_argument("--cpus", type=int, help="cores to divide among the repository's models (default: this "
                                                 "process's CPUs, within its cgroup quota)")
    tuning.add_argument("--memory-mib", type=int, help="memory the served models may use, in MiB (default: this "
                                                       "process's cgroup limit, else the host's; set it to the serving "
                                                       "container's limit when building elsewhere)")
    p.add_argument("--cache-dir", type=Path, help="artifact cache (default: $TRITON_POOLING_CACHE or "
                                                  "~/.cache/triton-pooling/artifacts)")
    p.set_defaults(run=run)
    return p


def request_from_args(args: argparse.Namespace) -> BuildRequest:
    return BuildRequest(
        checkpoint=Path(args.model_dir), task=args.task, name=args.name, max_batch_size=args.max_batch_size,
        pooling_type=args.pooling_type, max_tokens=args.max_tokens, dtype=args.dtype, runtime=args.runtime,
        use_activation=None if args.use_activation is None else args.use_activation == "true",
        step_tag_id=args.step_tag_id, returned_token_ids=args.returned_token_ids,
        copy_checkpoint=args.copy_checkpoint, allow_unsafe_weights=args.allow_unsafe_weights,
        trust_remote_code=getattr(args, "trust_remote_code", False),
        matryoshka_dimensions=getattr(args, "matryoshka_dimensions", None),
        prompts=tuple(getattr(args, "prompt", None) or ()), default_prompt_name=getattr(args, "default_prompt_name", None),
        chunked_processing=getattr(args, "enable_chunked_processing", False), tuning=tuning_from_args(args),
        classifier_from_token=tuple(getattr(args, "classifier_from_tokens", None) or ()),
        classifier_method=getattr(args, "classifier_method", None),
        score_template=_template_text(getattr(args, "score_template", None)),
    )


def _template_text(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BuildError(f"--score-template is {str(path)!r}: cannot read it ({type(e).__name__}: {e})") from None


def tuning_from_args(args: argparse.Namespace) -> TuningFlags:
    return TuningFlags(Profile(getattr(args, "profile", "auto") or "auto"), getattr(args, "instances", None),
                       getattr(args, "threads", None), getattr(args, "gpus", None),
                       getattr(args, "queue_delay_us", None), getattr(args, "preferred_batch_sizes", None),
                       getattr(args, "max_batch_tokens", None))


def host_from_args(args: argparse.Namespace) -> Host:
    host = Host.detect()
    cpus = getattr(args, "cpus", None)
    if cpus is not None:
        if cpus < 1:
            raise BuildError(f"--cpus is {cpus}; expected an integer >= 1")
        host = dataclasses.replace(host, cpus=cpus)
    memory = getattr(args, "memory_mib", None)
    if memory is not None:
        if memory < 1:
            raise BuildError(f"--memory-mib is {memory}; expected an integer >= 1")
        host = dataclasses.replace(host, memory_bytes=memory << 20)
    return host


def checkpoint_dir(value: str) -> Path:
    if value.startswith(PACKAGE_PREFIX):
        try:
            return package_checkpoint(value)
        except PackageCheckpointError as e:
            raise BuildError(f"MODEL_DIR: {e}") from None
    return Path(value)


def run(args: argparse.Namespace) -> int:
    try:
        return build(args)
    except (BuildError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def plan(args: argparse.Namespace, host: Host | None = None,
         others: dict[str, TuningFlags] | None = None) -> tuple[ResolvedModel, dict, object]:
    """What the build will write, decided without writing anything: the model with its serving plan, the plans of
    the repository's other models (`others`: those already in the repository), and the checkpoint's info."""
    request = dataclasses.replace(request_from_args(args), checkpoint=checkpoint_dir(str(args.model_dir)))
    info = inspect_checkpoint(request.checkpoint)
    model = _with_checkpoint_ref(resolve(request, info), str(args.model_dir), args.repository)
    name = model.spec.name
    others = sharing_models(args.repository, exclude=name) if others is None else others
    needs = {**sharing_needs(args.repository, exclude=name), name: _needs(request, info.path, args.repository, name)}
    plans = plan_repository(host or host_from_args(args), {**others, name: request.tuning}, needs)
    return apply_plan(model, plans[name], request.tuning), plans, info


def _needs(request: BuildRequest, checkpoint: Path, repository: Path, name: str) -> ModelNeeds:
    """The runtime asked for and the weights' size: a graph already built there, else the checkpoint's."""
    runtime = Runtime(request.runtime) if request.runtime in {r.value for r in LEAN_RUNTIMES} else None
    return ModelNeeds(runtime, graph_bytes(Path(repository) / name / VERSION) or checkpoint_weight_bytes(checkpoint))


def build(args: argparse.Namespace, log=print, host: Host | None = None) -> int:
    model, plans, info = plan(args, host)
    name = model.spec.name
    artifact = _artifact_request(model) if model.runtime in LEAN_RUNTIMES else None
    if artifact is not None:  # built (or found) before anything is written: a failed export leaves no folder
        _cached_artifact(artifact, args.cache_dir, log)
    copy = (info.path, f"{name}/{CHECKPOINT_FOLDER}") if args.copy_checkpoint else None
    files = model_files(model)
    result = write_model_folder(args.repository, files, checkpoint_copy=copy, force=args.force,
                                stale=stale_folders(model, files), keep=(info.path,))
    for line in model.decisions:
        log(f"  {line}")
    if artifact is not None:
        from .artifact import ensure_artifact

        description, status = ensure_artifact(Path(args.repository) / name / VERSION, artifact, args.cache_dir, log)
        log(f"  artifact {status}: {description.graph_output.value} graph for {description.runtime}, within "
            f"{description.parity_max_abs:.1e} of transformers")
    for line in retune_others(args.repository, plans, exclude=name):
        log(f"  {line}")
    log(f"{result.status}: model {name!r} ({model.spec.task.value}, runtime {model.runtime.value}) in "
        f"{', '.join(str(f) for f in result.folders)}")
    if model.runtime is Runtime.TENSORRT:
        log(f"next, on the GPU host: python -m triton_pooling_server.builder.tensorrt {info.path} --repository "
            f"{args.repository} with the same options (exports the ONNX graph, builds the engine)")
    return 0


def _with_checkpoint_ref(model: ResolvedModel, given: str, repository: Path) -> ResolvedModel:
    """The checkpoint as the config should name it: a package stays a package, a checkpoint inside the model's own
    folder is named relative to it (the repository can move), anything else by its absolute path."""
    definition = model.definition
    if definition.checkpoint == CHECKPOINT_FOLDER:
        return model
    if given.startswith(PACKAGE_PREFIX):
        ref = given
    else:
        try:
            ref = str(model.info.path.relative_to((Path(repository) / model.spec.name).resolve()))
        except ValueError:
            return model
    spec = dataclasses.replace(model.spec, definition=dataclasses.replace(definition, checkpoint=ref))
    return dataclasses.replace(model, spec=spec)


def _artifact_request(model: ResolvedModel):
    """What the artifact is built from: the model's definition, with the checkpoint as found on this host."""
    from .artifact import ArtifactError, ArtifactRequest

    try:
        return ArtifactRequest.from_definition(model.definition, model.runtime)
    except ArtifactError as e:
        raise BuildError(str(e)) from None


def _cached_artifact(request, cache_dir, log) -> None:
    from .artifact import ArtifactError, cached_artifact

    try:
        cached_artifact(request, cache_dir, log=log)
    except ArtifactError as e:
        raise BuildError(str(e)) from None


def _prompt(value: str) -> tuple[str, str]:
    name, sep, text = value.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=TEXT, e.g. query='Instruct: ...\\nQuery: '; got {value!r}")
    return name.strip(), text


def _token_names(value: str) -> tuple[str, ...]:
    """Comma-separated label tokens, taken as written (a token may hold spaces, e.g. '▁yes')."""
    tokens = tuple(value.split(","))
    if not value or any(not t for t in tokens):
        raise argparse.ArgumentTypeError(f"expected comma-separated tokens, e.g. no,yes; got {value!r}")
    return tokens


def _int_list(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None
