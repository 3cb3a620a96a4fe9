"""Read back what a model folder's config.pbtxt says, in the JSON shape the Python backend receives: enough for
building its artifact outside Triton (the `parameters` lines and max_batch_size as `triton-pooling build`
renders them)."""

from __future__ import annotations

import re
from pathlib import Path

_PARAMETER = re.compile(r'parameters\s*\{\s*key:\s*"((?:[^"\\]|\\.)*)"\s*value\s*\{\s*string_value:\s*"((?:[^"\\]|\\.)*)"\s*\}\s*\}')
_MAX_BATCH = re.compile(r"^max_batch_size:\s*(\d+)", re.MULTILINE)


def read_model_config(model_dir: Path) -> dict:
    text = (Path(model_dir) / "config.pbtxt").read_text(encoding="utf-8")
    parameters = {_unescape(k): {"string_value": _unescape(v)} for k, v in _PARAMETER.findall(text)}
    batch = _MAX_BATCH.search(text)
    return {"parameters": parameters, "max_batch_size": int(batch.group(1)) if batch else 0}


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)
