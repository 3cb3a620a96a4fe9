"""Prometheus metrics of the gateway, in the text exposition format: requests, errors and latency per
endpoint and model. Labels come only from the gateway's own routes and the served models' names
(never from what a client typed), so their number stays bounded."""

from __future__ import annotations

import bisect
import collections
import dataclasses

PREFIX = "triton_pooling_gateway"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclasses.dataclass
class _Histogram:
    counts: list[int] = dataclasses.field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


class Metrics:
    def __init__(self):
        self.requests: collections.Counter = collections.Counter()  # (endpoint, model, status)
        self.errors: collections.Counter = collections.Counter()  # (endpoint, model, error type)
        self.latency: dict[tuple[str, str], _Histogram] = collections.defaultdict(_Histogram)
        self.in_flight = 0

    def observe(self, endpoint: str, model: str, status: int, seconds: float, error_type: str | None = None) -> None:
        self.requests[(endpoint, model, str(status))] += 1
        if error_type is not None:
            self.errors[(endpoint, model, error_type)] += 1
        self.latency[(endpoint, model)].observe(seconds)

    def render(self) -> str:
        lines = [
            f"# HELP {PREFIX}_requests_total HTTP requests answered, by endpoint, model and status.",
            f"# TYPE {PREFIX}_requests_total counter",
        ]
        lines += [f"{PREFIX}_requests_total{_labels(endpoint=e, model=m, status=s)} {n}"
                  for (e, m, s), n in sorted(self.requests.items())]
        lines += [f"# HELP {PREFIX}_errors_total Requests answered with an error, by endpoint, model and error type.",
                  f"# TYPE {PREFIX}_errors_total counter"]
        lines += [f"{PREFIX}_errors_total{_labels(endpoint=e, model=m, type=t)} {n}"
                  for (e, m, t), n in sorted(self.errors.items())]
        lines += [f"# HELP {PREFIX}_request_duration_seconds Time from request to answer, by endpoint and model.",
                  f"# TYPE {PREFIX}_request_duration_seconds histogram"]
        for (e, m), h in sorted(self.latency.items()):
            cumulative = 0
            for bound, count in zip((*BUCKETS, float("inf")), h.counts):
                cumulative += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                labels = _labels(endpoint=e, model=m, le=le)
                lines.append(f"{PREFIX}_request_duration_seconds_bucket{labels} {cumulative}")
            lines.append(f"{PREFIX}_request_duration_seconds_sum{_labels(endpoint=e, model=m)} {h.total!r}")
            lines.append(f"{PREFIX}_request_duration_seconds_count{_labels(endpoint=e, model=m)} {cumulative}")
        lines += [f"# HELP {PREFIX}_requests_in_flight Requests being answered now.",
                  f"# TYPE {PREFIX}_requests_in_flight gauge", f"{PREFIX}_requests_in_flight {self.in_flight}"]
        return "\n".join(lines) + "\n"


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
