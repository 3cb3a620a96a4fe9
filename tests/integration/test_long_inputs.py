"""Long inputs on the real server: vLLM's chunked processing for embed (against transformers computed by
hand, chunk by chunk), and TRUNCATE_PROMPT_TOKENS on a megabyte text (exact, and refused clearly when it
would keep no text). Both models are all-MiniLM-L6-v2 built with `triton-pooling build`, with a 32-token
window so that a paragraph spans several chunks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tritonclient.utils import InferenceServerException

from triton_pooling_server.cli import main
from triton_pooling_contract.tasks import Tensor

from support import reference as ref
from support.raw import PROTOCOLS, infer
from support.triton import running_triton

pytestmark = pytest.mark.integration
WINDOW = 32
TOL = 1e-5
LONG = ("Triton serves pooling models one task per model. " * 9).strip()  # ~90 tokens: 3 chunks of 32
SHORT = ["Hello world.", "Paris is the capital of France."]


@pytest.fixture(scope="module")
def server(tmp_path_factory, minilm_path):
    root = tmp_path_factory.mktemp("long_inputs")
    repo = root / "repository"
    common = [str(minilm_path), "--repository", str(repo), "--max-tokens", str(WINDOW), "--instances", "1",
              "--matryoshka-dimensions", "64"]  # the DIMENSIONS case below
    assert main(["build", *common, "--name", "chunked", "--enable-chunked-processing"]) == 0
    assert main(["build", *common, "--name", "windowed"]) == 0
    with running_triton(repo, root / "tritonserver.log") as triton:
        yield triton


@torch.inference_mode()
def chunked_reference(path, text: str) -> tuple[np.ndarray, int]:
    """vLLM's rule by hand: the prompt's ids (special tokens included) in consecutive chunks of WINDOW, each
    encoded alone, MEAN-pooled and L2-normalized, then averaged weighted by chunk length."""
    ids = ref.encode(path, text)["input_ids"][0]
    model = ref._model(str(path), "AutoModel")
    vectors, weights = [], []
    for start in range(0, len(ids), WINDOW):
        chunk = ids[start:start + WINDOW].unsqueeze(0)
        states = model(input_ids=chunk, attention_mask=torch.ones_like(chunk)).last_hidden_state[0]
        vectors.append(torch.nn.functional.normalize(states.mean(0), dim=-1).numpy().astype(np.float64))
        weights.append(chunk.shape[1])
    return np.average(np.stack(vectors), axis=0, weights=weights), len(ids)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_prompt_longer_than_the_window_is_chunked_as_vllm_does(server, minilm_path, protocol):
    expected, n_tokens = chunked_reference(minilm_path, LONG)
    assert n_tokens > 2 * WINDOW, "the text must span several chunks"
    out = infer(protocol, server, "chunked", [LONG])
    np.testing.assert_allclose(out[Tensor.EMBEDDING][0], expected, atol=TOL)
    assert int(out[Tensor.NUM_TOKENS][0][0]) == n_tokens, "NUM_TOKENS reports the whole prompt"


def test_chunked_options_apply_per_chunk(server, minilm_path):
    ids = ref.encode(minilm_path, LONG)["input_ids"][0]
    out = infer("grpc", server, "chunked", [LONG], DIMENSIONS=64, USE_ACTIVATION=False)
    model = ref._model(str(minilm_path), "AutoModel")
    with torch.inference_mode():
        parts = [ids[s:s + WINDOW].unsqueeze(0) for s in range(0, len(ids), WINDOW)]
        raw = [model(input_ids=c, attention_mask=torch.ones_like(c)).last_hidden_state[0].mean(0)[:64].numpy()
               for c in parts]
    expected = np.average(np.stack(raw).astype(np.float64), axis=0, weights=[c.shape[1] for c in parts])
    np.testing.assert_allclose(out[Tensor.EMBEDDING][0], expected, atol=TOL)


def test_short_texts_are_unchanged_by_chunking(server, minilm_path):
    chunked = infer("http", server, "chunked", SHORT)[Tensor.EMBEDDING]
    windowed = infer("http", server, "windowed", SHORT)[Tensor.EMBEDDING]
    np.testing.assert_array_equal(chunked, windowed)
    for row, text in enumerate(SHORT):
        np.testing.assert_allclose(chunked[row], ref.embedding(minilm_path, text), atol=TOL)


def test_without_chunking_a_long_prompt_is_refused_naming_the_ways_out(server):
    with pytest.raises(InferenceServerException) as excinfo:
        infer("http", server, "windowed", [LONG])
    message = str(excinfo.value)
    assert f"takes at most {WINDOW}" in message and "TRUNCATE_PROMPT_TOKENS" in message, message
    assert "--enable-chunked-processing" in message, message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_megabyte_text_truncated_to_its_last_tokens_is_exact(server, minilm_path, protocol):
    text = " ".join(f"sentence {i} of a very long document about pooling." for i in range(20_000))
    assert len(text.encode()) > 1_000_000
    out = infer(protocol, server, "windowed", [text], TRUNCATE_PROMPT_TOKENS=16)
    np.testing.assert_allclose(out[Tensor.EMBEDDING][0], ref.embedding(minilm_path, text, truncate=16), atol=TOL)
    assert int(out[Tensor.NUM_TOKENS][0][0]) == 16


def test_truncating_below_the_special_tokens_is_refused_naming_the_minimum(server):
    with pytest.raises(InferenceServerException) as excinfo:
        infer("grpc", server, "windowed", ["a text"], TRUNCATE_PROMPT_TOKENS=2)
    message = str(excinfo.value)
    assert "TRUNCATE_PROMPT_TOKENS[0] is 2" in message and "2 special tokens" in message, message
    assert "at least 3" in message, message
    ok = infer("grpc", server, "windowed", ["a text"], TRUNCATE_PROMPT_TOKENS=3)
    assert int(ok[Tensor.NUM_TOKENS][0][0]) == 3
