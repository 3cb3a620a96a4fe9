"""Faults under load on the real `triton-pooling serve`: a model's Python stub killed mid-request and
mid-load, the server stopped and started again, a model reloaded. Every request ends with a result
or an error (none hangs, none is answered wrongly) and service resumes with no manual step.

Recovery times are printed (run with -s) for docs/reliability.md.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

from triton_pooling import PoolingClient
from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_server.builder.config_text import ModelSpec
from triton_pooling_server.launch.stubs import command_line, stub_pids, stubs
from triton_pooling_contract.tasks import PoolingTask

from support.load import Load
from support.serve_cli import ServeCommand
from support.triton import write_model

pytestmark = pytest.mark.integration

TEXTS = [f"request number {i}: " + "some words " * (i % 7) for i in range(16)]
THREADS = 4
# Long enough to ride through a supervised restart (grace + start) on this 2-core machine.
RETRY = dict(retries=60, backoff=0.5, max_backoff=2.0, timeout=60.0)


@pytest.fixture(scope="module")
def serve(checkpoints, tmp_path_factory):
    """`triton-pooling serve --model-control` on a repository with one tiny model."""
    repo = tmp_path_factory.mktemp("faults_repository")
    write_model(repo, ModelSpec("victim", ModelDefinition(PoolingTask.SEQ_CLASSIFY, str(checkpoints["bert-seq-3"]))))
    command = ServeCommand(repo, repo / "tritonserver.log", "--model-control").start()
    try:
        command.wait_ready()
        yield command
    finally:
        command.stop(timeout=10)  # the last test leaves a half-loaded version a graceful stop waits 30 s on


@pytest.fixture(scope="module")
def default_serve(checkpoints, tmp_path_factory):
    """`triton-pooling serve` as users run it (no flags, no --log-file) on a three-instance model."""
    repo = tmp_path_factory.mktemp("instances_repository")
    write_model(repo, ModelSpec("victim", ModelDefinition(PoolingTask.SEQ_CLASSIFY, str(checkpoints["bert-seq-3"])),
                                instance_count=3, queue_delay_us=0))
    command = ServeCommand(repo, repo / "unused.log", log_file=False).start()
    try:
        command.wait_ready()
        yield command
    finally:
        command.stop(timeout=30)


@pytest.fixture(scope="module")
def expected(serve) -> dict[int, np.ndarray]:
    """Each text's scores from a single request on the healthy server: the answer to match."""
    with PoolingClient(serve.grpc_url) as pooling:
        return {i: np.asarray(pooling.classify([t], model="victim")[0].outputs.probs) for i, t in enumerate(TEXTS)}


def _load(serve, expected, model="victim", retry=None) -> Load:
    local = threading.local()

    def request(number: int) -> bool:
        if not hasattr(local, "client"):
            local.client = PoolingClient(serve.grpc_url, max_concurrency=1, **(RETRY if retry is None else retry))
        i = number % len(TEXTS)
        got = np.asarray(local.client.classify([TEXTS[i]], model=model)[0].outputs.probs)
        return got.shape == expected[i].shape and bool(np.max(np.abs(got - expected[i])) <= 1e-5)

    return Load(request, THREADS).start()


def _assert_accounted(tally, allow_errors: bool) -> None:
    print(tally.summary())
    assert tally.lost == 0, f"requests hung: {tally.summary()}"
    assert tally.mismatched == 0, f"wrong answers: {tally.summary()}"
    assert tally.answered > 0
    if not allow_errors:
        assert tally.errored == 0, tally.summary()


