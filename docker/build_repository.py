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


def plan(env: Mapping[str, str], repository: Path, cache: Path) -> list[tuple[str, str, list[str]]]:
    """(task, source, build command) for every MODEL_* variable that is set."""
    runtime = env.get("RUNTIME", "").strip()  # unset: build's choice (see docs/building.md)
    steps = []
    for variable, task in VARIABLES.items():
        source = env.get(variable, "").strip()
        if not source:
            continue
        extra = shlex.split(env.get(f"BUILD_ARGS_{task.upper()}", "")) + shlex.split(env.get("TUNING_ARGS", ""))
        common = [source, "--repository", str(repository), "--task", task, "--name", task, "--copy-checkpoint", *extra]
        if runtime == "tensorrt":
            command = [sys.executable, *BUILD_TENSORRT, *common]
        else:
            command = ["triton-pooling", "build", *common, *(["--runtime", runtime] if runtime else [])]
        steps.append((task, source, command))
    if not steps:
        raise SystemExit(f"set at least one of {', '.join(VARIABLES)} (a hub id or a mounted checkpoint directory)")
    return steps


def fetch(source: str, cache: Path, token: str | None) -> str:
    """A mounted directory as is; otherwise a hub id, downloaded (weights as safetensors) into the cache."""
    if Path(source).is_dir():
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
        command[command.index(source)] = fetch(source, args.cache, os.environ.get("HF_TOKEN"))
        print(f"[{task}] {shlex.join(command)}", flush=True)
        done = subprocess.run(command)
        if done.returncode != 0:
            print(f"[{task}] build failed with exit status {done.returncode}", file=sys.stderr)
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
