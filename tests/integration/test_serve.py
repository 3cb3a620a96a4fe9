"""`triton-pooling serve` as a new user meets it, on the real server and without `--log-file`: a model
that fails to load is named with its reason, a taken port is refused before anything is "ready",
`--model-control` on a network address without an API key is refused, and Ctrl-C / SIGTERM / SIGQUIT at
start-up or in steady state leave no process and no shared memory behind."""

from __future__ import annotations

import http.server
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_server.builder.config_text import ModelSpec
from triton_pooling_server.launch.stubs import descendants, stubs
from triton_pooling_contract.tasks import PoolingTask

from support.serve_cli import ServeCommand
from support.triton import write_model

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _our_processes(serve: ServeCommand) -> tuple[list[int], list[str]]:
    """Every process below serve, and the stubs' shared-memory files."""
    pids = descendants(serve.process.pid)
    regions = [s.shm_region for pid in pids for s in stubs(pid)]
    return pids, regions


def _assert_nothing_left(pids: list[int], regions: list[str]) -> None:
    deadline = time.monotonic() + 10
    while [p for p in pids if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids if _alive(p)], "processes outlived serve"
    assert not [r for r in regions if Path("/dev/shm", r).exists()], "shared memory left behind"


@pytest.fixture(scope="module")
def tiny_repository(checkpoints, tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("serve_repository")
    write_model(repo, ModelSpec("tiny", ModelDefinition(PoolingTask.SEQ_CLASSIFY, str(checkpoints["bert-seq-3"])), instance_count=2))
    return repo


def test_a_model_that_fails_to_load_is_named_with_its_reason(checkpoints, tmp_path):
    write_model(tmp_path, ModelSpec("mismatched", ModelDefinition(PoolingTask.EMBED, str(checkpoints["bert-embed"]))))
    config = tmp_path / "mismatched" / "config.pbtxt"  # edited by hand: a pooling no task has, the task changed
    config.write_text(config.read_text().replace('string_value: "embed"', 'string_value: "token_embed"')
                      + 'parameters { key: "pooling_type" value { string_value: "NOT_A_POOLING" } }\n')
    serve = ServeCommand(tmp_path, tmp_path / "unused.log", log_file=False).start()
    code = serve.wait_exit(300)
    output = serve.output()
    assert code != 0
    assert "triton-pooling is ready" not in output
    # The one-task mismatch is the reason given, though pooling_type is wrong too (checked later).
    assert "failed to load 'mismatched'" in output, output
    assert "serves task 'embed'" in output and "names 'token_embed'" in output, output


class _ReadyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802  (http.server's name)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_port_held_by_another_server_is_refused_before_anything_is_ready(tiny_repository, tmp_path):
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ReadyHandler)  # answers "ready" to anyone
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        serve = ServeCommand(tiny_repository, tmp_path / "unused.log", log_file=False)
        serve.http_port = other.server_address[1]
        serve.start()
        code = serve.wait_exit(60)
        output = serve.output()
    finally:
        other.shutdown()
    assert code != 0
    assert f"--http-port {serve.http_port}" in output and "already in use" in output, output
    assert "triton-pooling is ready" not in output
    assert descendants(serve.process.pid) == []


def test_ctrl_c_during_startup_leaves_nothing(tiny_repository, tmp_path):
    serve = ServeCommand(tiny_repository, tmp_path / "unused.log", log_file=False).start()
    deadline = time.monotonic() + 120
    seen: tuple[list[int], list[str]] = ([], [])
    while not seen[1]:  # a stub is loading its model: start-up is well under way
        assert serve.process.poll() is None and time.monotonic() < deadline, serve.output()
        seen = _our_processes(serve)
        time.sleep(0.05)
    serve.process.send_signal(signal.SIGINT)
    assert serve.wait_exit(60) == 0, serve.output()
    _assert_nothing_left(*seen)
    assert "triton-pooling is ready" not in serve.output()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGQUIT])  # SIGHUP: test_hostile_gateway.py
