"""One artifact, start to end: load with transformers, export, save the tokenizer, check parity with the
runtime that will serve it, write serving.json last."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from triton_pooling_contract.parameters import LOSSY_RUNTIMES, Runtime
from triton_pooling_contract.serving import GRAPH_FILE, ServingDescription

from triton_pooling_backend.encoders import open_lean_encoder
from .export import Loaded, export_graph, save_tokenizer
from .parity import LOSSY_SANITY_TOLERANCE, PARITY_TOLERANCE, parity_batches, parity_error
from .request import ArtifactError, ArtifactRequest
from .weights_layout import externalize_weights


def build_graph(folder: Path, request: ArtifactRequest, key: str, log=print) -> ServingDescription:
    """Export and check the graph into `folder`; returns its facts (the checkpoint's own token limit)."""
    s = request.definition
    if request.runtime is Runtime.OPENVINO_BF16:  # refuse before the export, not after it
        import openvino as ov

        from triton_pooling_backend.encoders.openvino_encoder import check_bf16

        try:
            check_bf16(ov.Core())
        except ValueError as e:
            raise ArtifactError(str(e)) from None
    started = time.monotonic()
    loaded = Loaded(dataclasses.replace(request, definition=dataclasses.replace(s, max_tokens=None)))
    facts = loaded.facts
    export_graph(loaded, folder)
    externalize_weights(folder / GRAPH_FILE)  # instances of the model then map one shared copy of the weights
    save_tokenizer(loaded, folder)
    try:
        encoder = open_lean_encoder(request.runtime, folder / GRAPH_FILE, facts.graph_inputs, facts.graph_output, 1)
        batches = parity_batches(facts.vocab_size, facts.pad_token_id, facts.max_tokens, facts.with_token_types)
        error = parity_error(loaded.reference, encoder, batches)
    except Exception as e:
        raise ArtifactError(f"runtime {request.runtime.value!r} cannot run the exported graph of {s.checkpoint_path}: "
                            f"{type(e).__name__}: {' '.join(str(e).split())[:600]}; serve it with --runtime torch") from e
    tolerance = LOSSY_SANITY_TOLERANCE if request.runtime in LOSSY_RUNTIMES else PARITY_TOLERANCE
    if not error <= tolerance:
        raise ArtifactError(f"the exported graph of {s.checkpoint_path} under runtime {request.runtime.value!r} differs from "
                            f"transformers by {error:.2e} (relative max-abs > {tolerance:.0e}) on mixed-length "
                            "batches; serve it with --runtime torch")
    description = ServingDescription(
        key=key, task=s.task.value, pooling=request.pooling.value, runtime=request.runtime.value, graph=GRAPH_FILE,
        graph_inputs=facts.graph_inputs, graph_output=facts.graph_output, activation=facts.activation.value,
        hidden_size=facts.hidden_size, num_labels=facts.num_labels, vocab_size=facts.vocab_size,
        max_tokens=facts.max_tokens, pad_token_id=facts.pad_token_id, parity_max_abs=error,
        checkpoint=request.definition.checkpoint, versions=request.versions(),
    )
    log(f"  built {request.graph_output.value} graph for {request.runtime.value} in {time.monotonic() - started:.0f} s; "
        f"within {error:.1e} of transformers on mixed-length batches")
    return description
