"""vLLM-like `use_tqdm`: True / False / a tqdm-like class, or None for "only for large jobs"."""

from __future__ import annotations

from typing import Any

# With use_tqdm=None a bar appears from this many prompts on.
AUTO_PROGRESS_MIN_PROMPTS = 1000


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(use_tqdm: Any, total: int, description: str):
    if use_tqdm is None:
        use_tqdm = total >= AUTO_PROGRESS_MIN_PROMPTS
    if use_tqdm is False:
        return _NoBar()
    if callable(use_tqdm) and use_tqdm is not True:
        return use_tqdm(total=total, desc=description, unit="prompt")
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="prompt")
