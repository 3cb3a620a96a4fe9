"""Which processes are stubs, and which vanished stubs are dead: the supervisor's rules, no server."""

from __future__ import annotations

import socket

import pytest

from triton_pooling_server.launch.errors import ServerError
from triton_pooling_server.launch.ports import check_ports_free
from triton_pooling_server.launch.server_output import ServerOutput
from triton_pooling_server.launch.stubs import Stub, parse_stub
from triton_pooling_server.launch.supervisor import InstanceTracker
from triton_pooling_server.launch.triton import ADMIN_HEADER, ServerOptions, TritonInstall, server_command

SERVER = 4242


def _argv(instance: str, server_pid: int = SERVER, model: str = "embed") -> list[str]:
    return ["/x/backends/python/triton_python_backend_stub", f"/repo/{model}/1/model.py", "shm_region_1",
            "1048576", "1048576", str(server_pid), "/x/backends/python", "336", instance, "DEFAULT"]


def test_a_stub_is_known_by_its_instance_name_and_server():
    stub = parse_stub(100, SERVER, _argv("embed_0_2"), SERVER)
    assert stub == Stub(100, "embed", "shm_region_1", "embed_0_2")


def test_a_child_the_stub_forks_is_not_a_stub():
    # Between fork and exec a child keeps the stub's command line; its parent is the stub, not the server.
    assert parse_stub(101, 100, _argv("embed_0_2"), SERVER) is None
    # A stub of another server (e.g. a test's own tritonserver) is not ours either.
    assert parse_stub(102, SERVER, _argv("embed_0_2", server_pid=999), SERVER) is None
    assert parse_stub(103, SERVER, ["/usr/sbin/ldconfig", "-p"], SERVER) is None


def _stubs(*instances: str) -> list[Stub]:
    return [Stub(i, name.rsplit("_", 2)[0], "", name) for i, name in enumerate(instances)]


def test_a_dead_sibling_is_noticed_even_when_others_of_its_model_live():
    tracker = InstanceTracker(grace_s=1.0)
    assert tracker.update(_stubs("embed_0_0", "embed_0_1", "embed_0_2"), now=0.0) == {}
    assert tracker.update(_stubs("embed_0_0", "embed_0_2"), now=1.0) == {}  # within the grace
    assert tracker.update(_stubs("embed_0_0", "embed_0_2"), now=2.5) == {"embed": ["embed_0_1"]}
    assert tracker.live_count(_stubs("embed_0_0", "embed_0_2"), "embed") == 2


def test_a_reload_never_leaves_a_name_missing():
    tracker = InstanceTracker(grace_s=0.5)
    tracker.update(_stubs("embed_0_0", "embed_0_1"), now=0.0)
    # New stubs of the same names start before the old ones exit: the names stay alive throughout.
    assert tracker.update(_stubs("embed_0_0", "embed_0_1", "embed_0_0", "embed_0_1"), now=1.0) == {}
    assert tracker.update(_stubs("embed_0_0", "embed_0_1"), now=5.0) == {}


def test_a_short_lived_process_never_counts():
    tracker = InstanceTracker(grace_s=0.5)
    tracker.update(_stubs("embed_0_0"), now=0.0)
    # parse_stub drops forked children, so the tracker never sees them: only instance names matter.
    assert tracker.update(_stubs("embed_0_0"), now=10.0) == {}


def test_forgotten_models_are_not_reported_again():
    tracker = InstanceTracker(grace_s=0.5)
    tracker.update(_stubs("a_0_0", "b_0_0"), now=0.0)
    assert tracker.update([], now=1.0) == {}
    assert tracker.update([], now=2.0) == {"a": ["a_0_0"], "b": ["b_0_0"]}
    tracker.forget("a")
    assert tracker.update([], now=3.0) == {"b": ["b_0_0"]}


def test_server_command_restricts_admin_apis_and_keeps_one_model_reloadable():
    options = ServerOptions("/repo", admin_key="k3y")
    cmd = server_command(TritonInstall("/bin/tritonserver", (), None, None), options)
    assert "--model-control-mode=explicit" in cmd and "--load-model=*" in cmd
    assert "--disable-auto-complete-config" in cmd
    restricted = f"model-repository,trace,logging,shared-memory:{ADMIN_HEADER}=k3y"
    assert f"--http-restricted-api={restricted}" in cmd
    assert f"--grpc-restricted-protocol={restricted}" in cmd
    opened = server_command(TritonInstall("/bin/tritonserver", (), None, None),
                            ServerOptions("/repo", admin_key="k3y", model_control=True))
    assert f"--http-restricted-api=trace,logging,shared-memory:{ADMIN_HEADER}=k3y" in opened
    assert ServerOptions("/r").admin_key != ServerOptions("/r").admin_key, "a fresh secret per server"


def test_a_taken_port_is_named():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ServerError, match=rf"--grpc-port {port}"):
            check_ports_free("127.0.0.1", {"--http-port": 0, "--grpc-port": port})


