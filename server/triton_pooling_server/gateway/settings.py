"""The gateway's settings, typed and checked once (errors name the setting, the value and what is allowed)."""

from __future__ import annotations

import dataclasses
import ipaddress

DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise, like `serve`
DEFAULT_PORT = 9000
# The API key's environment variable: `gateway` and `serve` read it where they parse their flags, and
# `serve` hands the key to its gateway child this way (a command line is readable by every local user).
API_KEY_ENV = "TRITON_POOLING_API_KEY"
MIB = 1024 * 1024


class SettingsError(ValueError):
    """A gateway setting out of range."""


@dataclasses.dataclass(frozen=True)
class GatewaySettings:
    triton_url: str  # Triton's gRPC endpoint, HOST:PORT
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    timeout: float = 60.0  # seconds each Triton call may take before the request is answered 504
    max_body_bytes: int = 8 * MIB  # larger bodies are answered 413
    max_inputs: int = 2048  # texts (or pairs' documents) per request, as OpenAI's embeddings limit
    pool_size: int = 4  # gRPC connections to Triton
    health_ttl: float = 2.0  # seconds a /health verdict (with its probe inferences) is reused
    # Each model's /health probe: a client deadline, and a queue timeout Triton applies to the probe alone,
    # so a busy model answers "queue full" / "timeout expired" (alive) instead of keeping /health waiting.
    probe_timeout: float = 1.5
    probe_queue_timeout: float = 0.5
    access_log: bool = False
    api_key: str | None = dataclasses.field(default=None, repr=False)  # None: no authentication
    # TEI's name and default: requests in flight past this are answered 429 before their body is read.
    max_concurrent_requests: int = 512
    # Bytes of request bodies held at once (Content-Length, or --max-body-bytes when unknown); past it, 429.
    # A parsed body is up to ~5x its bytes (token-id lists), so this bounds the gateway's memory for bodies.
    max_body_bytes_in_flight: int = 64 * MIB
    # float32 bytes of model output one request may hold (inputs x rows x values x 4); larger is 413.
    # 32 MiB takes 2048 embeddings of 4096 dimensions; it refuses 2048 x 256 token rows x 384 (805 MB).
    max_output_bytes: int = 32 * MIB
    max_calls_per_request: int = 8  # Triton requests one HTTP request has in flight at once
    body_timeout: float = 30.0  # seconds a request body may take to arrive (slowloris); then 408
    keepalive_timeout: float = 15.0  # seconds an idle connection stays open (aiohttp's default is ~1 h)
    # The model repository Triton serves, read only for each model's tokenizer.json (/tokenize, /detokenize,
    # /decode); None: those routes answer 501.
    model_repository: str | None = None

    def __post_init__(self):
        if not self.triton_url or ":" not in self.triton_url:
            raise SettingsError(f"triton_url must be HOST:GRPC_PORT; got {self.triton_url!r}")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port must be between 0 and 65535; got {self.port}")
        for name in ("timeout", "health_ttl", "probe_timeout", "probe_queue_timeout", "body_timeout",
                     "keepalive_timeout"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be > 0 seconds; got {getattr(self, name)}")
        for name in ("max_body_bytes", "max_inputs", "pool_size", "max_concurrent_requests", "max_output_bytes",
                     "max_calls_per_request"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.max_body_bytes_in_flight < self.max_body_bytes:
            raise SettingsError(f"max_body_bytes_in_flight must be >= max_body_bytes ({self.max_body_bytes}), or "
                                f"no full-size body could ever be read; got {self.max_body_bytes_in_flight}")
        check_api_key(self.api_key, "api_key")

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def check_api_key(key: str | None, name: str) -> None:
    """A key goes in an `Authorization: Bearer` header: visible ASCII, no spaces (RFC 6750's token)."""
    if key is None:
        return
    if not key or not all("!" <= c <= "~" for c in key):
        raise SettingsError(f"{name} must be non-empty printable ASCII without spaces (it travels in an "
                            f"'Authorization: Bearer' header); got {len(key)} characters")


def api_key_from(flag: str | None, environ) -> str | None:
    """The key from its flag, else from TRITON_POOLING_API_KEY; an empty variable means none (compose's
    `${VAR:-}`)."""
    if flag is not None:
        return flag
    return environ.get(API_KEY_ENV) or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
