"""A small pool of tritonclient asyncio gRPC clients to one Triton, each its own HTTP/2 connection,
used round-robin. Every call has a deadline; every failure comes out classified by the client
package (`triton_pooling.errors.classify_error`)."""

from __future__ import annotations

import itertools
from typing import Any, Awaitable, Callable, Mapping, Sequence, TypeVar

import numpy as np

from triton_pooling.errors import classify_error
from triton_pooling.transport import Wire, config_dict, host_port, index_rows, response_arrays

T = TypeVar("T")


class TritonPool:
    def __init__(self, url: str, size: int, timeout: float):
        self.url = host_port(url)
        self.size = size
        self.timeout = timeout
        self._wire = Wire("grpc", aio=True)
        self._clients: list[Any] = []
        self._turn = itertools.count()

    def _client(self):
        # Created on first use, inside the running event loop (grpc.aio binds channels to it).
        if not self._clients:
            self._clients = [self._new_client() for _ in range(self.size)]
        return self._clients[next(self._turn) % self.size]

    def _new_client(self):
        from tritonclient.grpc import KeepAliveOptions
        from tritonclient.grpc._client import MAX_GRPC_MESSAGE_SIZE

        keepalive = KeepAliveOptions()
        options = [
            ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
            ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
            ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
            ("grpc.keepalive_permit_without_calls", keepalive.keepalive_permit_without_calls),
            ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
            ("grpc.use_local_subchannel_pool", 1),  # a connection per client, not one shared by all
        ]
        return self._wire.module.InferenceServerClient(self.url, channel_args=options)

    async def _call(self, call: Callable[[Any], Awaitable[T]], context: str) -> T:
        try:
            return await call(self._client())
        except Exception as e:  # noqa: BLE001  (classified: the caller sees only the client's error kinds)
            raise classify_error(e, context) from e

    async def infer(self, model: str, tensors: Sequence[tuple[str, np.ndarray, str]], outputs: Sequence[str],
                    timeout: float | None = None, queue_timeout: float | None = None) -> dict[str, np.ndarray]:
        """`queue_timeout`: seconds Triton may keep this request queued before refusing it ("Request timeout
        expired"; the model's config must allow_timeout_override, as `build` writes it)."""
        deadline = timeout or self.timeout

        def call(client):
            if queue_timeout is None:
                return self._wire.infer(client, model, tensors, deadline, outputs)
            return client.infer(model, self._wire.inputs(tensors), outputs=self._wire.requested(outputs),
                                timeout=int(queue_timeout * 1e6), client_timeout=deadline)

        return response_arrays(await self._call(call, f"model {model!r}"), outputs)

    async def server_ready(self, timeout: float) -> bool:
        return bool(await self._call(lambda c: c.is_server_ready(client_timeout=timeout), "server readiness"))

    async def model_ready(self, name: str, timeout: float) -> bool:
        """Triton's own model readiness: metadata, answered without queueing behind inferences."""
        return bool(await self._call(lambda c: c.is_model_ready(name, client_timeout=timeout), f"{name!r} readiness"))

    async def loaded_models(self) -> list[Mapping]:
        """Rows {name, version} of the loaded models (the statistics API: `serve` keeps the repository
        index closed to clients)."""
        raw = await self._call(lambda c: self._wire.loaded_models(c, self.timeout), "listing the loaded models")
        return index_rows(raw)

    async def model_config(self, name: str) -> Mapping:
        raw = await self._call(lambda c: self._wire.model_config(c, name, self.timeout), f"reading {name!r}'s config")
        return config_dict(raw)

    async def close(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            await client.close()