def test_failure_summary_names_the_failed_model(tmp_path):
    import io

    output = ServerOutput(echo=io.StringIO())
    log = (b"I1125 model_lifecycle.cc:472] loading: embed:1\n"
           b"E1125 model_lifecycle.cc:641] failed to load 'embed' version 1: Invalid argument: model 'embed' "
           b"serves task 'embed' (its model.py), but its config.pbtxt parameter 'pooling_task' names 'token_embed'\n"
           b"I1125 server.cc:604] +-------+\n")
    output.follow(io.BytesIO(log))
    summary = output.failure_summary()
    assert "failed to load 'embed'" in summary and "names 'token_embed'" in summary


def test_model_control_with_an_api_key_keys_the_repository_api_to_it():
    from triton_pooling_server.launch.triton import API_KEY_HEADER

    options = ServerOptions("/repo", admin_key="k3y", model_control=True, api_key="user-key")
    cmd = server_command(TritonInstall("/bin/tritonserver", (), None, None), options)
    assert f"--http-restricted-api=trace,logging,shared-memory:{ADMIN_HEADER}=k3y" in cmd
    assert f"--http-restricted-api=model-repository:{API_KEY_HEADER}=user-key" in cmd
    assert f"--grpc-restricted-protocol=model-repository:{API_KEY_HEADER}=user-key" in cmd
    assert options.admin_headers == {ADMIN_HEADER: "k3y", API_KEY_HEADER: "user-key"}  # the launcher's reloads
    assert "user-key" not in repr(options)


@pytest.mark.parametrize("host,model_control,key,refused", [
    ("0.0.0.0", True, None, True), ("10.1.2.3", True, None, True), ("example.org", True, None, True),
    ("0.0.0.0", True, "k", False), ("127.0.0.1", True, None, False), ("::1", True, None, False),
    ("localhost", True, None, False), ("0.0.0.0", False, None, False),
])
def test_model_control_on_a_network_needs_an_api_key(host, model_control, key, refused):
    from triton_pooling_server.launch.serve_command import check_exposure

    if refused:
        with pytest.raises(ServerError, match="run code"):
            check_exposure(host, model_control, key)
    else:
        check_exposure(host, model_control, key)


def test_serve_stops_on_hup_and_quit_too_and_help_says_model_control_runs_code(capsys):
    import signal

    from triton_pooling_server.cli import main
    from triton_pooling_server.launch.serve_command import STOP_SIGNALS

    assert {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT} <= set(STOP_SIGNALS)
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "GRANTS CODE EXECUTION" in text and "file overrides" in text and "--api-key" in text


def test_the_gateway_child_gets_the_key_in_its_environment_not_its_command_line(monkeypatch):
    from triton_pooling_server.gateway.settings import API_KEY_ENV
    from triton_pooling_server.launch.gateway_process import GatewayProcess

    monkeypatch.setenv(API_KEY_ENV, "inherited")
    child = GatewayProcess("127.0.0.1:8001", "127.0.0.1", 9000, api_key="s3cret")
    assert child.env[API_KEY_ENV] == "s3cret" and not any("s3cret" in a for a in child.command)
    assert API_KEY_ENV not in GatewayProcess("127.0.0.1:8001", "127.0.0.1", 9000).env, "no key: none inherited"


class _Child:
    def __init__(self, code=None):
        self.code, self.pid = code, 4321

    def poll(self):
        return self.code


class _FakeGateway:
    url = "http://127.0.0.1:9000"

    def __init__(self):
        self.process, self.starts = _Child(), 0

    def start(self):
        self.starts += 1
        self.process = _Child()
        return self


def test_a_dead_gateway_is_restarted_with_backoff_and_given_up_on_when_it_keeps_dying():
    from triton_pooling_server.launch.gateway_keeper import GatewayKeeper

    now = [0.0]
    logged: list[str] = []
    gateway = _FakeGateway()
    keeper = GatewayKeeper(gateway, logged.append, clock=lambda: now[0], backoff=(0.5, 1.0), max_exits=3, window_s=60)
    keeper.check()
    assert gateway.starts == 0 and not logged, "alive: nothing to do"
    gateway.process.code = -9  # kill -9
    keeper.check()
    assert "exited with code -9; restarting it in 0.5 s" in logged[-1]
    now[0] = 0.4
    keeper.check()
    assert gateway.starts == 0, "not before the backoff"
    now[0] = 0.6
    keeper.check()
    assert gateway.starts == 1 and "restarted" in logged[-1]
    gateway.process.code = 1
    now[0] = 1.0
    keeper.check()
    assert "in 1 s" in logged[-1], "the backoff grows"
    now[0] = 2.1
    keeper.check()
    gateway.process.code = 1
    with pytest.raises(ServerError, match="exited 3 times within 60 s .* giving up"):
        keeper.check()
