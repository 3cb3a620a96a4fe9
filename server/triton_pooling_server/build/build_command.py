"""`triton-pooling build MODEL_DIR --repository DIR`: a Hugging Face checkpoint → a per-task Triton model.

Reads only the checkpoint's JSON files (no torch): the served model loads the weights itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import BuildError, BuildRequest, inspect_checkpoint, resolve, write_model_folder
from .layout import model_files, stale_folders
from .resolution import CHECKPOINT_FOLDER, DTYPES, RUNTIMES
from .model_config import DEFAULT_MAX_BATCH_SIZE
from triton_pooling_contract.tasks import TASK_ALIASES, TASK_NAMES, PoolingType


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("build", help="turn a Hugging Face checkpoint directory into a per-task Triton model",
                              description=__doc__)
    p.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="Hugging Face checkpoint directory")
    p.add_argument("--repository", type=Path, required=True, help="Triton model repository to write into")
    p.add_argument("--task", choices=TASK_NAMES + tuple(TASK_ALIASES),
                   help="pooling task (default: from the architecture, as vLLM; 'classify' = seq_classify)")
    p.add_argument("--name", help="model name (default: the task name)")
    p.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE)
    p.add_argument("--pooling-type", type=str.upper, choices=[t.value for t in PoolingType],
                   help="override the sentence-transformers / architecture pooling")
    p.add_argument("--use-activation", choices=("true", "false"),
                   help="normalize (embed) / sigmoid-softmax (classify) by default")
    p.add_argument("--max-tokens", type=int, help="token limit (default: the checkpoint's)")
    p.add_argument("--dtype", choices=DTYPES)
    p.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="torch or onnx (embed/token_embed): what the Python backend runs, default: its own choice; "
                        "tensorrt: an ensemble around a TensorRT engine (then run build_scripts/build_tensorrt.py)")
    p.add_argument("--step-tag-id", type=int, help="PRM step token id (token_classify with STEP pooling)")
    p.add_argument("--returned-token-ids", type=_int_list, help="STEP pooling: label columns to return, e.g. 1 or 0,1")
    p.add_argument("--copy-checkpoint", action="store_true",
                   help=f"copy the checkpoint into <name>/{CHECKPOINT_FOLDER} (a self-contained repository)")
    p.add_argument("--allow-unsafe-weights", action="store_true", help="serve pickled .bin weights")
    p.add_argument("--force", action="store_true", help="replace a different model of the same name")
    p.set_defaults(run=run)
    return p


def request_from_args(args: argparse.Namespace) -> BuildRequest:
    return BuildRequest(
        checkpoint=args.model_dir, task=args.task, name=args.name, max_batch_size=args.max_batch_size,
        pooling_type=args.pooling_type, max_tokens=args.max_tokens, dtype=args.dtype, runtime=args.runtime,
        use_activation=None if args.use_activation is None else args.use_activation == "true",
        step_tag_id=args.step_tag_id, returned_token_ids=args.returned_token_ids,
        copy_checkpoint=args.copy_checkpoint, allow_unsafe_weights=args.allow_unsafe_weights,
    )


def run(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    try:
        info = inspect_checkpoint(args.model_dir)
        model = resolve(request, info)
        copy = (info.path, f"{model.spec.name}/{CHECKPOINT_FOLDER}") if args.copy_checkpoint else None
        files = model_files(model)
        result = write_model_folder(args.repository, files, checkpoint_copy=copy, force=args.force,
                                    stale=stale_folders(model, files))
    except (BuildError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in model.decisions:
        print(f"  {line}")
    print(f"{result.status}: model {model.spec.name!r} ({model.spec.task.value}, runtime {model.runtime}) in "
          f"{', '.join(str(f) for f in result.folders)}")
    if model.runtime == "tensorrt":
        print(f"next, on the GPU host: python build_scripts/build_tensorrt.py {info.path} --repository "
              f"{args.repository} with the same options (exports the ONNX graph, builds the engine)")
    return 0


def _int_list(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None
