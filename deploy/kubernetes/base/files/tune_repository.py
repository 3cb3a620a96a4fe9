#!/usr/bin/env python3
"""Pin each pooling model's CPU instances and intra-op threads to the pod's CPUs, not the node's.

`triton-pooling build` sizes a model from the host it runs on, and the backend gives every instance the CPUs
of its affinity mask divided by the instance count. In a pod with a CPU limit that mask is usually the whole
node (all its cores, unless the kubelet's static CPU manager pins the pod), so a 2-CPU pod on a 64-core node
would run 64 intra-op threads into a 2-CPU quota and be throttled. docs/performance.md measured the best
setting on 2 cores: 3 single-threaded instances (embed 149 vs 134 texts/s for 2 instances).

    python3 tune_repository.py --repository /models --config-name kubernetes [--instances 3] [--intra-op-threads 1]

Writes `<model>/configs/<config-name>.pbtxt` — a copy of config.pbtxt with `instance_group` count and the
`intra_op_threads` parameter replaced — for each Python-backend model that carries `pooling_task` (ensemble
steps and other models are left alone); tritonserver runs with `--model-config-name=<config-name>` and uses
config.pbtxt wherever no such file exists. config.pbtxt itself is never touched, so `triton-pooling build`
finds its own files unchanged when an init container runs again over the same volume. Idempotent. With
neither setting given (--instances / TUNE_CPU_INSTANCES, --intra-op-threads / TUNE_INTRA_OP_THREADS empty), it
removes the variants it wrote before and changes nothing else.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

POOLING_TASK = re.compile(r'key\s*:\s*"pooling_task"')
PYTHON_BACKEND = re.compile(r'^\s*backend\s*:\s*"python"', re.MULTILINE)
CPU_GROUP = re.compile(r"instance_group\s*\[\s*\{\s*count\s*:\s*\d+\s+kind\s*:\s*KIND_CPU\s*\}\s*\]")
ANY_GROUP = re.compile(r"^\s*instance_group\b", re.MULTILINE)
THREADS = re.compile(r'^\s*parameters\s*\{\s*key\s*:\s*"intra_op_threads"\s*value\s*\{[^}]*\}\s*\}\s*\n?', re.MULTILINE)
MARK = "# written by deploy/kubernetes tune_repository.py from config.pbtxt\n"


def _optional_int(value: str | None, name: str) -> int | None:
    if value is None or not str(value).strip():
        return None
    number = int(value)
    if number < 1:
        raise SystemExit(f"{name} must be at least 1, got {number}")
    return number


def tuned(text: str, instances: int | None, threads: int | None) -> str:
    """config.pbtxt text with the instance count and intra-op threads replaced."""
    if instances is not None:
        group = f"instance_group [ {{ count: {instances} kind: KIND_CPU }} ]"
        if CPU_GROUP.search(text):
            text = CPU_GROUP.sub(group, text, count=1)
        elif not ANY_GROUP.search(text):  # no group: Triton's default; a GPU group is left as it is
            text = text.rstrip("\n") + "\n" + group + "\n"
    if threads is not None:
        text = THREADS.sub("", text).rstrip("\n") + "\n"
        text += f'parameters {{ key: "intra_op_threads" value {{ string_value: "{threads}" }} }}\n'
    return text


def tune(repository: Path, config_name: str, instances: int | None, threads: int | None) -> list[str]:
    """Write or remove the variant of every pooling model; one line per model saying what was done."""
    done = []
    for config in sorted(repository.glob("*/config.pbtxt")):
        text = config.read_text(encoding="utf-8")
        variant = config.parent / "configs" / f"{config_name}.pbtxt"
        if not (POOLING_TASK.search(text) and PYTHON_BACKEND.search(text)):
            continue
        if instances is None and threads is None:
            if variant.is_file() and variant.read_text(encoding="utf-8").startswith(MARK):
                variant.unlink()
                done.append(f"{config.parent.name}: removed {variant.relative_to(repository)}")
            continue
        variant.parent.mkdir(exist_ok=True)
        variant.write_text(MARK + tuned(text, instances, threads), encoding="utf-8")
        done.append(f"{config.parent.name}: {variant.relative_to(repository)} (instances {instances or 'as built'}, "
                    f"intra_op_threads {threads or 'as built'})")
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", type=Path, default=Path("/models"))
    parser.add_argument("--config-name", default="kubernetes")
    parser.add_argument("--instances", default=os.environ.get("TUNE_CPU_INSTANCES"))
    parser.add_argument("--intra-op-threads", default=os.environ.get("TUNE_INTRA_OP_THREADS"))
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.config_name):
        raise SystemExit(f"--config-name must be a plain file name, got {args.config_name!r}")
    instances = _optional_int(args.instances, "instances")
    threads = _optional_int(args.intra_op_threads, "intra-op-threads")
    if not args.repository.is_dir():
        raise SystemExit(f"{args.repository} is not a directory")
    for line in tune(args.repository, args.config_name, instances, threads) or ["no pooling model to tune"]:
        print(f"tune: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
