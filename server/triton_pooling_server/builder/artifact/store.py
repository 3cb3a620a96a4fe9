"""Where artifacts live. Graphs are built once into a shared cache keyed by content (`TRITON_POOLING_CACHE`,
default ~/.cache/triton-pooling/artifacts): `graphs/<graph key>/` holds the exported graph, the tokenizer and the
graph's facts (one MiniLM graph serves embed and token_embed alike); `models/<model key>/` adds one model's
serving.json. A model's version folder gets copies (hard links where possible) and its serving.json records the
model key — so a rebuild with the same checkpoint, options and libraries is a no-op, and anything else is rebuilt."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import shutil
from pathlib import Path

from triton_pooling_contract.parameters import LOSSY_RUNTIMES
from triton_pooling_contract.serving import DESCRIPTION_FILE, DescriptionError, ServingDescription

from .request import ArtifactError, ArtifactRequest
from .parity import LOSSY_SANITY_TOLERANCE
from .st_head import PIPELINE_TOLERANCE, check_pipeline_parity, write_head

CACHE_ENV = "TRITON_POOLING_CACHE"
GRAPH_FACTS = "graph.json"  # a ServingDescription whose task-level fields the model's own replaces


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "triton-pooling" / "artifacts")


def ensure_artifact(version_dir: Path, request: ArtifactRequest, cache_dir: Path | None = None,
                    log=print) -> tuple[ServingDescription, str]:
    """Make `version_dir` hold the artifact of `request`; returns its description and what was done:
    'unchanged' (already there), 'from cache' (copied) or 'built' (exported and checked now)."""
    version_dir = Path(version_dir)
    key = request.key
    current = _read(version_dir)
    if current is not None and current.key == key and _complete(version_dir, current):
        return current, "unchanged"
    entry, status = cached_artifact(request, cache_dir, log)
    version_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (version_dir / DESCRIPTION_FILE).unlink()  # written last: a half-copied folder never looks built
    for source in sorted(entry.iterdir(), key=lambda p: p.name == DESCRIPTION_FILE):
        _place(source, version_dir / source.name)
    return ServingDescription.read(version_dir), status


def cached_artifact(request: ArtifactRequest, cache_dir: Path | None = None, log=print) -> tuple[Path, str]:
    """The cache folder holding this model's artifact (a version folder's contents), built if missing."""
    cache = Path(cache_dir or default_cache_dir())
    key = request.key
    entry = cache / "models" / key
    if _read(entry) is not None:
        return entry, "from cache"
    graph, status = _graph(request, cache, log)
    facts = ServingDescription.read_file(graph / GRAPH_FACTS)
    s = request.definition
    description = dataclasses.replace(facts, key=key, task=s.task.value, pooling=request.pooling.value,
                                      max_tokens=s.max_tokens or facts.max_tokens, checkpoint=request.definition.checkpoint)
    entry.parent.mkdir(parents=True, exist_ok=True)
    with _locked(entry.with_name(f"{key}.lock")):  # processes sharing the cache make an entry once
        if _read(entry) is not None:
            return entry, status
        tmp = _fresh(entry.with_name(f"{key}.tmp-{os.getpid()}"))
        try:
            for source in graph.iterdir():
                if source.name != GRAPH_FACTS:
                    _place(source, tmp / source.name)
            description = dataclasses.replace(description, head=write_head(request, tmp))
            (tmp / DESCRIPTION_FILE).write_text(description.to_json(), encoding="utf-8")
            error = check_pipeline_parity(request, tmp)
            if error is not None:
                tolerance = LOSSY_SANITY_TOLERANCE if request.runtime in LOSSY_RUNTIMES else PIPELINE_TOLERANCE
                if not error <= tolerance:
                    raise ArtifactError(f"the served pipeline of {s.checkpoint_path} under runtime {request.runtime.value!r} "
                                        f"differs from sentence-transformers by {error:.2e} (max-abs > {tolerance:.0e}); "
                                        "not served")
                log(f"  the whole sentence-transformers pipeline within {error:.1e} of its own encode "
                    "(SentenceTransformer, SparseEncoder or MultiVectorEncoder)")
            shutil.rmtree(entry, ignore_errors=True)
            os.rename(tmp, entry)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return entry, status


def _graph(request: ArtifactRequest, cache: Path, log) -> tuple[Path, str]:
    """The graph folder, exported (under a lock: once across processes) if missing."""
    graph_key = request.graph_key
    folder = cache / "graphs" / graph_key
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _locked(folder.parent / f"{graph_key}.lock"):
        if (folder / GRAPH_FACTS).is_file():
            return folder, "from cache"
        tmp = _fresh(folder.with_name(f"{graph_key}.tmp-{os.getpid()}"))
        try:
            from .build import build_graph

            facts = build_graph(tmp, request, graph_key, log)
            (tmp / GRAPH_FACTS).write_text(facts.to_json(), encoding="utf-8")
            shutil.rmtree(folder, ignore_errors=True)
            os.rename(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder, "built"


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _read(folder: Path) -> ServingDescription | None:
    if not (folder / DESCRIPTION_FILE).is_file():
        return None
    try:
        return ServingDescription.read(folder)
    except (DescriptionError, TypeError):
        return None


def _complete(folder: Path, description: ServingDescription) -> bool:
    return description.graph is None or (folder / description.graph).is_file()


def _place(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


@contextlib.contextmanager
def _locked(lock_path: Path):
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


__all__ = ["ArtifactError", "cached_artifact", "default_cache_dir", "ensure_artifact"]