def test_one_instance_killed_under_load_is_healed_in_seconds_at_default_retries(default_serve, expected):
    """SIGKILL of one of three instances: serve reloads just that model while the survivors serve;
    a client at its default retry settings sees no failure."""
    load = _load(default_serve, expected, retry={})
    time.sleep(2)
    server_pid = default_serve.tritonserver_pid()
    before = {s.instance: s for s in stubs(server_pid) if s.model == "victim"}
    assert sorted(before) == ["victim_0_0", "victim_0_1", "victim_0_2"]
    victim = before["victim_0_1"]
    killed_at = load.elapsed()
    os.kill(victim.pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while True:  # healed: every instance has a live stub again, none of them the killed one
        now = {s.instance: s.pid for s in stubs(server_pid) if s.model == "victim"}
        if len(now) == 3 and victim.pid not in now.values() and "reloaded in" in default_serve.output():
            break
        assert time.monotonic() < deadline, f"not healed: {load.tally.summary()}\n{default_serve.output()[-2000:]}"
        time.sleep(0.1)
    healed_at = load.elapsed()
    time.sleep(2)
    tally = load.stop()
    print(f"one of three instances killed: healed {healed_at - killed_at:.1f} s after the kill; {tally.summary()}")
    _assert_accounted(tally, allow_errors=False)
    assert default_serve.tritonserver_pid() == server_pid, "the whole server was restarted, not just the model"
    assert "restarting tritonserver" not in default_serve.output()


def _touch_model(serve) -> None:
    """Triton reloads a loaded model only if its files changed."""
    os.utime(serve.repository / "victim" / "1" / "model.py")


def test_model_reloaded_under_load_loses_nothing(serve, expected):
    load = _load(serve, expected)
    time.sleep(2)
    server_pid = serve.tritonserver_pid()
    before = set(stub_pids(server_pid, "victim"))
    started = load.elapsed()
    _touch_model(serve)
    http = httpclient.InferenceServerClient(serve.http_url, network_timeout=300)
    http.load_model("victim")
    http.close()  # an open HTTP connection holds a later graceful stop for 30 s
    print(f"model reloaded under load in {load.elapsed() - started:.1f} s")
    time.sleep(2)
    _assert_accounted(load.stop(), allow_errors=False)
    assert set(stub_pids(server_pid, "victim")) - before, "the model was not really reloaded (no new stub)"


def test_server_stopped_and_started_under_load_client_retries_through(serve, expected):
    load = _load(serve, expected)
    time.sleep(2)
    stopped_at = load.elapsed()
    serve.stop()
    serve.start()
    serve.wait_ready()
    ready_at = load.elapsed()
    while not load.tally.first_success_after(ready_at):
        assert load.elapsed() - ready_at < 60, load.tally.summary()
        time.sleep(0.2)
    time.sleep(1)
    tally = load.stop()
    print(f"server restart under load: down {ready_at - stopped_at:.1f} s, "
          f"first answer {tally.first_success_after(ready_at) - stopped_at:.1f} s after the stop")
    _assert_accounted(tally, allow_errors=False)


def test_stub_killed_mid_load_does_not_hang_the_load_for_good(serve, expected):
    client = httpclient.InferenceServerClient(serve.http_url, network_timeout=300, connection_timeout=300)
    server_pid = serve.tritonserver_pid()
    old = set(stub_pids(server_pid, "victim"))
    outcome = {}

    def reload():
        try:
            client.load_model("victim")
            outcome["result"] = "loaded"
        except Exception as e:  # noqa: BLE001  (any ending is fine; hanging is not)
            outcome["result"] = f"error: {e}"

    loader = threading.Thread(target=reload, daemon=True)
    started = time.monotonic()
    _touch_model(serve)
    loader.start()
    # Kill the new instance's stub while it initializes (imports torch, reads weights): the window
    # in which the OOM killer would strike, not the ~1 s config auto-complete stub before it.
    while not (new := [p for p in set(stub_pids(server_pid, "victim")) - old if command_line(p)[8:9] != ["victim"]]):
        assert time.monotonic() - started < 120, "the reload never started an instance stub"
        time.sleep(0.05)
    time.sleep(1.0)
    os.kill(new[0], signal.SIGKILL)
    loader.join(180)
    assert not loader.is_alive(), "the load call hung"
    client.close()
    serve.wait_ready(180)
    load = _load(serve, expected)
    while not load.tally.answered:
        assert load.elapsed() < 120, load.tally.summary()
        time.sleep(0.2)
    print(f"stub killed mid-load: load call ended ({outcome['result'][:80]}); "
          f"answering again {time.monotonic() - started:.1f} s after the load began")
    _assert_accounted(load.stop(), allow_errors=False)
