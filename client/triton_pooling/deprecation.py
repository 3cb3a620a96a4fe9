"""The deprecated `reward` helper's warning, emitted once per process (as vLLM PR #40688)."""

from __future__ import annotations

import threading
import warnings

REWARD_DEPRECATION = (
    "`reward` is deprecated and will be removed in a future release. Please use "
    "`encode(..., task=\"seq_classify\")` for sequence reward models or "
    "`encode(..., task=\"token_classify\")` for token and process reward models instead; "
    "`reward` returns `encode(..., task=\"token_classify\")`."
)

_lock = threading.Lock()
_reward_warned = False


def warn_reward_deprecated(stacklevel: int = 3) -> None:
    global _reward_warned
    with _lock:
        if _reward_warned:
            return
        _reward_warned = True
    warnings.warn(REWARD_DEPRECATION, DeprecationWarning, stacklevel=stacklevel)
