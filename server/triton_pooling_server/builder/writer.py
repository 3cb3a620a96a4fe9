"""Write a built model into a repository: idempotent, and never silently over another model."""

from __future__ import annotations

import dataclasses
import filecmp
import shutil
from pathlib import Path
from typing import Mapping

from .errors import BuildError
from .config_text import strip_tuning


@dataclasses.dataclass(frozen=True)
class WriteResult:
    folders: tuple[Path, ...]
    status: str  # "created", "unchanged", "retuned" (only its serving tuning changed) or "replaced"


def write_model_folder(repository: Path, files: Mapping[str, str], *, checkpoint_copy: tuple[Path, str] | None = None,
                       force: bool = False, stale: tuple[str, ...] = (), keep: tuple[Path, ...] = ()) -> WriteResult:
    """Write `files` (paths relative to the repository → text). `checkpoint_copy` = (source dir, relative target)
    copies a checkpoint in too. Existing folders holding exactly these files are left alone (`unchanged`);
    folders holding something else are replaced only with `force`. Extra files a later step adds
    (an ONNX file, a TensorRT plan, the built artifact) do not count as a difference, nor does a config that differs
    only in its serving tuning (it is rewritten: `retuned`). `stale` names folders of the same model in another
    layout (an ensemble's steps): present, they are a difference, and `force` removes them. `keep` names paths
    inside the folders that `force` leaves in place (the checkpoint being built from, when it lives there)."""
    repository = Path(repository)
    folders = tuple(sorted({repository / Path(rel).parts[0] for rel in files}))
    leftovers = [repository / name for name in stale if (repository / name).exists()]
    # A folder that holds none of the model's files yet (say, only the checkpoint it is built from) is not a model.
    existing = [f for f in folders if any((repository / rel).exists() for rel in files if rel.startswith(f"{f.name}/"))]
    existing += leftovers
    if existing:
        differences = [f"{f.name} belongs to another layout of this model" for f in leftovers]
        differences += _differences(repository, files, checkpoint_copy)
        if not differences:
            return WriteResult(folders, _write_changed(repository, files))
        if not force:
            raise BuildError(f"{', '.join(str(f) for f in existing)} already holds a different model "
                             f"({'; '.join(differences[:3])}); pass --force to replace it")
        for folder in existing:
            _remove(folder, {Path(k).resolve() for k in keep})  # the artifact goes too; the build puts it back
    for rel, text in files.items():
        target = repository / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    if checkpoint_copy is not None:
        source, rel = checkpoint_copy
        if Path(source).resolve() != (repository / rel).resolve():  # a checkpoint already in place (the defaults') stays
            shutil.copytree(source, repository / rel, ignore=shutil.ignore_patterns(".git", ".cache", "__pycache__"))
    return WriteResult(folders, "replaced" if existing else "created")


def _remove(folder: Path, keep: set[Path]) -> None:
    if not any(k.is_relative_to(folder.resolve()) for k in keep):
        shutil.rmtree(folder)
        return
    for entry in folder.iterdir():
        if entry.resolve() in keep:
            continue
        if any(k.is_relative_to(entry.resolve()) for k in keep):
            _remove(entry, keep)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _write_changed(repository: Path, files: Mapping[str, str]) -> str:
    """Same model: rewrite what differs (only tuning can) and say whether anything did."""
    changed = False
    for rel, text in files.items():
        target = repository / rel
        if target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            changed = True
    return "retuned" if changed else "unchanged"


def _same(rel: str, old: str, new: str) -> bool:
    if rel.endswith("config.pbtxt"):
        return strip_tuning(old) == strip_tuning(new)
    return old == new


def _differences(repository: Path, files: Mapping[str, str], checkpoint_copy) -> list[str]:
    found = []
    for rel, text in files.items():
        target = repository / rel
        if not target.is_file():
            found.append(f"{rel} is missing")
        elif not _same(rel, target.read_text(encoding="utf-8"), text):
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
