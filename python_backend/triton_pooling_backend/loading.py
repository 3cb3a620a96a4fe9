"""Load what one model instance serves with: the checkpoint's refusals first (JSON only), then either the
built artifact in the version folder (lean runtimes: numpy + tokenizers + ONNX Runtime or OpenVINO, nothing
else is imported) or the Hugging Face checkpoint itself (`runtime: torch`)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from triton_pooling_contract import rules
from triton_pooling_contract.late_interaction import LateInteraction
from triton_pooling_contract.parameters import LEAN_RUNTIMES, DefinitionError, Device, InstanceKind, Runtime
from triton_pooling_contract.serving import HEAD_FILE
from triton_pooling_contract.serving import DESCRIPTION_FILE, DescriptionError, ServingDescription, TOKENIZER_FILE

from .checkpoint import check_servable
from .encoders import Encoder, open_lean_encoder
from .errors import ModelConfigError, allowed
from .model_facts import ModelFacts, check_returned_ids, graph_output_for
from .pooler import load_head
from triton_pooling_contract.definition import ModelDefinition, checkpoint_dir
from .tokenization import TextTokenizer, load_tokenizer, register_prefix_tokens

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Instance:
    """Where Triton runs this instance (the Python backend's initialize args)."""

    version_dir: Path
    kind: InstanceKind = InstanceKind.CPU  # model_instance_kind
    device_id: int = 0  # model_instance_device_id: the GPU of a KIND_GPU instance

    @classmethod
    def from_args(cls, args: dict) -> "Instance":
        version_dir = Path(args["model_repository"]) / str(args.get("model_version", 1))
        return cls(version_dir, InstanceKind.parse(args.get("model_instance_kind") or "CPU"),
                   int(args.get("model_instance_device_id") or 0))

    @property
    def gpu_placement(self) -> str | None:
        """Where a model meant for GPUs runs (for messages); None on the CPU."""
        return f"this instance is on GPU {self.device_id}" if self.kind is InstanceKind.GPU else None


@dataclasses.dataclass
class LoadedModel:
    facts: ModelFacts
    tokenizer: TextTokenizer
    encoder: Encoder
    late_interaction: LateInteraction | None = None  # a ColBERT folder's per-role shaping (late_interaction.py)


def load_model(definition: ModelDefinition, instance: Instance) -> LoadedModel:
    info, pooling = check_servable(definition)
    description = _description(instance.version_dir)
    runtime = definition.runtime or (Runtime(description.runtime) if description else None)
    try:
        if runtime is not None:
            rules.check_head_runtime(info, runtime, rules.PARAMETERS)
    except rules.NotServable as e:
        raise ModelConfigError(str(e)) from None
    if runtime is None:
        raise ModelConfigError(
            f"{instance.version_dir} holds no built model ({DESCRIPTION_FILE}) and config.pbtxt names no 'runtime': "
            f"build it with `triton-pooling build {definition.checkpoint_path} --repository ...` (or "
            f"`python -m triton_pooling_server.builder.artifact {instance.version_dir.parent}`), or set runtime 'torch'"
        )
    if runtime is Runtime.TORCH:
        loaded = _load_torch(definition, instance, pooling, info)
    else:
        loaded = _load_lean(definition, instance, runtime, description, pooling, info)
    loaded.late_interaction = info.late_interaction
    return loaded


def _load_lean(definition: ModelDefinition, instance: Instance, runtime: Runtime,
               description: ServingDescription | None, pooling, info) -> LoadedModel:
    where = instance.version_dir
    if description is None:
        raise ModelConfigError(f"parameter 'runtime' is {runtime.value!r}, but {where} holds no built model "
                               f"({DESCRIPTION_FILE}): run `triton-pooling build` for this model")
    placement = instance.gpu_placement or ("parameter 'device' is cuda" if definition.device is Device.CUDA else None)
    try:
        rules.check_runtime(runtime, definition.dtype, placement, rules.PARAMETERS)
    except rules.NotServable as e:
        raise ModelConfigError(str(e)) from None
    mismatches = [f"{name} {built!r} (config says {wanted!r})" for name, built, wanted in (
        ("task", description.task, definition.task.value),
        ("pooling", description.pooling, pooling.value),
        ("runtime", description.runtime, runtime.value),
        ("checkpoint", description.checkpoint, definition.checkpoint),
    ) if built != wanted and not (name == "checkpoint" and _same_checkpoint(built, definition, where.parent))]
    if mismatches or description.graph_output is not graph_output_for(definition.task, pooling):
        raise ModelConfigError(f"the built model in {where} was made for {', '.join(mismatches) or 'another graph'}: "
                               "rebuild it with `triton-pooling build` after changing config.pbtxt")
    if runtime not in LEAN_RUNTIMES or description.graph is None:
        raise ModelConfigError(f"runtime {runtime.value!r} needs a built graph; allowed: {allowed(r.value for r in LEAN_RUNTIMES)}")
    facts = ModelFacts.from_description(description, definition, load_head(where / HEAD_FILE, description.head))
    try:  # an artifact built before the positions' offset was known says too many
        rules.check_max_tokens(facts.max_tokens, f"the token limit of the built model in {where}", info)
    except rules.NotServable as e:
        raise ModelConfigError(f"{e}; rebuild it with `triton-pooling build`") from None
    check_returned_ids(definition, facts.num_labels)
    try:
        encoder = open_lean_encoder(runtime, where / description.graph, facts.graph_inputs, facts.graph_output,
                                    definition.threads)
    except ValueError as e:  # a runtime this host cannot run as asked (e.g. bf16 without bf16 instructions)
        raise ModelConfigError(str(e)) from None
    tokenizer = TextTokenizer(load_tokenizer(where / TOKENIZER_FILE), facts.with_token_types)
    log.info("runtime %s serves %s (built graph within %.1e of transformers)", runtime.value, definition.checkpoint_path,
             description.parity_max_abs or 0.0)
    return LoadedModel(facts, tokenizer, encoder)


def _load_torch(definition: ModelDefinition, instance: Instance, pooling, info) -> LoadedModel:
    import torch
    import transformers

    from .encoders.torch_encoder import TorchEncoder, accepts_token_type_ids, load_hf_model
    from .model_facts import facts_from_hf

    torch.set_num_threads(definition.threads)  # as set, else the CPUs split among the model's instances
    device = _torch_device(definition, instance, torch)
    output = graph_output_for(definition.task, pooling)
    model = load_hf_model(definition.checkpoint_path, definition.task, output, definition.dtype, definition.trust_remote_code,
                          definition.allow_unsafe_weights, device, token_head=definition.token_head,
                          splade=info.splade)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(definition.checkpoint_path),
                                                              trust_remote_code=definition.trust_remote_code)
    with_types = accepts_token_type_ids(model)
    facts = facts_from_hf(definition, info, pooling, model.config, hf_tokenizer, with_types)
    rust = hf_tokenizer.backend_tokenizer
    rust.no_padding()
    rust.no_truncation()
    if info.late_interaction is not None:
        register_prefix_tokens(rust, info.late_interaction.prefixes)
    return LoadedModel(facts, TextTokenizer(rust, with_types), TorchEncoder(model, definition.task, output, device))


