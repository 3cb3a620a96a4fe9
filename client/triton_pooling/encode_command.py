"""`triton-pooling encode --task TASK [--url URL] [--model NAME] TEXT...`: print results as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import PoolingClientError
from .outputs import SparseEmbeddingOutput
from triton_pooling_contract.tasks import TASK_ALIASES, TASK_NAMES
from .transport import PROTOCOLS


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("encode", help="encode texts with a served pooling model; prints JSON",
                              description="Encode TEXTs (or stdin lines when none are given) and print JSON.")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to encode (default: one per stdin line)")
    p.add_argument("--task", help=f"pooling task: {', '.join(TASK_NAMES + tuple(TASK_ALIASES))} (default: the model's)")
    p.add_argument("--url", default=None, help="server 'host:port' (default localhost:8001 gRPC / :8000 HTTP)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="grpc")
    p.add_argument("--model", default=None, help="model name (default: the model serving --task)")
    p.add_argument("--dimensions", type=int, default=None, help="Matryoshka size (embed / token_embed)")
    p.add_argument("--truncate-prompt-tokens", type=int, default=None, help="keep the last K tokens")
    p.add_argument("--no-activation", dest="use_activation", action="store_const", const=False, default=None,
                   help="raw outputs: no normalization (embed) / no sigmoid-softmax (classify)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .client import PoolingClient  # tritonclient only when encode actually runs

    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        print("error: no TEXT given and stdin is empty", file=sys.stderr)
        return 2
    try:
        with PoolingClient(args.url, args.protocol, timeout=args.timeout) as client:
            outputs = client.encode(texts, task=args.task, model=args.model, dimensions=args.dimensions,
                                    use_activation=args.use_activation,
                                    truncate_prompt_tokens=args.truncate_prompt_tokens, use_tqdm=False)
    except PoolingClientError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    json.dump([_as_json(o) for o in outputs], sys.stdout)
    sys.stdout.write("\n")
    return 0


def _as_json(output) -> dict:
    pooled = output.outputs
    # A sparse model's entries as the gateway's /pooling writes them (a JSON object's keys could not stay ints).
    data = {"indices": pooled.indices.tolist(), "values": pooled.values.tolist()} \
        if isinstance(pooled, SparseEmbeddingOutput) else pooled.data.tolist()
    return {"index": int(output.request_id), "text": output.prompt, "model": output.model,
            "task": output.task.value, "num_tokens": output.num_tokens, "data": data}
