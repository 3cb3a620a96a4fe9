"""When the serve supervisor calls a model's stub dead: vanished, unreplaced, not unloaded, past the grace."""

from __future__ import annotations

import types

import pytest

from triton_pooling_server.launch import supervisor as supervisor_module
from triton_pooling_server.launch.stubs import Stub
from triton_pooling_server.launch.supervisor import Supervisor


class FakeWorld:
    """The stubs /proc would show, the models the server says are loaded, and the clock."""

    def __init__(self, monkeypatch):
        self.stubs: list[Stub] = []
        self.loaded: set[str] | None = {"m"}
        self.now = 0.0
        monkeypatch.setattr(supervisor_module, "stubs", lambda pid: list(self.stubs))
        monkeypatch.setattr(supervisor_module.time, "monotonic", lambda: self.now)
        server = types.SimpleNamespace(process=types.SimpleNamespace(pid=1, poll=lambda: None))
        self.supervisor = Supervisor(server, grace_s=10)
        monkeypatch.setattr(self.supervisor, "_loaded_models", lambda: self.loaded)

    def at(self, t: float, *pids: int, model: str = "m") -> list[str]:
        self.now = t
        self.stubs = [Stub(p, model, f"region_{p}") for p in pids]
        return self.supervisor.dead_models()


@pytest.fixture
def world(monkeypatch):
    return FakeWorld(monkeypatch)


def test_a_stub_that_vanishes_unreplaced_is_dead_after_the_grace(world):
    assert world.at(0, 11) == []
    assert world.at(1) == []
    assert world.at(10.5) == []
    assert world.at(11.5) == ["m"]


def test_a_stub_replaced_by_a_newer_one_is_not_dead(world):
    world.at(0, 11)  # config auto-complete stub
    world.at(1)  # it exits ...
    world.at(2, 12)  # ... and the instance stub starts
    assert world.at(30, 12) == []


def test_a_reload_that_replaces_the_old_instance_is_not_a_death(world):
    world.at(0, 11)
    world.at(5, 11, 12)
    assert world.at(30, 12) == []


def test_a_new_stub_killed_while_the_old_one_serves_is_dead(world):
    world.at(0, 11)
    world.at(5, 11, 12)  # a reload starts a new stub ...
    world.at(6, 11)  # ... which is killed
    assert world.at(17, 11) == ["m"]


def test_a_model_unloaded_on_purpose_is_not_dead(world):
    world.at(0, 11)
    world.loaded = set()
    assert world.at(1) == []
    assert world.at(30) == []


def test_before_the_server_can_say_what_is_loaded_a_vanished_stub_counts(world):
    world.loaded = None  # starting up: no API yet
    world.at(0, 11)
    assert world.at(1) == []
    assert world.at(12) == ["m"]
