"""The gateway's settings, typed and checked once (errors name the setting, the value and what is allowed)."""

from __future__ import annotations

import dataclasses

DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise, like `serve`
DEFAULT_PORT = 9000


class SettingsError(ValueError):
    """A gateway setting out of range."""


@dataclasses.dataclass(frozen=True)
class GatewaySettings:
    triton_url: str  # Triton's gRPC endpoint, HOST:PORT
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    timeout: float = 60.0  # seconds each Triton call may take before the request is answered 504
    max_body_bytes: int = 8 * 1024 * 1024  # larger bodies are answered 413
    max_inputs: int = 2048  # texts (or pairs' documents) per request, as OpenAI's embeddings limit
    pool_size: int = 4  # gRPC connections to Triton
    health_ttl: float = 2.0  # seconds a /health verdict (with its probe inferences) is reused
    probe_timeout: float = 10.0  # seconds each model's probe inference may take
    access_log: bool = False

    def __post_init__(self):
        if not self.triton_url or ":" not in self.triton_url:
            raise SettingsError(f"triton_url must be HOST:GRPC_PORT; got {self.triton_url!r}")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port must be between 0 and 65535; got {self.port}")
        for name in ("timeout", "health_ttl", "probe_timeout"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be > 0 seconds; got {getattr(self, name)}")
        for name in ("max_body_bytes", "max_inputs", "pool_size"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be >= 1; got {getattr(self, name)}")
