"""The builder plans for the triton container's memory (TUNING_ARGS --memory-mib = its limit) in every overlay, as it
plans for its CPUs: the init container's own limit is not what the stubs get."""

from __future__ import annotations

import shlex

import pytest

from unit.kubernetes_render import TARGETS, config_map, container, quantity, render

pytestmark = pytest.mark.slow  # runs kubectl kustomize in subprocesses


@pytest.mark.parametrize("target", TARGETS)
def test_builder_plans_for_the_triton_containers_memory_limit(target):
    docs = render(target)
    limit = quantity(container(docs, "triton")["resources"]["limits"]["memory"])
    args = shlex.split(config_map(docs, "triton-pooling-models")["data"]["TUNING_ARGS"])
    values = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--memory-mib"]
    assert values == [str(int(limit) >> 20)], (args, limit)
