"""Class labels of a classifier, from its Triton model config.

The gateway cannot read the checkpoint, so labels come from a config parameter `id2label` holding the
checkpoint's `id2label` as JSON (`{"0": "NEGATIVE", "1": "POSITIVE"}`, or a JSON list); without it
the labels are Hugging Face's defaults, `LABEL_<i>`.
"""

from __future__ import annotations

import json
import logging
from typing import Mapping

from triton_pooling_contract.parameters import ID2LABEL_PARAMETER

log = logging.getLogger(__name__)


def labels_of(config: Mapping) -> tuple[str, ...]:
    """Labels in class-index order; () when the config names none (callers fall back to LABEL_<i>)."""
    params = config.get("parameters") or {}
    raw = params.get(ID2LABEL_PARAMETER)
    if isinstance(raw, Mapping):
        raw = raw.get("string_value")
    if not raw:
        return ()
    try:
        return parse_id2label(str(raw))
    except ValueError as e:
        log.warning("model %r: ignoring parameter %s: %s", config.get("name"), ID2LABEL_PARAMETER, e)
        return ()


def parse_id2label(text: str) -> tuple[str, ...]:
    value = json.loads(text)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object {{\"0\": \"label\", ...}} or a list; got {text[:60]!r}")
    try:
        by_index = {int(k): str(v) for k, v in value.items()}
    except (TypeError, ValueError):
        raise ValueError(f"keys must be class indices; got {sorted(value)[:5]}") from None
    if sorted(by_index) != list(range(len(by_index))):
        raise ValueError(f"keys must be 0..{len(by_index) - 1}; got {sorted(by_index)}")
    return tuple(by_index[i] for i in range(len(by_index)))

