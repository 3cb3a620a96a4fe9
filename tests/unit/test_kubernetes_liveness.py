"""The liveness probe script the Kubernetes pods run (deploy/kubernetes/base/files/liveness.py), run against a fake
Triton and a scratch repository: it probes every pooling model once per instance its config.pbtxt names, never an
ensemble step, and fails on a dead stub, not on a full queue."""

from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "deploy" / "kubernetes" / "base" / "files"

pytestmark = pytest.mark.slow  # runs the script in subprocesses

def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FILES / name), *args], capture_output=True, text=True, timeout=60)


def scratch_repository(folder: Path) -> Path:
    """Two pooling models (the shipped embed config, sized as build sizes it for a 2-CPU pod: 3 instances; one
    ensemble) and an ensemble step."""
    (folder / "embed").mkdir(parents=True)
    shipped = (ROOT / "model_repository" / "embed" / "config.pbtxt").read_text()
    sized = re.sub(r"instance_group \[[^\]]*\]", "instance_group [ { count: 3 kind: KIND_CPU } ]", shipped, count=1)
    assert "count: 3 kind: KIND_CPU" in sized
    (folder / "embed" / "config.pbtxt").write_text(sized)
    (folder / "bge").mkdir()
    (folder / "bge" / "config.pbtxt").write_text(
        'name: "bge"\nplatform: "ensemble"\nmax_batch_size: 64\n'
        'parameters { key: "pooling_task" value { string_value: "embed" } }\n')
    (folder / "bge_head").mkdir()
    (folder / "bge_head" / "config.pbtxt").write_text(
        'name: "bge_head"\nbackend: "python"\nmax_batch_size: 64\n'
        'instance_group [ { count: 1 kind: KIND_CPU } ]\n'
        'parameters { key: "ensemble_step_of_task" value { string_value: "embed" } }\n')
    return folder


class FakeTriton(http.server.ThreadingHTTPServer):
    """Answers /v2/models/<m>/infer from `behaviour[m]`: a list of (status, body) cycled per request."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.requests: list[tuple[str, dict]] = []
        super().__init__(("127.0.0.1", 0), FakeHandler)


class FakeHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        model = self.path.split("/")[3]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        answers = server.behaviour[model]
        status, reply = answers[sum(1 for m, _ in server.requests if m == model) % len(answers)]
        server.requests.append((model, body))
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


OK = (200, {"model_name": "m", "outputs": [{"name": "NUM_TOKENS", "datatype": "INT32", "shape": [1, 1], "data": [5]}]})
DEAD = (500, {"error": "Stub process 'embed_0_0' is not healthy."})
FULL = (503, {"error": "Exceeds maximum queue size"})


@pytest.fixture
def probe_repository(tmp_path):
    return scratch_repository(tmp_path / "models")


@pytest.mark.parametrize("case, embed, bge, code, embed_requests", [
    ("healthy", [OK], [OK], 0, 6),                     # 2 x 3 instances (from config.pbtxt)
    ("one of three stubs dead", [OK, OK, DEAD], [OK], 1, 3),
    ("queue full is alive", [FULL], [OK], 0, 1),
    ("answer without outputs", [(200, {"outputs": []})], [OK], 1, 1),
    ("second model dead", [OK], [DEAD], 1, 6),
])
def test_liveness_probe(probe_repository, case, embed, bge, code, embed_requests):
    server = FakeTriton({"embed": embed, "bge": bge})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        done = run_script("liveness.py", "--url", f"http://127.0.0.1:{server.server_address[1]}",
                          "--repository", str(probe_repository))
    finally:
        server.shutdown()
    assert done.returncode == code, (case, done.stdout, done.stderr)
    assert sorted({m for m, _ in server.requests}) == ["bge", "embed"]  # pooling models only, never the step
    assert sum(1 for m, _ in server.requests if m == "embed") == embed_requests
    model, body = server.requests[0]
    assert body["inputs"] == [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": ["liveness probe"]}]
    assert body["outputs"] == [{"name": "NUM_TOKENS"}] and body["parameters"]["timeout"] > 0
    if code:
        assert "not healthy" in done.stderr or "without NUM_TOKENS" in done.stderr


def test_liveness_probe_fails_when_nothing_listens(probe_repository):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the probe runs
    done = run_script("liveness.py", "--url", f"http://127.0.0.1:{port}", "--repository", str(probe_repository),
                      "--timeout", "2")
    assert done.returncode == 1 and "no answer" in done.stderr
    empty = run_script("liveness.py", "--repository", str(probe_repository / "missing"))
    assert empty.returncode == 1 and "no pooling models" in empty.stderr
