"""The expensive steps, done once per artifact: load the checkpoint with transformers, export its graph with
torch's dynamo exporter, optionally quantize it, and save the fast tokenizer with padding and truncation off.

Why dynamo: the TorchScript tracer bakes the example's padding into BERT's attention-mask code and gave wrong
outputs (max-abs 1.8) on batches padded differently; the dynamo graph stays within ~1e-6 (DESIGN.md facts)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from triton_pooling_contract.parameters import Runtime
from triton_pooling_contract.serving import GRAPH_FILE, TOKENIZER_FILE, GraphOutput
from triton_pooling_contract.tasks import PoolingTask

from triton_pooling_backend.encoders.torch_encoder import accepts_token_type_ids, forward, load_hf_model
from triton_pooling_backend.errors import ModelConfigError
from triton_pooling_backend.model_facts import ModelFacts, facts_from_hf
from triton_pooling_backend.tokenization import EncodedText, TextTokenizer, register_prefix_tokens
from triton_pooling_backend.request_parsing import TextInput
from .parity import parity_batches
from .request import ArtifactError, ArtifactRequest

# Texts the saved tokenizer must split exactly as transformers does (pairs and left truncation too).
TOKENIZER_PROBES = ("Hello world.", "A longer sentence, with punctuation; numbers 12345 and UPPER case.",
                    "Ünïcödé — dashes, tabs\tand  double  spaces", "Step 1: 2 + 2 = 4. <extra_0> Step 2 <extra_0>")


class Loaded:
    """The checkpoint as transformers sees it, loaded once per build."""

    def __init__(self, request: ArtifactRequest):
        import transformers

        transformers.utils.logging.disable_progress_bar()

        s = request.definition
        self.request = request
        try:
            self.model = load_hf_model(s.checkpoint_path, s.task, request.graph_output, s.dtype, s.trust_remote_code,
                                       s.allow_unsafe_weights, token_head=s.token_head,
                                       splade=request.checkpoint_info.splade)
            self.hf_tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(s.checkpoint_path), trust_remote_code=s.trust_remote_code)
        except ModelConfigError as e:
            raise ArtifactError(f"checkpoint {s.checkpoint_path}: {e}") from None
        except Exception as e:
            raise ArtifactError(f"transformers cannot load {s.checkpoint_path} for {s.task.value}: "
                                f"{type(e).__name__}: {_short(e)}") from e
        self.hf_tokenizer.truncation_side = "left"
        self.with_token_types = accepts_token_type_ids(self.model)
        from triton_pooling_backend.checkpoint import read_checkpoint_info

        self.facts: ModelFacts = facts_from_hf(s, read_checkpoint_info(s.checkpoint_path), request.pooling,
                                               self.model.config, self.hf_tokenizer, self.with_token_types)

    def reference(self, feed: dict):
        """The torch outputs (numpy float32) for a feed of numpy arrays."""
        import torch

        tensors = {k: torch.from_numpy(v) for k, v in feed.items()}
        with torch.inference_mode():
            out = forward(self.model, self.request.definition.task, self.request.graph_output, tensors["input_ids"],
                          tensors["attention_mask"], tensors.get("token_type_ids"))
        return out.float().numpy()


def graph_module(model, task: PoolingTask, output: GraphOutput, with_token_types: bool):
    """The Hugging Face model as the graph computes it, with explicit named arguments (the exporter needs them,
    not **kwargs)."""
    import torch

    class Graph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            return forward(self.model, task, output, input_ids, attention_mask,
                           token_type_ids if with_token_types else None)

    return Graph().eval()


def export_program(module, example: dict, names: tuple[str, ...], output_name: str, path: Path) -> None:
    """torch's dynamo exporter with dynamic batch and sequence axes (the TorchScript tracer baked one padding in)."""
    import torch

    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on axis names and pytree specs
        program = torch.onnx.export(
            module, tuple(torch.as_tensor(example[n]) for n in names), dynamo=True, input_names=list(names),
            output_names=[output_name], dynamic_shapes={n: {0: batch, 1: seq} for n in names}, verbose=False,
        )
    program.save(str(path))


def export_graph(loaded: Loaded, folder: Path) -> None:
    """Write GRAPH_FILE (and any external-data files beside it) into `folder`."""
    request, facts = loaded.request, loaded.facts
    example = parity_batches(facts.vocab_size, facts.pad_token_id, facts.max_tokens, facts.with_token_types)[0]
    module = graph_module(loaded.model, request.definition.task, request.graph_output, facts.with_token_types)
    try:
        export_program(module, example, facts.graph_inputs, request.graph_output.value, folder / GRAPH_FILE)
    except Exception as e:
        raise ArtifactError(f"ONNX export (torch dynamo exporter) of {request.definition.checkpoint_path} for "
                            f"{request.definition.task.value} ({request.graph_output.value}) failed: "
                            f"{type(e).__name__}: {_short(e)}; serve it with --runtime torch") from e
    if request.runtime is Runtime.ONNX_INT8:
        quantize_int8(folder / GRAPH_FILE)


def quantize_int8(graph: Path) -> None:
    """Dynamic int8 in place: the weight MatMuls get per-channel int8 weights (VNNI kernels), activations are
    quantized per call; attention's activation x activation products stay fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights_graph = onnx.load(str(graph), load_external_data=False).graph
    weights = {i.name for i in weights_graph.initializer}
    activation_products = [n.name for n in weights_graph.node if n.op_type == "MatMul" and n.input[1] not in weights]
    tmp = graph.with_name(f"int8-{os.getpid()}.onnx")
    quantize_dynamic(graph, tmp, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"],
                     nodes_to_exclude=activation_products)
    os.replace(tmp, graph)


def save_tokenizer(loaded: Loaded, folder: Path) -> None:
    """The fast tokenizer transformers uses, padding and truncation off, checked to split probes identically."""
    from tokenizers import Tokenizer

    backend = getattr(loaded.hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ArtifactError(f"the tokenizer of {loaded.request.definition.checkpoint_path} ({type(loaded.hf_tokenizer).__name__}) "
                            "has no fast (Rust) version to serve without transformers; serve it with --runtime torch")
    rust = Tokenizer.from_str(backend.to_str())
    rust.no_padding()
    rust.no_truncation()
    late = loaded.request.checkpoint_info.late_interaction
    if late is not None:  # a PyLate folder's markers, as MultiVectorEncoder loads them
        register_prefix_tokens(rust, late.prefixes)
    rust.save(str(folder / TOKENIZER_FILE))
    _check_tokenizer(loaded, TextTokenizer(rust, loaded.with_token_types))


def _check_tokenizer(loaded: Loaded, ours: TextTokenizer) -> None:
    hf = loaded.hf_tokenizer
    cases = [(TextInput(text=t), hf(t)) for t in TOKENIZER_PROBES]
    cases.append((TextInput(text=TOKENIZER_PROBES[0], text_pair=TOKENIZER_PROBES[1]),
                  hf(TOKENIZER_PROBES[0], TOKENIZER_PROBES[1])))
    cases.append((TextInput(text=TOKENIZER_PROBES[1], truncate=6), hf(TOKENIZER_PROBES[1], truncation=True, max_length=6)))
    for item, expected in cases:
        got: EncodedText = ours.encode([item])[0]
        if got.input_ids != list(expected["input_ids"]):
            raise ArtifactError(f"the fast tokenizer of {loaded.request.definition.checkpoint_path} splits {item.text!r} into "
                                f"{got.input_ids}, transformers into {list(expected['input_ids'])}; serve it with "
                                "--runtime torch")


def _short(error: Exception, limit: int = 600) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit] + " ..."
