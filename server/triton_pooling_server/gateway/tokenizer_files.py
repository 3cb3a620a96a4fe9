"""The served models' own tokenizers, for the tokenization routes: `<--model-repository>/<model>/<version>/
tokenizer.json`, the file the model's stub tokenizes with (`triton-pooling build` writes it there), loaded
lazily per model with the `tokenizers` package as the stub loads it (padding and truncation off), and
re-read when the file changes (a new build). Without --model-repository the routes answer 501."""

from __future__ import annotations

import threading
from pathlib import Path

from .errors import ErrorKind, GatewayError

TOKENIZER_FILE = "tokenizer.json"


class TokenizerFiles:
    def __init__(self, repository: str | None):
        self.repository = None if repository is None else Path(repository)
        self._loaded: dict[Path, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def path(self, model: str, version: str = "1") -> Path:
        if self.repository is None:
            raise GatewayError(ErrorKind.NOT_IMPLEMENTED, "tokenization needs the model repository: start the gateway "
                               "with --model-repository DIR (the repository Triton serves; `triton-pooling serve` "
                               "passes its own), so it reads each model's own tokenizer.json")
        folder = self.repository / model
        candidates = [folder / version / TOKENIZER_FILE]
        candidates += sorted(folder.glob(f"*/{TOKENIZER_FILE}"), key=lambda p: _version_key(p.parent.name),
                             reverse=True)
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise GatewayError(ErrorKind.NOT_IMPLEMENTED, f"model {model!r} has no {TOKENIZER_FILE} under "
                           f"{folder} (looked in version {version!r} and every version folder): this model's "
                           "tokenizer is not a file the gateway can read (an ensemble, or a model built elsewhere)",
                           "model")

    def get(self, model: str, version: str = "1"):
        """The model's tokenizers.Tokenizer (no padding, no truncation: exactly what its stub encodes)."""
        path = self.path(model, version)
        mtime = path.stat().st_mtime
        with self._lock:
            cached = self._loaded.get(path)
            if cached is not None and cached[0] == mtime:
                return cached[1]
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as e:  # noqa: BLE001  (a corrupt file: say which)
            raise GatewayError(ErrorKind.INTERNAL, f"cannot read {path}: {e}") from e
        tokenizer.no_padding()
        tokenizer.no_truncation()
        with self._lock:
            self._loaded[path] = (mtime, tokenizer)
        return tokenizer


def _version_key(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (-1, name)
