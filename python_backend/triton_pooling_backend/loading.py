"""Load what one model instance serves with: the checkpoint's refusals first (JSON only), then either the
built artifact in the version folder (lean runtimes: numpy + tokenizers + ONNX Runtime or OpenVINO, nothing
else is imported) or the Hugging Face checkpoint itself (`runtime: torch`)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from triton_pooling_contract.parameters import LEAN_RUNTIMES, Device, DType, Runtime
from triton_pooling_contract.serving import DESCRIPTION_FILE, DescriptionError, ServingDescription, TOKENIZER_FILE

from .checkpoint import check_servable
from .encoders import Encoder, open_lean_encoder
from .errors import ModelConfigError, allowed
from .model_facts import ModelFacts, graph_output_for
from .settings import ModelSettings, resolve_checkpoint
from .tokenization import TextTokenizer, load_tokenizer

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Instance:
    """Where Triton runs this instance (the Python backend's initialize args)."""

    version_dir: Path
    kind: str = "CPU"  # CPU or GPU (model_instance_kind)
    device_id: int = 0  # model_instance_device_id: the GPU of a KIND_GPU instance

    @classmethod
    def from_args(cls, args: dict) -> "Instance":
        version_dir = Path(args["model_repository"]) / str(args.get("model_version", 1))
        return cls(version_dir, str(args.get("model_instance_kind") or "CPU").upper(),
                   int(args.get("model_instance_device_id") or 0))


@dataclasses.dataclass
class LoadedModel:
    facts: ModelFacts
    tokenizer: TextTokenizer
    encoder: Encoder


def load_model(settings: ModelSettings, instance: Instance) -> LoadedModel:
    _, pooling = check_servable(settings)
    description = _description(instance.version_dir)
    runtime = settings.runtime or (Runtime(description.runtime) if description else None)
    if runtime is None:
        raise ModelConfigError(
            f"{instance.version_dir} holds no built model ({DESCRIPTION_FILE}) and config.pbtxt names no 'runtime': "
            f"build it with `triton-pooling build {settings.checkpoint} --repository ...` (or "
            f"`python -m triton_pooling_server.builder.artifact {instance.version_dir.parent}`), or set runtime 'torch'"
        )
    if runtime is Runtime.TORCH:
        return _load_torch(settings, instance, pooling)
    return _load_lean(settings, instance, runtime, description, pooling)


def _load_lean(settings: ModelSettings, instance: Instance, runtime: Runtime,
               description: ServingDescription | None, pooling) -> LoadedModel:
    where = instance.version_dir
    if description is None:
        raise ModelConfigError(f"parameter 'runtime' is {runtime.value!r}, but {where} holds no built model "
                               f"({DESCRIPTION_FILE}): run `triton-pooling build` for this model")
    if instance.kind == "GPU" or settings.device is Device.CUDA:
        raise ModelConfigError(f"runtime {runtime.value!r} runs on the CPU, but this instance is on "
                               f"{'GPU ' + str(instance.device_id) if instance.kind == 'GPU' else 'cuda'}: build "
                               "with --profile gpu (runtime torch) or use KIND_CPU instances")
    if settings.dtype is not DType.FLOAT32:
        raise ModelConfigError(f"parameter 'dtype' is {settings.dtype.value!r}; runtime {runtime.value!r} serves "
                               "float32 only: use runtime 'torch' for other dtypes")
    mismatches = [f"{name} {built!r} (config says {wanted!r})" for name, built, wanted in (
        ("task", description.task, settings.task.value),
        ("pooling", description.pooling, pooling.value),
        ("runtime", description.runtime, runtime.value),
        ("checkpoint", description.checkpoint, str(settings.checkpoint)),
    ) if built != wanted and not (name == "checkpoint" and _same_checkpoint(built, settings, where.parent))]
    if mismatches or description.graph_output is not graph_output_for(settings.task, pooling):
        raise ModelConfigError(f"the built model in {where} was made for {', '.join(mismatches) or 'another graph'}: "
                               "rebuild it with `triton-pooling build` after changing config.pbtxt")
    if runtime not in LEAN_RUNTIMES or description.graph is None:
        raise ModelConfigError(f"runtime {runtime.value!r} needs a built graph; allowed: {allowed(r.value for r in LEAN_RUNTIMES)}")
    facts = ModelFacts.from_description(description, settings)
    _check_returned_ids(settings, facts)
    try:
        encoder = open_lean_encoder(runtime, where / description.graph, facts.graph_inputs, facts.graph_output,
                                    settings.threads)
    except ValueError as e:  # a runtime this host cannot run as asked (e.g. bf16 without bf16 instructions)
        raise ModelConfigError(str(e)) from None
    tokenizer = TextTokenizer(load_tokenizer(where / TOKENIZER_FILE), facts.with_token_types)
    log.info("runtime %s serves %s (built graph within %.1e of transformers)", runtime.value, settings.checkpoint,
             description.parity_max_abs or 0.0)
    return LoadedModel(facts, tokenizer, encoder)


def _load_torch(settings: ModelSettings, instance: Instance, pooling) -> LoadedModel:
    import torch
    import transformers

    from .checkpoint import read_checkpoint_info
    from .encoders.torch_encoder import TorchEncoder, accepts_token_type_ids, load_hf_model
    from .model_facts import facts_from_hf

    torch.set_num_threads(settings.threads)  # as set, else the CPUs split among the model's instances
    device = _torch_device(settings, instance, torch)
    output = graph_output_for(settings.task, pooling)
    model = load_hf_model(settings.checkpoint, settings.task, output, settings.dtype, settings.trust_remote_code,
                          settings.allow_unsafe_weights, device)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(settings.checkpoint),
                                                              trust_remote_code=settings.trust_remote_code)
    with_types = accepts_token_type_ids(model)
    facts = facts_from_hf(settings, read_checkpoint_info(settings.checkpoint), pooling, model.config, hf_tokenizer,
                          with_types)
    rust = hf_tokenizer.backend_tokenizer
    rust.no_padding()
    rust.no_truncation()
    return LoadedModel(facts, TextTokenizer(rust, with_types), TorchEncoder(model, settings.task, output, device))


