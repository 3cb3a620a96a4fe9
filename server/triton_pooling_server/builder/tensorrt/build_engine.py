"""Build a TensorRT engine (model.plan) from an exported encoder graph, with one optimization profile.

    python -m triton_pooling_server.builder.tensorrt.build_engine model.onnx --plan model.plan --max-batch-size 64 --max-tokens 512 \\
        [--opt-batch 16] [--opt-tokens 128] [--fp16] [--workspace-mib 4096]

Every input (input_ids, attention_mask[, token_type_ids]) gets the same [batch, tokens] profile:
min 1x1, opt as given (default: a quarter of the batch, 128 tokens), max = what the Triton model accepts.
Needs an NVIDIA GPU and the `tensorrt` Python package (present in the NGC Triton image; on PyPI it pulls
multi-GB CUDA wheels, so it is never a default dependency). Without a GPU it refuses with exit status 3.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path

from triton_pooling_server.builder import BuildError
from triton_pooling_server.builder.tensorrt.layout import Profile, optimization_profile

NO_GPU_EXIT = 3


class NoGpuError(RuntimeError):
    """The engine cannot be built on this host."""


def gpu_unavailable_reason() -> str | None:
    """Why no engine can be built here, or None. Asks the CUDA driver directly (no torch needed)."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no NVIDIA driver on this host (libcuda.so.1 cannot be loaded)"
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return "the NVIDIA driver reports no usable GPU"
    return None


def require_gpu() -> None:
    reason = gpu_unavailable_reason()
    if reason is not None:
        raise NoGpuError(f"cannot build a TensorRT engine: {reason}. TensorRT compiles kernels for the GPU that "
                         "will run them: run this on the GPU host (e.g. RUNTIME=tensorrt `docker compose -f "
                         "docker-compose.yml -f docker-compose.gpu.yml run --rm builder`); until then serve the "
                         "torch or onnx runtime")
    try:
        import tensorrt  # noqa: F401
    except ImportError as e:
        raise NoGpuError("cannot build a TensorRT engine: the `tensorrt` Python package is not installed "
                         "(it ships in the NGC Triton image; elsewhere install the `tensorrt` extra)") from e


def build_engine(onnx_path: Path, plan_path: Path, profile: Profile, fp16: bool = False,
                 workspace_mib: int = 4096) -> Path:
    require_gpu()
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    shapes = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        shapes.set_shape(network.get_input(i).name, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(shapes)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BuildError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(bytes(plan))
    return plan_path


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--opt-batch", type=int, help="batch size TensorRT tunes for (default: max / 4)")
    parser.add_argument("--opt-tokens", type=int, help="tokens per text TensorRT tunes for (default: 128)")
    parser.add_argument("--fp16", action="store_true", help="allow fp16 kernels (check parity after)")
    parser.add_argument("--workspace-mib", type=int, default=4096)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("onnx", type=Path)
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--max-batch-size", type=int, required=True)
    parser.add_argument("--max-tokens", type=int, required=True)
    add_profile_arguments(parser)
    args = parser.parse_args(argv)
    try:
        profile = optimization_profile(args.max_batch_size, args.max_tokens, args.opt_batch, args.opt_tokens)
        build_engine(args.onnx, args.plan, profile, args.fp16, args.workspace_mib)
    except NoGpuError as e:
        print(f"error: {e}", file=sys.stderr)
        return NO_GPU_EXIT
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.plan} (profile min {profile.min} opt {profile.opt} max {profile.max})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
