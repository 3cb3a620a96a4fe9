"""Build time: a sentence-transformers pipeline's modules after pooling (Dense, LayerNorm) as numpy arrays for the
lean stub (HEAD_FILE + the steps serving.json lists), and the served model checked against
`SentenceTransformer(folder).encode` itself — the whole pipeline, not the bare transformer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from triton_pooling_contract.serving import HEAD_FILE
from triton_pooling_contract.st_pipeline import activation_name

from .request import ArtifactError, ArtifactRequest, pipeline_of

# Texts of mixed lengths for the check (the exported graph must not bake in one padding).
PARITY_TEXTS = ("hi", "a considerably longer sentence with many more words than the other texts have in it",
                "mid length text", "word " * 40)
PIPELINE_TOLERANCE = 1e-5


def write_head(request: ArtifactRequest, folder: Path) -> tuple[dict, ...]:
    """HEAD_FILE in `folder` with the head modules' weights; returns the steps serving.json lists."""
    pipeline = pipeline_of(request)
    if pipeline is None or not pipeline.head:
        return ()
    steps, arrays = [], {}
    for i, module in enumerate(pipeline.head):
        weights = _module_weights(request, module.path)
        prefix = "linear" if module.kind == "Dense" else "norm"
        arrays[f"{i}.weight"] = weights[f"{prefix}.weight"]
        if f"{prefix}.bias" in weights:
            arrays[f"{i}.bias"] = weights[f"{prefix}.bias"]
        if module.kind == "Dense":
            steps.append({"kind": "Dense", "activation": activation_name(module), "bias": f"{prefix}.bias" in weights})
        else:
            steps.append({"kind": "LayerNorm", "eps": 1e-5})  # sentence-transformers' LayerNorm: torch's default eps
    np.savez(folder / HEAD_FILE, **arrays)
    return tuple(steps)


def _module_weights(request: ArtifactRequest, relative: str) -> dict[str, np.ndarray]:
    folder = request.definition.checkpoint_path / relative
    if (folder / "model.safetensors").is_file():
        from safetensors.numpy import load_file

        return {k: v.astype(np.float32) for k, v in load_file(str(folder / "model.safetensors")).items()}
    if (folder / "pytorch_model.bin").is_file():
        if not request.definition.allow_unsafe_weights:
            raise ArtifactError(f"{folder} has pickled weights (pytorch_model.bin) only; they load only with "
                                "--allow-unsafe-weights")
        import torch

        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        return {k: v.float().numpy() for k, v in state.items()}
    raise ArtifactError(f"{folder} holds no weights (model.safetensors or pytorch_model.bin)")


def check_pipeline_parity(request: ArtifactRequest, entry: Path) -> float | None:
    """The served embeddings of a sentence-transformers folder against SentenceTransformer.encode (max-abs);
    None where there is no pipeline to compare (not an embed model of such a folder)."""
    from triton_pooling_contract.tasks import PoolingTask, PoolingType

    sparse = request.pooling is PoolingType.SPLADE
    if request.checkpoint_info.late_interaction is not None:
        return _late_interaction_parity(request, entry)
    if (pipeline_of(request) is None and not sparse) or request.definition.task is not PoolingTask.EMBED:
        return None
    from triton_pooling_backend.loading import Instance
    from triton_pooling_backend.service import PoolingService

    service = PoolingService.load(request.definition, Instance(entry))
    # One request per text; compared: the texts the model takes whole in one window (sentence-transformers
    # truncates longer ones where this model refuses or chunks them)
    answers = service.handle([{"TEXT": np.array([[t.encode()]], dtype=object)} for t in PARITY_TEXTS])
    whole = [(t, a) for t, a in zip(PARITY_TEXTS, answers)
             if not isinstance(a, Exception) and a["NUM_TOKENS"][0, 0] <= service.facts.max_tokens]
    if not whole:
        return None
    if sparse:
        return _sparse_parity(request, whole, service.facts.vocab_size)
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(request.definition.checkpoint_path), device="cpu",
                                    trust_remote_code=request.definition.trust_remote_code)
    expected = reference.encode([t for t, _ in whole], convert_to_numpy=True, normalize_embeddings=False)
    served = np.concatenate([a["EMBEDDING"] for _, a in whole])
    if served.shape != expected.shape:
        raise ArtifactError(f"the built model of {request.definition.checkpoint_path} gives vectors of shape "
                            f"{served.shape[1:]}, sentence-transformers {expected.shape[1:]}: not served")
    return float(np.abs(served - expected).max())


