"""What `triton-pooling build` leaves in a model's version folder for the serving stub, and how a
`package:<module>` checkpoint is found. Shared by the builder (writes it) and the backend (reads it);
standard library only.

    <model>/1/encoder.onnx     the exported graph (lean runtimes only)
    <model>/1/tokenizer.json   the checkpoint's fast tokenizer, padding and truncation off
    <model>/1/serving.json     ServingDescription: what the graph computes and how to pool and head it
    <model>/1/head.npz         the weights of a sentence-transformers pipeline's Dense / LayerNorm modules (if any)
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
from pathlib import Path
from typing import Any, Mapping

from .parameters import PACKAGE_PREFIX

GRAPH_FILE = "encoder.onnx"
# Graph weights (external data) from which ONNX Runtime maps them shared between instances instead of prepacking a
# private copy per instance: measured on a 1.1 GB graph, 3 instances held 1.34x one instance's PSS unpacked and
# 2.07x prepacked, at -44% speed in 1-row passes and -3% in 16-row ones (docs/performance.md "Memory"). The builder
# plans memory with it, the ONNX Runtime encoder decides with it.
SHARE_WEIGHTS_MIN_BYTES = 512 << 20


def external_data_name(graph_name: str) -> str:
    """The file beside a graph that holds its weights (builder.artifact.weights_layout writes it)."""
    return f"{graph_name}.data"
TOKENIZER_FILE = "tokenizer.json"
DESCRIPTION_FILE = "serving.json"
HEAD_FILE = "head.npz"  # the weights of the sentence-transformers modules after pooling (numpy, no pickle)
ARTIFACT_FILES = (GRAPH_FILE, TOKENIZER_FILE, DESCRIPTION_FILE)
# Bumped whenever the graph's interface or the description's fields change: older artifacts are rebuilt.
FORMAT_VERSION = 4


class GraphOutput(str, enum.Enum):
    """What the encoder returns for ids + mask [B, T]."""

    HIDDEN_STATES = "hidden_states"  # [B, T, H]: embed, token_embed
    TOKEN_LOGITS = "token_logits"  # [B, T, L]: token_classify; seq_classify pooled by us (LAST/CLS/MEAN)
    SEQUENCE_LOGITS = "sequence_logits"  # [B, L]: seq_classify with the checkpoint's own head (NATIVE)
    SPARSE_WEIGHTS = "sparse_weights"  # [B, V]: SPLADE, pooled over the tokens in the graph (never [B, T, V] out)


class DescriptionError(ValueError):
    """A serving.json that cannot be read; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class ServingDescription:
    key: str  # content hash of everything that changes the artifact (checkpoint bytes, options, versions)
    task: str
    pooling: str
    runtime: str  # the runtime the parity check ran on
    graph: str | None  # file name in the version folder; None: no graph (torch runtime)
    graph_inputs: tuple[str, ...]
    graph_output: GraphOutput
    activation: str  # none / sigmoid / softmax (classifiers; vLLM's rule from num_labels + problem_type)
    hidden_size: int  # the encoder's width (what DIMENSIONS may not exceed)
    num_labels: int
    vocab_size: int
    max_tokens: int
    pad_token_id: int
    parity_max_abs: float | None  # measured against transformers at build time (relative to the outputs' scale)
    checkpoint: str
    versions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # sentence-transformers modules after the pooling, in order: {"kind": "Dense", "activation": "Tanh",
    # "bias": true} / {"kind": "LayerNorm", "eps": 1e-05}; their weights are HEAD_FILE's arrays "<i>.weight", "<i>.bias"
    head: tuple[Mapping[str, Any], ...] = ()
    format: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["graph_inputs"] = list(self.graph_inputs)
        data["graph_output"] = self.graph_output.value
        data["versions"] = dict(self.versions)
        data["head"] = [dict(step) for step in self.head]
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = DESCRIPTION_FILE) -> "ServingDescription":
        try:
            data: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError as e:
            raise DescriptionError(f"{source} is not valid JSON: {e}") from None
        if data.get("format") != FORMAT_VERSION:
            raise DescriptionError(f"{source} has format {data.get('format')!r}; this backend reads format "
                                   f"{FORMAT_VERSION}: rebuild the model with `triton-pooling build`")
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(fields - set(data) - {"versions", "format", "head"})
        if missing:
            raise DescriptionError(f"{source} lacks {', '.join(missing)}: rebuild the model with `triton-pooling build`")
        try:
            output = GraphOutput(data["graph_output"])
        except ValueError:
            raise DescriptionError(f"{source}: graph_output is {data['graph_output']!r}; allowed: "
                                   f"{', '.join(g.value for g in GraphOutput)}") from None
        values = {k: data[k] for k in fields if k in data}
        values.update(graph_inputs=tuple(data["graph_inputs"]), graph_output=output,
                      head=tuple(dict(step) for step in data.get("head") or ()))
        return cls(**values)

    @classmethod
    def read(cls, version_dir: Path) -> "ServingDescription":
        return cls.read_file(Path(version_dir) / DESCRIPTION_FILE)

    @classmethod
    def read_file(cls, path: Path) -> "ServingDescription":
        return cls.from_json(Path(path).read_text(encoding="utf-8"), str(path))


class PackageCheckpointError(ValueError):
    pass


def package_checkpoint(value: str) -> Path:
    """The directory of a `package:<module>` checkpoint (an installed package with get_model_path())."""
    module_name = value[len(PACKAGE_PREFIX):]
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise PackageCheckpointError(f"checkpoint {value!r} names package {module_name!r}, which is not installed") from e
    return Path(module.get_model_path())
