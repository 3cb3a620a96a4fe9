"""What an artifact is built from, and its key: everything that changes the graph or the description."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from importlib import metadata
from pathlib import Path

from triton_pooling_contract import rules
from triton_pooling_contract.checkpoint_info import CheckpointInfo
from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_contract.st_pipeline import Pipeline
from triton_pooling_contract.parameters import LEAN_RUNTIMES, Runtime
from triton_pooling_contract.serving import FORMAT_VERSION, GraphOutput
from triton_pooling_contract.tasks import PoolingType

from triton_pooling_backend.checkpoint import check_servable
from triton_pooling_backend.errors import ModelConfigError
from triton_pooling_backend.model_facts import graph_output_for
from .weights_layout import LAYOUT_VERSION

# Libraries whose versions change the exported graph or what it computes.
EXPORT_LIBRARIES = ("torch", "transformers", "onnxscript", "onnx", "tokenizers")
RUNTIME_LIBRARIES = {Runtime.ONNX: "onnxruntime", Runtime.ONNX_INT8: "onnxruntime", Runtime.OPENVINO: "openvino",
                     Runtime.OPENVINO_BF16: "openvino"}
# Top-level checkpoint files that do not shape the graph or the tokenizer (skipped when hashing).
_NOT_THE_GRAPH = {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "README.md",
                  ".gitattributes"}


class ArtifactError(RuntimeError):
    """The artifact cannot be built; the message names the checkpoint, the step and the cause."""


class CheckpointRefused(ArtifactError):
    """A checkpoint the served model would refuse anyway (task, pooling, pickled weights, remote code)."""


@dataclasses.dataclass(frozen=True)
class ArtifactRequest:
    definition: ModelDefinition  # with checkpoint_path: where the files are on this host
    runtime: Runtime
    pooling: PoolingType
    checkpoint_info: CheckpointInfo = dataclasses.field(compare=False, default=None)

    @classmethod
    def from_definition(cls, definition: ModelDefinition, runtime: Runtime) -> "ArtifactRequest":
        if runtime not in LEAN_RUNTIMES:
            raise ArtifactError(f"runtime {runtime.value!r} serves the checkpoint itself; only "
                                f"{', '.join(r.value for r in LEAN_RUNTIMES)} need a built graph")
        try:
            rules.check_runtime(runtime, definition.dtype, None, rules.FLAGS)
            info, pooling = check_servable(definition)
        except (rules.NotServable, ModelConfigError) as e:
            raise CheckpointRefused(str(e)) from None
        return cls(definition, runtime, pooling, info)

    @property
    def graph_output(self) -> GraphOutput:
        return graph_output_for(self.definition.task, self.pooling)

    def versions(self) -> dict[str, str]:
        names = (*EXPORT_LIBRARIES, RUNTIME_LIBRARIES[self.runtime])
        return {name: _version(name) for name in names}

    @functools.cached_property  # hashes every checkpoint file: once per request
    def graph_key(self) -> str:
        """Hash of what changes the graph and the tokenizer: the checkpoint's files, the graph kind, the runtime
        (its parity check; int8 rewrites the graph) and the libraries' versions."""
        s = self.definition
        digest = hashlib.sha256()
        options = (FORMAT_VERSION, LAYOUT_VERSION, self.graph_output.value, self.auto_class, self.runtime.value, s.trust_remote_code,
                   s.allow_unsafe_weights, sorted(self.versions().items()))
        if s.token_head is not None:  # the label rows folded into the graph
            options += (s.classifier_from_token, s.classifier_method.value)
        if self.graph_output is GraphOutput.SPARSE_WEIGHTS:  # SpladePooling's options are in the graph
            options += (self.checkpoint_info.splade,)
        digest.update(repr(options).encode())
        for path in checkpoint_files(s.checkpoint_path):
            digest.update(str(path.relative_to(s.checkpoint_path)).encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()[:32]

    @functools.cached_property
    def key(self) -> str:
        """The model's key: its graph's, and what the description adds (task, pooling, token limit, the checkpoint
        as the config names it: a model serves only the checkpoint its config names)."""
        s = self.definition
        late_interaction = self.checkpoint_info.late_interaction if self.checkpoint_info else None
        late = late_interaction.prefixes if late_interaction else ()  # registered in the saved tokenizer
        model = (self.graph_key, s.task.value, self.pooling.value, s.max_tokens, s.checkpoint,
                 pipeline_digest(s.checkpoint_path, pipeline_of(self)), late)
        return hashlib.sha256(repr(model).encode()).hexdigest()[:32]

    @property
    def auto_class(self) -> str:
        from triton_pooling_backend.encoders.torch_encoder import auto_class_name

        if self.definition.token_head is not None:
            return "AutoModelForCausalLM"
        return auto_class_name(self.definition.task, self.graph_output)


def checkpoint_files(checkpoint: Path) -> list[Path]:
    """The files that shape the graph and the tokenizer: the checkpoint's top-level files (config, weights,
    tokenizer files), without sentence-transformers' own metadata (pooling, normalization and the token limit are
    decided from it into config.pbtxt and the model key, not into the graph) and documentation."""
    return sorted(p for p in checkpoint.iterdir() if p.is_file() and p.name not in _NOT_THE_GRAPH)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def pipeline_of(request: ArtifactRequest) -> Pipeline | None:
    info = request.checkpoint_info
    return info.sentence_transformers.pipeline if info.sentence_transformers else None


def pipeline_digest(checkpoint: Path, pipeline: Pipeline | None) -> str:
    """Hash of the module folders' files (Dense weights, configs): they shape the served head."""
    digest = hashlib.sha256()
    for module in pipeline.modules if pipeline else ():
        if not module.path:
            continue
        for path in sorted(p for p in (checkpoint / module.path).rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(checkpoint)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:32]