def _sparse_parity(request: ArtifactRequest, whole: list, vocab_size: int) -> float:
    """A SPLADE model's served weights (every nonzero) against SparseEncoder.encode: the folder's own pipeline, or
    for a plain *ForMaskedLM checkpoint MLMTransformer + SpladePooling with SPLADE's defaults."""
    from sentence_transformers import SparseEncoder

    path, splade = request.definition.checkpoint_path, request.checkpoint_info.splade
    if request.checkpoint_info.sentence_transformers is not None:
        reference = SparseEncoder(str(path), device="cpu", trust_remote_code=request.definition.trust_remote_code)
    else:
        from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling

        reference = SparseEncoder(modules=[MLMTransformer(str(path)), SpladePooling(splade.strategy, splade.activation)],
                                  device="cpu")
    expected = reference.encode([t for t, _ in whole], convert_to_tensor=True).to_dense().numpy()
    served = np.zeros((len(whole), vocab_size), dtype=np.float32)
    for row, (_, answer) in enumerate(whole):
        ids, weights = answer["SPARSE_INDICES"][0], answer["SPARSE_VALUES"][0]
        served[row, ids[ids >= 0]] = weights[ids >= 0]
    if served.shape != expected.shape:
        raise ArtifactError(f"the built model of {path} gives {served.shape[1]} weights per text, sentence-transformers' "
                            f"SparseEncoder {expected.shape[1]}: not served")
    return float(np.abs(served - expected).max())


def _late_interaction_parity(request: ArtifactRequest, entry: Path) -> float:
    """A ColBERT model's served token vectors, as queries and as documents, against MultiVectorEncoder's
    encode_query / encode_document (max-abs over every row; the rows kept must be the same)."""
    from sentence_transformers import MultiVectorEncoder

    from triton_pooling_backend.loading import Instance
    from triton_pooling_backend.service import PoolingService

    service = PoolingService.load(request.definition, Instance(entry))
    reference = MultiVectorEncoder(str(request.definition.checkpoint_path), device="cpu",
                                   trust_remote_code=request.definition.trust_remote_code)
    worst = 0.0
    for role, encode in (("query", reference.encode_query), ("document", reference.encode_document)):
        expected = encode(list(PARITY_TEXTS), convert_to_numpy=True)
        answers = service.handle([{"TEXT": np.array([[t.encode()]], dtype=object),
                                   "PROMPT_NAME": np.array([[role.encode()]], dtype=object)} for t in PARITY_TEXTS])
        for text, answer, rows in zip(PARITY_TEXTS, answers, expected):
            if isinstance(answer, Exception):
                raise ArtifactError(f"the built ColBERT model of {request.definition.checkpoint_path} refused the "
                                    f"{role} {text[:40]!r}: {answer}")
            served = answer["TOKEN_EMBEDDINGS"][0, : int(answer["NUM_TOKENS"][0, 0])]
            if served.shape != np.asarray(rows).shape:
                raise ArtifactError(f"the built ColBERT model of {request.definition.checkpoint_path} gives {role} "
                                    f"{text[:40]!r} {served.shape[0]} token vectors of {served.shape[1]}, "
                                    f"MultiVectorEncoder {np.asarray(rows).shape}: not served")
            worst = max(worst, float(np.abs(served - rows).max()))
    return worst
