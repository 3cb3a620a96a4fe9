"""One command for the TensorRT path: ensemble layout → ONNX export (parity-checked) → TensorRT engine.

    python -m triton_pooling_server.builder.tensorrt MODEL_DIR --repository DIR [triton-pooling build options]
        [--encoder-platform tensorrt_plan|onnxruntime_onnx|python-onnxruntime] [--opt-batch N] [--opt-tokens N] [--fp16]

Writes <name> (ensemble), <name>_tokenize, <name>_encoder, <name>_head (see triton_pooling_server.builder.tensorrt.layout),
exports <name>_encoder/1/model.onnx and, for tensorrt_plan, builds <name>_encoder/1/model.plan with the profile
min 1x1 / opt / max = (max batch size, max tokens). Without a GPU the engine step refuses (exit status 3) and
leaves the layout and the ONNX graph in place. `python-onnxruntime` runs the same graph on CPU in a Python model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import build_engine, export_onnx

from triton_pooling_server.builder import build_command
from triton_pooling_server.builder import BuildError, inspect_checkpoint, resolve, write_model_folder
from triton_pooling_server.builder.resolution import CHECKPOINT_FOLDER
from triton_pooling_server.builder.tensorrt.layout import (
    ENCODER_FILES,
    ENCODER_PLATFORMS,
    optimization_profile,
    step_names,
    tensorrt_files,
)

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="build_tensorrt.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # every `triton-pooling build` option, parsed by the build subcommand's own parser
    build = build_command.add_parser(parser.add_subparsers(dest="command", required=True))
    build.prog, build.description = parser.prog, __doc__
    build.formatter_class = argparse.RawDescriptionHelpFormatter
    build.add_argument("--encoder-platform", choices=ENCODER_PLATFORMS, default="tensorrt_plan")
    build.add_argument("--tolerance", type=float, default=export_onnx.DEFAULT_TOLERANCE)
    build_engine.add_profile_arguments(build)
    return parser.parse_args(["build", *(sys.argv[1:] if argv is None else argv)])


def main(argv=None) -> int:
    args = parse_args(argv)
    args.runtime = "tensorrt"
    request = build_command.request_from_args(args)
    try:
        info = inspect_checkpoint(args.model_dir)
        model = resolve(request, info)  # the tensorrt runtime pins max_tokens in the configs
        max_tokens = model.definition.max_tokens
        profile = optimization_profile(model.definition.max_batch_size, max_tokens, args.opt_batch, args.opt_tokens)
        copy = (info.path, f"{model.spec.name}/{CHECKPOINT_FOLDER}") if args.copy_checkpoint else None
        result = write_model_folder(args.repository, tensorrt_files(model, args.encoder_platform),
                                    checkpoint_copy=copy, force=args.force)
        print(f"{result.status}: ensemble {model.spec.name!r} ({model.spec.task.value}) in {args.repository}")
        version = Path(args.repository) / step_names(model.spec.name)["encoder"] / "1"
        onnx_path = version / ENCODER_FILES["python-onnxruntime"]
        if result.status != "unchanged" or not onnx_path.is_file():
            torch_model = export_onnx.load_model(info.path, model.spec.task)
            export_onnx.export(info.path, model.spec.task, onnx_path, torch_model)
            error = export_onnx.parity(info.path, model.spec.task, onnx_path, torch_model)
            print(f"exported {onnx_path}: ONNX Runtime vs torch max-abs {error:.2e} on a mixed-length batch")
            if error > args.tolerance:
                raise BuildError(f"ONNX graph differs from torch by {error:.2e} > {args.tolerance:.0e}; not serving it")
        if args.encoder_platform == "tensorrt_plan":
            plan = build_engine.build_engine(onnx_path, version / ENCODER_FILES["tensorrt_plan"], profile,
                                             args.fp16, args.workspace_mib)
            print(f"built {plan} (profile min {profile.min} opt {profile.opt} max {profile.max})")
    except build_engine.NoGpuError as e:
        print(f"error: {e}", file=sys.stderr)
        return build_engine.NO_GPU_EXIT
    except (BuildError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
