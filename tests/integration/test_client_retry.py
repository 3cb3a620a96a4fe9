"""Retries: a client call started before the server exists succeeds once it comes up (HTTP, gRPC, async)."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from triton_pooling.async_client import AsyncPoolingClient
from triton_pooling.client import PoolingClient
from triton_pooling.errors import TaskNotServedError
from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_server.builder.config_text import ModelSpec
from triton_pooling_server.launch.triton import ServerOptions, TritonProcess, is_ready
from triton_pooling_contract.tasks import PoolingTask

from support.triton import free_ports, write_model

pytestmark = pytest.mark.integration

TEXTS = ["a server that comes up late", "still answers"]
PATIENT = dict(retries=400, backoff=0.25, max_backoff=1.0)  # ~6 minutes of retrying, for a loaded CI machine


def test_calls_wait_for_a_server_that_comes_up_late(tmp_path, checkpoints):
    repo = tmp_path / "repository"
    write_model(repo, ModelSpec("late_embed", ModelDefinition(PoolingTask.EMBED, str(checkpoints["bert-embed"]))))
    http, grpc, metrics = free_ports(3)
    options = ServerOptions(repo, http_port=http, grpc_port=grpc, metrics_port=metrics)
    results: dict[str, object] = {}

    def sync_call(protocol):
        try:
            with PoolingClient(options.http_url if protocol == "http" else options.grpc_url, protocol, **PATIENT) as c:
                results[protocol] = c.encode(TEXTS, task="embed")
        except Exception as e:  # noqa: BLE001  (reported by the asserts below)
            results[protocol] = e

    def async_call():
        async def run():
            async with AsyncPoolingClient(options.http_url, "http", **PATIENT) as c:
                return await c.encode(TEXTS, task="embed")
        try:
            results["async"] = asyncio.run(run())
        except Exception as e:  # noqa: BLE001
            results["async"] = e

    threads = [threading.Thread(target=sync_call, args=(p,)) for p in ("http", "grpc")]
    threads.append(threading.Thread(target=async_call))
    assert not is_ready(options.http_url)
    for t in threads:
        t.start()
    time.sleep(1.0)  # the calls are now retrying against closed ports
    assert not results
    with TritonProcess(options, log_path=tmp_path / "tritonserver.log"):
        for t in threads:
            t.join(timeout=400)
        embeddings = {key: np.stack([o.outputs.data for o in value]) for key, value in results.items()
                      if not isinstance(value, Exception)}
        assert set(embeddings) == {"http", "grpc", "async"}, results
        np.testing.assert_allclose(embeddings["http"], embeddings["grpc"], atol=1e-6)
        np.testing.assert_allclose(embeddings["async"], embeddings["grpc"], atol=1e-6)
        assert np.allclose(np.linalg.norm(embeddings["grpc"], axis=1), 1.0, atol=1e-5)
        with PoolingClient(options.grpc_url) as client:
            with pytest.raises(TaskNotServedError, match="Unsupported task: 'seq_classify': no model on the server "
                                                         r"serves it; this server serves 'embed' \(models: late_embed\)"):
                client.classify(TEXTS)
