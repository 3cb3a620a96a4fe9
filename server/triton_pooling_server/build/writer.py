"""Write a built model into a repository: idempotent, and never silently over another model."""

from __future__ import annotations

import dataclasses
import filecmp
import shutil
from pathlib import Path
from typing import Mapping

from .errors import BuildError


@dataclasses.dataclass(frozen=True)
class WriteResult:
    folders: tuple[Path, ...]
    status: str  # "created", "unchanged" or "replaced"


def write_model_folder(repository: Path, files: Mapping[str, str], *, checkpoint_copy: tuple[Path, str] | None = None,
                       force: bool = False, stale: tuple[str, ...] = ()) -> WriteResult:
    """Write `files` (paths relative to the repository → text). `checkpoint_copy` = (source dir, relative target)
    copies a checkpoint in too. Existing folders holding exactly these files are left alone (`unchanged`);
    folders holding something else are replaced only with `force`. Extra files a later step adds
    (an ONNX file, a TensorRT plan) do not count as a difference. `stale` names folders of the same model in
    another layout (an ensemble's steps): present, they are a difference, and `force` removes them."""
    repository = Path(repository)
    folders = tuple(sorted({repository / Path(rel).parts[0] for rel in files}))
    leftovers = [repository / name for name in stale if (repository / name).exists()]
    existing = [f for f in folders if f.exists()] + leftovers
    if existing:
        differences = [f"{f.name} belongs to another layout of this model" for f in leftovers]
        differences += _differences(repository, files, checkpoint_copy)
        if not differences:
            return WriteResult(folders, "unchanged")
        if not force:
            raise BuildError(f"{', '.join(str(f) for f in existing)} already holds a different model "
                             f"({'; '.join(differences[:3])}); pass --force to replace it")
        for folder in existing:
            shutil.rmtree(folder)
    for rel, text in files.items():
        target = repository / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    if checkpoint_copy is not None:
        source, rel = checkpoint_copy
        shutil.copytree(source, repository / rel, ignore=shutil.ignore_patterns(".git", ".cache", "__pycache__"))
    return WriteResult(folders, "replaced" if existing else "created")


def _differences(repository: Path, files: Mapping[str, str], checkpoint_copy) -> list[str]:
    found = []
    for rel, text in files.items():
        target = repository / rel
        if not target.is_file():
            found.append(f"{rel} is missing")
        elif target.read_text(encoding="utf-8") != text:
            found.append(f"{rel} differs")
    if checkpoint_copy is not None:
        source, rel = checkpoint_copy
        found.extend(_tree_differences(Path(source), repository / rel, rel))
    return found


def _tree_differences(source: Path, copy: Path, rel: str) -> list[str]:
    if not copy.is_dir():
        return [f"{rel} is missing"]
    comparison = filecmp.dircmp(source, copy, ignore=[".git", ".cache", "__pycache__"])
    changed = comparison.left_only + comparison.right_only
    _, mismatch, errors = filecmp.cmpfiles(source, copy, comparison.common_files, shallow=False)
    changed += mismatch + errors
    found = [f"{rel}/{name} differs from the source checkpoint" for name in sorted(changed)]
    for sub in comparison.common_dirs:
        found.extend(_tree_differences(source / sub, copy / sub, f"{rel}/{sub}"))
    return found
