#!/usr/bin/env python3
"""Liveness probe for a triton-pooling pod: tiny inferences to every pooling model over HTTP (stdlib only).

Why not /v2/health/ready: with Triton 2.51, a model whose Python stub died (OOM killer, a native crash)
answers every request routed to that instance with `Stub process '<model>_0_0' is not healthy.` while the
server keeps reporting the model ready (docs/reliability.md). Only an inference notices; the kubelet then
restarts the container.

    python3 liveness.py [--url http://127.0.0.1:8000] [--repository /models] [--models a,b]

The models are the folders of the repository whose config.pbtxt carries the `pooling_task` parameter (the
models clients call: an ensemble's steps are exercised through their ensemble), or --models / PROBE_MODELS.
Each gets one-text requests ("TEXT", shape [1, 1], asking for NUM_TOKENS only), one after another, twice as
many as it has instances (its config.pbtxt, as `triton-pooling build` sized it for the pod): Triton hands
consecutive requests to its instances in turn, so one dead stub among three instances is hit, not missed
two times in three (measured: 2 instances, one stub killed — single requests failed and answered in turn).
Each request asks Triton to drop it after --queue-timeout-us in the queue, so a busy server answers quickly,
and no new request starts after --budget seconds.

Exit 0: every request answered, or a model refused one for overload (queue full, queue timeout): busy is
alive, and restarting a busy pod would only move its load onto the others. Exit 1: anything else — an error
answer (a dead stub), connection refused, or no answer within --timeout seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

OVERLOAD = ("Exceeds maximum queue size", "Request timeout expired")
POOLING_TASK = re.compile(r'key\s*:\s*"pooling_task"')
INSTANCES = re.compile(r"count\s*:\s*(\d+)")
MAX_REQUESTS = 16


def pooling_models(repository: Path) -> list[str]:
    """Models clients call: folders whose config.pbtxt names a pooling task."""
    found = []
    for config in sorted(repository.glob("*/config.pbtxt")):
        if POOLING_TASK.search(config.read_text(encoding="utf-8", errors="replace")):
            found.append(config.parent.name)
    return found


def instance_count(repository: Path, model: str) -> int:
    """Instances of a model, from the config.pbtxt Triton loaded; 1 if unknown."""
    try:
        text = (repository / model / "config.pbtxt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 1
    group = text[text.find("instance_group"):] if "instance_group" in text else ""
    counts = [int(c) for c in INSTANCES.findall(group.split("]")[0])] if group else []
    return max(1, sum(counts)) if counts else 1


def probe(url: str, model: str, timeout: float, queue_timeout_us: int) -> tuple[bool, str]:
    """(alive, what happened) for one tiny inference."""
    body = {
        "inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": ["liveness probe"]}],
        "outputs": [{"name": "NUM_TOKENS"}],
        "parameters": {"timeout": queue_timeout_us},
    }
    request = urllib.request.Request(f"{url.rstrip('/')}/v2/models/{model}/infer", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            outputs = json.loads(answer.read()).get("outputs") or []
            if any(o.get("name") == "NUM_TOKENS" for o in outputs):
                return True, "answered"
            return False, f"answered without NUM_TOKENS: {outputs!r:.200}"
    except urllib.error.HTTPError as e:
        message = e.read().decode("utf-8", "replace")
        if any(sign in message for sign in OVERLOAD):
            return True, f"busy ({e.code}): {message[:200]}"
        return False, f"HTTP {e.code}: {message[:300]}"
    except (urllib.error.URLError, OSError, ValueError) as e:  # refused, reset, timed out, not JSON
        return False, f"no answer: {e}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("PROBE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--repository", type=Path, default=Path(os.environ.get("PROBE_MODEL_REPOSITORY", "/models")))
    parser.add_argument("--models", default=os.environ.get("PROBE_MODELS", ""),
                        help="comma-separated model names (default: the repository's pooling models)")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("PROBE_TIMEOUT_S", "8")),
                        help="seconds to wait for each answer")
    parser.add_argument("--budget", type=float, default=float(os.environ.get("PROBE_BUDGET_S", "6")),
                        help="no new request after this many seconds (keep it under the probe's timeoutSeconds)")
    parser.add_argument("--queue-timeout-us", type=int, default=int(os.environ.get("PROBE_QUEUE_TIMEOUT_US", "3000000")))
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m] or pooling_models(args.repository)
    if not models:
        print(f"liveness: no pooling models in {args.repository}", file=sys.stderr)
        return 1
    deadline = time.monotonic() + args.budget
    failed = 0
    for model in models:
        requests = min(MAX_REQUESTS, 2 * instance_count(args.repository, model))
        sent, alive, what = 0, True, "nothing sent (budget spent)"
        while sent < requests and (sent == 0 or time.monotonic() < deadline):
            alive, what = probe(args.url, model, args.timeout, args.queue_timeout_us)
            sent += 1
            if not alive or what.startswith("busy"):
                break
        print(f"liveness: {model}: {what} ({sent} of {requests} requests)", file=sys.stdout if alive else sys.stderr)
        failed += not alive
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