def test_sigterm_in_steady_state_leaves_nothing(tiny_repository, tmp_path, stop_signal):
    serve = ServeCommand(tiny_repository, tmp_path / "unused.log", log_file=False).start()
    serve.wait_ready()
    deadline = time.monotonic() + 60
    while "triton-pooling is ready" not in serve.output():
        assert time.monotonic() < deadline, serve.output()
        time.sleep(0.1)
    pids, regions = _our_processes(serve)
    assert len(regions) == 2, "two instances, two stubs"
    started = time.monotonic()
    os.kill(serve.process.pid, stop_signal)
    assert serve.wait_exit(60) == 0, serve.output()
    print(f"{stop_signal.name} to exit: {time.monotonic() - started:.1f} s")
    _assert_nothing_left(pids, regions)


def test_sigterm_while_healing_leaves_nothing(tiny_repository, tmp_path):
    serve = ServeCommand(tiny_repository, tmp_path / "unused.log", log_file=False).start()
    try:
        serve.wait_ready()
        server_pid = serve.tritonserver_pid()
        os.kill(stubs(server_pid)[0].pid, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while "reloading 'tiny'" not in serve.output():
            assert time.monotonic() < deadline, serve.output()
            time.sleep(0.05)
        pids, regions = _our_processes(serve)  # the reload's new stubs included
        os.kill(serve.process.pid, signal.SIGTERM)
        assert serve.wait_exit(60) == 0, serve.output()
        _assert_nothing_left(pids, regions)
    finally:
        serve.stop(timeout=30)  # a no-op once it exited; a failed assertion leaves nothing running


def test_gateway_port_starts_the_gateway_beside_triton_and_stops_it(tmp_path):
    """`serve --gateway-port P` (an empty repository: no model to load) prints the gateway's address,
    the gateway answers there with the bounds serve was given (--gateway-max-body-bytes), and SIGTERM to serve
    stops it too."""
    import json
    import urllib.error
    import urllib.request

    from support.triton import free_ports

    (gateway_port,) = free_ports(1)
    serve = ServeCommand(tmp_path, tmp_path / "unused.log", "--gateway-port", str(gateway_port),
                         "--gateway-max-body-bytes", "64", log_file=False).start()
    deadline = time.monotonic() + 120
    while f"gateway: http://127.0.0.1:{gateway_port}" not in serve.output():
        assert serve.process.poll() is None and time.monotonic() < deadline, serve.output()
        time.sleep(0.1)
    with urllib.request.urlopen(f"http://127.0.0.1:{gateway_port}/v1/models", timeout=10) as response:
        assert json.load(response)["data"] == []
    body = json.dumps({"model": "embed", "input": "x" * 200}).encode()
    big = urllib.request.Request(f"http://127.0.0.1:{gateway_port}/v1/embeddings", body,
                                 {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(big, timeout=10)
    assert refused.value.code == 413
    pids, regions = _our_processes(serve)
    commands = [Path(f"/proc/{p}/cmdline").read_text(errors="replace").split("\0") for p in pids]
    gateway = [c for c in commands if "triton_pooling_server.gateway" in c]
    assert gateway and "--max-body-bytes" in gateway[0] and "64" in gateway[0], commands
    os.kill(serve.process.pid, signal.SIGTERM)
    assert serve.wait_exit(60) == 0, serve.output()
    _assert_nothing_left(pids, regions)


def test_model_control_on_a_network_address_without_an_api_key_is_refused(tmp_path):
    serve = ServeCommand(tmp_path, tmp_path / "unused.log", "--host", "0.0.0.0", "--model-control", log_file=False)
    serve.start()
    assert serve.wait_exit(60) == 1
    output = serve.output()
    assert "run code" in output and "--api-key" in output and "triton-pooling is ready" not in output, output
    assert descendants(serve.process.pid) == []
