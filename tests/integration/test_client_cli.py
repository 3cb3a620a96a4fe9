"""`triton-pooling encode` against the session tritonserver: in-process and once as a subprocess."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from triton_pooling_server.cli import main
from triton_pooling.client import PoolingClient

pytestmark = pytest.mark.integration

TEXTS = ["Hello world.", "Paris is the capital of France."]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_encode_prints_json_equal_to_the_client(triton_server, protocol, capsys):
    url = triton_server.options.http_url if protocol == "http" else triton_server.options.grpc_url
    assert main(["encode", "--task", "embed", "--url", url, "--protocol", protocol, "--dimensions", "16", *TEXTS]) == 0
    printed = json.loads(capsys.readouterr().out)
    with PoolingClient(url, protocol) as client:
        expected = client.encode(TEXTS, task="embed", dimensions=16)
    assert [p["text"] for p in printed] == TEXTS and [p["index"] for p in printed] == [0, 1]
    assert [p["num_tokens"] for p in printed] == [o.num_tokens for o in expected]
    np.testing.assert_allclose([p["data"] for p in printed], [o.outputs.data for o in expected], atol=1e-6)


def test_encode_reads_stdin_and_reports_errors(triton_server, capsys, monkeypatch):
    url = triton_server.options.grpc_url
    monkeypatch.setattr(sys, "stdin", io.StringIO("first line\n\nsecond line\n"))
    assert main(["encode", "--task", "classify", "--model", "bert_classifier", "--url", url]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [p["text"] for p in printed] == ["first line", "second line"]
    assert all(p["task"] == "seq_classify" and len(p["data"]) == 3 for p in printed)
    assert main(["encode", "--task", "embedding", "--url", url, "x"]) == 1
    assert "valid tasks: 'embed'" in capsys.readouterr().err
    assert main(["encode", "--task", "embed", "--model", "bert_ner", "--url", url, "x"]) == 1
    assert "model 'bert_ner' serves 'token_classify', not 'embed'" in capsys.readouterr().err


def test_console_script_in_a_subprocess(triton_server):
    done = subprocess.run(
        [sys.executable, "-m", "triton_pooling_server.cli", "encode", "--task", "token_classify", "--model", "bert_ner",
         "--url", triton_server.options.http_url, "--protocol", "http", "Hello world."],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert row["model"] == "bert_ner" and len(row["data"]) == row["num_tokens"] and len(row["data"][0]) == 5
