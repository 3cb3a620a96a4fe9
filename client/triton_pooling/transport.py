"""What differs between tritonclient's HTTP and gRPC clients (sync and aio), in one place.

tritonclient is imported here, lazily, so `import triton_pooling` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import InternalServerError, InvalidRequestError

PROTOCOLS = ("grpc", "http")
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}


def check_protocol(protocol: str) -> str:
    value = str(protocol).lower()
    if value not in PROTOCOLS:
        raise InvalidRequestError(f"protocol must be one of {', '.join(map(repr, PROTOCOLS))}; got {protocol!r}")
    return value


def host_port(url: str) -> str:
    """tritonclient wants 'host:port'; accept 'http://host:port/' too."""
    for scheme in ("http://", "https://", "grpc://"):
        if url.startswith(scheme):
            url = url[len(scheme):]
    return url.rstrip("/")


class Wire:
    """One protocol's tritonclient module and the call shapes that differ between protocols."""

    def __init__(self, protocol: str, aio: bool = False):
        self.protocol = check_protocol(protocol)
        self.is_grpc = self.protocol == "grpc"
        self.aio = aio
        self.module = importlib.import_module(f"tritonclient.{self.protocol}{'.aio' if aio else ''}")

    def new_client(self, url: str, timeout: float | None, concurrency: int = 1):
        if self.is_grpc:
            return self.module.InferenceServerClient(host_port(url))
        if self.aio:
            return self.module.InferenceServerClient(host_port(url), conn_limit=max(1, concurrency))
        # Sync HTTP has no per-call client deadline: its socket timeouts are set here.
        seconds = 1e9 if timeout is None else timeout
        return self.module.InferenceServerClient(host_port(url), connection_timeout=seconds, network_timeout=seconds)

    def _deadline(self, timeout: float | None) -> dict:
        return {"client_timeout": timeout} if self.is_grpc and timeout is not None else {}

    def loaded_models(self, client, timeout: float | None):
        """The server's loaded models, from the statistics API: `serve` keeps the repository API
        (load/unload, index) closed to clients, statistics stay open and list exactly the loaded ones."""
        if self.is_grpc:
            return client.get_inference_statistics(as_json=True, **self._deadline(timeout))
        return client.get_inference_statistics()

    def model_config(self, client, name: str, timeout: float | None):
        if self.is_grpc:
            return client.get_model_config(name, as_json=True, **self._deadline(timeout))
        return client.get_model_config(name)

    def infer(self, client, model: str, tensors: Sequence[tuple[str, np.ndarray, str]], timeout: float | None,
              outputs: Sequence[str] | None = None):
        """`outputs`: the output tensors to ask for (None: all the model has)."""
        return client.infer(model, self.inputs(tensors), outputs=self.requested(outputs), **self._deadline(timeout))

    def inputs(self, tensors: Sequence[tuple[str, np.ndarray, str]]) -> list:
        inputs = []
        for name, array, datatype in tensors:
            tensor = self.module.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        return inputs

    def requested(self, outputs: Sequence[str] | None) -> list | None:
        # Named outputs only: a sparse model's SPARSE_TOKENS (strings) travel only when asked for.
        return None if outputs is None else [self.module.InferRequestedOutput(name) for name in outputs]


def index_rows(raw: Any) -> list[Mapping]:
    """Model rows ({name, version[, state]}) of a statistics answer ({'model_stats': [...]}) or of a
    repository index (HTTP: a list, gRPC as_json: {'models': [...]})."""
    if isinstance(raw, Mapping):
        return list(raw.get("model_stats", raw.get("models", [])))
    return list(raw or [])


def config_dict(raw: Mapping) -> Mapping:
    """A model config: HTTP gives it directly, gRPC (as_json) under 'config'."""
    return raw["config"] if "config" in raw and "name" not in raw else raw


def response_arrays(result, names: Sequence[str]) -> dict[str, np.ndarray]:
    arrays = {}
    for name in names:
        value = result.as_numpy(name)
        if value is None:
            raise InternalServerError(f"the server's answer has no {name} output; is this a triton-pooling model?")
        arrays[name] = value
    return arrays