def _torch_device(definition: ModelDefinition, instance: Instance, torch) -> str:
    """KIND_GPU instances run on their own GPU (model_instance_device_id); KIND_CPU ones on the CPU unless the
    config asks for cuda."""
    on_gpu = instance.kind is InstanceKind.GPU
    wants_gpu = on_gpu or definition.device is Device.CUDA
    if definition.device is Device.CPU and on_gpu:
        raise ModelConfigError("parameter 'device' is 'cpu', but this is a KIND_GPU instance: use KIND_CPU")
    if not wants_gpu:
        return "cpu"
    if not torch.cuda.is_available():
        raise ModelConfigError(f"this instance is meant for a GPU ({'KIND_GPU' if on_gpu else 'device cuda'}), "
                               "but torch sees no CUDA device")
    return f"cuda:{instance.device_id if on_gpu else 0}"


def _same_checkpoint(built: str, definition: ModelDefinition, model_dir: Path) -> bool:
    """The checkpoint the artifact was built from (as its config named it) is the one the config names now."""
    try:
        return checkpoint_dir(built, model_dir) == definition.checkpoint_path
    except DefinitionError:
        return False


def _description(version_dir: Path) -> ServingDescription | None:
    if not (version_dir / DESCRIPTION_FILE).is_file():
        return None
    try:
        return ServingDescription.read(version_dir)
    except DescriptionError as e:
        raise ModelConfigError(str(e)) from None
