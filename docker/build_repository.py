"""The compose `builder` service: build /models from MODEL_EMBED, MODEL_TOKEN_EMBED, MODEL_SEQ_CLASSIFY and
MODEL_TOKEN_CLASSIFY, each a Hugging Face hub id (downloaded into the cache volume) or a mounted directory.

    MODEL_EMBED=BAAI/bge-small-en-v1.5 MODEL_SEQ_CLASSIFY=/checkpoints/my-reranker python3 build_repository.py

Each variable makes one model named after its task (one task per model). BUILD_ARGS_<TASK> adds
`triton-pooling build` flags for that model (e.g. BUILD_ARGS_TOKEN_CLASSIFY="--step-tag-id 151651"); RUNTIME picks
onnx, openvino or onnx_int8 (the exported graph in a lean stub), torch, or tensorrt (GPU hosts:
python -m triton_pooling_server.builder.tensorrt); unset: build's choice (the measured CPU default, torch on GPU hosts). Serving
tuning is build's too: it reads this container's cores and GPUs and divides them among all the models it writes
(docs/performance.md); TUNING_ARGS adds tuning flags to every build, e.g. TUNING_ARGS="--cpus 4" when the triton
service gets fewer cores than the builder sees, or "--profile gpu --gpus 0". Checkpoints are copied into the
repository, so the triton service needs only /models. `--dry-run` prints the commands as JSON.

With no MODEL_* variable set, it builds the embedded default — the four models `make serve` serves (the packaged
all-MiniLM-L6-v2 as `embed` and `token_embed`, the seeded classifiers written first), with the same build flags
(triton_pooling_server.builder.defaults.DEFAULT_BUILDS; TUNING_ARGS and RUNTIME apply to each), the packaged
checkpoint copied in like any other, so the serving image needs no model package. A source may also be
`package:<module>` (a checkpoint shipped inside an installed Python package, as the default's MiniLM is).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Mapping

from triton_pooling_contract.tasks import TASK_NAMES

VARIABLES = {f"MODEL_{task.upper()}": task for task in TASK_NAMES}
BUILD_TENSORRT = ("-m", "triton_pooling_server.builder.tensorrt")  # the ensemble layout, export and engine
SEEDED = ("-m", "triton_pooling_server.builder.seeded")  # the embedded default's seeded checkpoints
DEFAULT_SOURCE = "embedded default"  # the source of the default's steps (nothing to fetch)


def plan(env: Mapping[str, str], repository: Path, cache: Path) -> list[tuple[str, str, list[str]]]:
    """(task, source, build command) for every MODEL_* variable that is set."""
    runtime = env.get("RUNTIME", "").strip()  # unset: build's choice (see docs/building.md)
    tuning = shlex.split(env.get("TUNING_ARGS", ""))
    if not any(env.get(variable, "").strip() for variable in VARIABLES):
        return default_plan(repository, tuning, runtime)
    steps = []
    for variable, task in VARIABLES.items():
        source = env.get(variable, "").strip()
        if not source:
            continue
        extra = shlex.split(env.get(f"BUILD_ARGS_{task.upper()}", "")) + tuning
        common = [source, "--repository", str(repository), "--task", task, "--name", task, "--copy-checkpoint", *extra]
        if runtime == "tensorrt":
            command = [sys.executable, *BUILD_TENSORRT, *common]
        else:
            command = ["triton-pooling", "build", *common, *(["--runtime", runtime] if runtime else [])]
        steps.append((task, source, command))
    return steps


def default_plan(repository: Path, tuning: list[str], runtime: str) -> list[tuple[str, str, list[str]]]:
    """The embedded default: its seeded checkpoints, then `triton-pooling build` of each of its four models."""
    from triton_pooling_server.builder.defaults import DEFAULT_BUILDS, build_argv

    if runtime == "tensorrt":
        raise SystemExit(f"RUNTIME=tensorrt needs the models named: set at least one of {', '.join(VARIABLES)}")
    steps = [("seeded checkpoints", DEFAULT_SOURCE, [sys.executable, *SEEDED, str(repository)])]
    for name, (source, _) in DEFAULT_BUILDS.items():
        extra = [*tuning, *(["--runtime", runtime] if runtime else [])]
        if source.startswith("package:"):
            extra.append("--copy-checkpoint")  # /models holds everything the serving side reads
        steps.append((name, DEFAULT_SOURCE, ["triton-pooling", *build_argv(repository, name, tuple(extra))]))
    return steps


def fetch(source: str, cache: Path, token: str | None) -> str:
    """A mounted directory or a `package:` checkpoint as is; otherwise a hub id, downloaded (weights as safetensors)
    into the cache."""
    if source.startswith("package:") or Path(source).is_dir():
        return source
    from huggingface_hub import snapshot_download

    return snapshot_download(source, cache_dir=str(cache), token=token or None,
                             allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "1_Pooling/*"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", type=Path, default=Path("/models"))
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("HF_HOME", "/cache/huggingface")))
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    steps = plan(os.environ, args.repository, args.cache)
    if args.dry_run:
        print(json.dumps([{"task": t, "source": s, "command": c} for t, s, c in steps], indent=2))
        return 0
    for task, source, command in steps:
        if source != DEFAULT_SOURCE:
            command[command.index(source)] = fetch(source, args.cache, os.environ.get("HF_TOKEN"))
        print(f"[{task}] {shlex.join(command)}", flush=True)
        done = subprocess.run(command)
        if done.returncode != 0:
            print(f"[{task}] build failed with exit status {done.returncode}", file=sys.stderr)
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
