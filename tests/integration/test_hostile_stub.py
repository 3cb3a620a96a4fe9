"""Inputs inside the documented limits that used to take a stub down, on a real server: a stub's cost per request
is bounded before the expensive work, and an engine failure fails only the request that caused it.

- 16 texts of 2 MiB in one raw request: refused (INVALID_ARG) from each text's head, in seconds, with the stub's
  memory barely moving, while ordinary requests keep being answered;
- a RoBERTa-family checkpoint's usable positions (130 positions, padding index 0: 129 tokens) decide its token
  limit, so a 130-token text is INVALID_ARG naming 129, never an engine INTERNAL, and its batch-mates succeed;
- chunked processing refuses a prompt over its max_embed_len.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from triton_pooling_server.cli import main
from triton_pooling_server.launch.stubs import rss_bytes, stub_pids

from support.raw import client, make_inputs
from support.triton import running_triton

pytestmark = pytest.mark.integration
HUGE = "a " * 1048576  # 2 MiB: tokenized whole, ~0.5 GB and seconds each


@pytest.fixture(scope="module")
def server(tmp_path_factory, checkpoints, minilm_path):
    from support.checkpoints import make_checkpoint

    root = tmp_path_factory.mktemp("hostile_stub")
    repo = root / "repository"
    roberta = make_checkpoint("roberta-seq-2", root / "roberta", seed=11)  # 130 positions, pad_token_id 0
    assert main(["build", str(roberta), "--repository", str(repo), "--name", "roberta", "--instances", "1"]) == 0
    assert main(["build", str(minilm_path), "--repository", str(repo), "--name", "embed", "--instances", "1"]) == 0
    assert main(["build", str(minilm_path), "--repository", str(repo), "--name", "chunked", "--instances", "1",
                 "--max-tokens", "32", "--enable-chunked-processing"]) == 0
    config = repo / "chunked" / "config.pbtxt"
    config.write_text(config.read_text() + 'parameters { key: "max_embed_len" value { string_value: "96" } }\n')
    with running_triton(repo, root / "tritonserver.log") as triton:
        yield triton


def _stub_rss(server, model: str) -> int:
    return sum(rss_bytes(pid) for pid in stub_pids(server.process.pid, model))


def test_sixteen_two_megabyte_texts_are_refused_fast_and_lean(server):
    grpc = client("grpc", server)
    before = _stub_rss(server, "embed")
    errors, answered, stop = [], [], threading.Event()

    def ordinary():
        mate = client("grpc", server)
        while not stop.is_set():
            try:
                mate.infer("embed", make_inputs("grpc", ["an ordinary request"]))
                answered.append(1)
            except Exception as e:  # any failure of a well-formed request is the bug
                errors.append(e)

    thread = threading.Thread(target=ordinary)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(InferenceServerException, match=r"TEXT\[0\] has more than 256 tokens; this model takes at most "
                                                           r"256"):
            grpc.infer("embed", make_inputs("grpc", [HUGE] * 16), client_timeout=60)
        elapsed = time.monotonic() - started
        peak = _stub_rss(server, "embed")
    finally:
        stop.set()
        thread.join()
    print(f"16 x 2 MiB refused in {elapsed:.2f} s; stub RSS {before / 2**20:.0f} -> {peak / 2**20:.0f} MiB; "
          f"{len(answered)} ordinary requests answered meanwhile, {len(errors)} failed")
    assert elapsed <= 15, elapsed
    assert peak - before < 300 * 1024 * 1024, (before, peak)  # the 32 MiB request itself, not a GB of tokens
    assert not errors and answered, (errors[:3], len(answered))


def test_roberta_positions_bound_the_token_limit_and_batch_mates_survive(server):
    grpc = client("grpc", server)
    ok = "word"
    too_long = " ".join(["word"] * 128)  # 128 words + <s> </s> = 130 tokens: one past the 129 usable positions
    with pytest.raises(InferenceServerException, match=r"^\[StatusCode.INVALID_ARGUMENT\] TEXT\[0\] has 130 tokens; this "
                                                       r"model takes at most 129"):
        grpc.infer("roberta", make_inputs("grpc", [too_long]))
    results, failures = [], []

    def send(text):
        try:
            results.append(client("grpc", server).infer("roberta", make_inputs("grpc", [text])).as_numpy("SCORES"))
        except InferenceServerException as e:
            failures.append(str(e))

    threads = [threading.Thread(target=send, args=(t,)) for t in [too_long] + [ok] * 6]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and len(failures) == 1, failures
    assert "INTERNAL" not in failures[0] and "at most 129" in failures[0], failures[0]
    assert all(np.isfinite(r).all() for r in results)


def test_chunked_processing_caps_a_prompt_at_max_embed_len(server):
    grpc = client("grpc", server)
    fits = " ".join(["word"] * 80)  # 82 tokens: 3 windows of 32, under 96
    assert grpc.infer("chunked", make_inputs("grpc", [fits])).as_numpy("NUM_TOKENS")[0, 0] == 82
    with pytest.raises(InferenceServerException, match=r"has 122 tokens; this model chunks prompts of at most 96 "
                                                       r"tokens \(max_embed_len\)"):
        grpc.infer("chunked", make_inputs("grpc", [" ".join(["word"] * 120)]))
