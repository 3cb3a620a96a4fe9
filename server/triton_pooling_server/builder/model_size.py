"""How many bytes of weights a model's instances hold, for the tuner's memory budget: a built graph's files when there
are any, else the checkpoint's weight files scaled to the float32 the exported graph computes in."""

from __future__ import annotations

import json
from pathlib import Path

from triton_pooling_contract.serving import GRAPH_FILE

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}


def graph_bytes(version_dir: Path) -> int:
    """The built graph and its external data in a model's version folder (0 if none is built)."""
    try:
        return sum(f.stat().st_size for f in Path(version_dir).iterdir() if f.name.startswith(GRAPH_FILE))
    except OSError:
        return 0


def checkpoint_weight_bytes(checkpoint: Path) -> int:
    """The checkpoint's weights as float32 (what the exported graph holds); 0 if none are found."""
    checkpoint = Path(checkpoint)
    try:
        files = [f for f in checkpoint.iterdir() if f.suffix in WEIGHT_SUFFIXES and f.is_file()]
    except OSError:
        return 0
    stored = sum(f.stat().st_size for f in files)
    return stored * 4 // DTYPE_BYTES.get(_dtype(checkpoint), 4)


def _dtype(checkpoint: Path) -> str:
    try:
        config = json.loads((checkpoint / "config.json").read_text())
    except (OSError, ValueError):
        return "float32"
    return str(config.get("torch_dtype") or config.get("dtype") or "float32")
