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