def _torch_device(settings: ModelSettings, instance: Instance, torch) -> str:
    """KIND_GPU instances run on their own GPU (model_instance_device_id); KIND_CPU ones on the CPU unless the
    config asks for cuda."""
    wants_gpu = instance.kind == "GPU" or settings.device is Device.CUDA
    if settings.device is Device.CPU and instance.kind == "GPU":
        raise ModelConfigError("parameter 'device' is 'cpu', but this is a KIND_GPU instance: use KIND_CPU")
    if not wants_gpu:
        return "cpu"
    if not torch.cuda.is_available():
        raise ModelConfigError(f"this instance is meant for a GPU ({'KIND_GPU' if instance.kind == 'GPU' else 'device cuda'}), "
                               "but torch sees no CUDA device")
    return f"cuda:{instance.device_id if instance.kind == 'GPU' else 0}"


def _same_checkpoint(built: str, settings: ModelSettings, model_dir: Path) -> bool:
    """The checkpoint the artifact was built from (as its config named it) is the one the config names now."""
    try:
        return resolve_checkpoint(built, model_dir) == Path(settings.checkpoint)
    except ModelConfigError:
        return False


def _check_returned_ids(settings: ModelSettings, facts: ModelFacts) -> None:
    if settings.returned_token_ids and max(settings.returned_token_ids) >= facts.num_labels:
        raise ModelConfigError(f"parameter 'returned_token_ids' is {list(settings.returned_token_ids)}; "
                               f"this checkpoint has labels 0..{facts.num_labels - 1}")


def _description(version_dir: Path) -> ServingDescription | None:
    if not (version_dir / DESCRIPTION_FILE).is_file():
        return None
    try:
        return ServingDescription.read(version_dir)
    except DescriptionError as e:
        raise ModelConfigError(str(e)) from None
