"""The launcher's own calls to Triton's model-repository API (closed to users: see triton.ADMIN_HEADER)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from .triton import ServerOptions


class RepositoryAPI:
    def __init__(self, options: ServerOptions):
        self.base = f"http://{options.http_url}"
        self.headers = {"Content-Type": "application/json", **options.admin_headers}

    def _post(self, path: str, body: dict, timeout: float):
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), headers=self.headers)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def states(self, timeout: float = 5.0) -> dict[str, str] | None:
        """model → state (READY, LOADING, UNAVAILABLE, ...); None while the server cannot say."""
        try:
            index = self._post("/v2/repository/index", {}, timeout)
        except (OSError, ValueError):
            return None
        return {m["name"]: m.get("state", "") for m in index or []}

    def configured_instances(self, model: str, timeout: float = 5.0) -> int | None:
        """Instances the model's config asks for (KIND_GPU groups: count per listed GPU)."""
        try:
            with urllib.request.urlopen(f"{self.base}/v2/models/{model}/config", timeout=timeout) as response:
                config = json.load(response)
        except (OSError, ValueError):
            return None
        total = 0
        for group in config.get("instance_group") or [{"count": 1}]:
            gpus = group.get("gpus") or []
            total += int(group.get("count", 1)) * (len(gpus) if group.get("kind") == "KIND_GPU" and gpus else 1)
        return total

    def load(self, model: str, timeout: float) -> None:
        """(Re)load a model: Triton starts new instances and swaps them in while the old ones serve."""
        try:
            self._post(f"/v2/repository/models/{model}/load", {}, timeout)
        except urllib.error.HTTPError as e:
            message = e.read().decode(errors="replace")
            raise RuntimeError(f"reloading model {model!r} failed: {e.code} {message}") from e
