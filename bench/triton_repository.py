"""The model repository the benchmark serves: the project's shipped default four, copied, with
optional serving knobs changed (queue delay, instance count, extra parameters) for experiments."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

from triton_pooling_server.build.model_config import preferred_batch_line

ROOT = Path(__file__).resolve().parent.parent
TASK_MODELS = ("embed", "token_embed", "seq_classify", "token_classify")


@dataclasses.dataclass(frozen=True)
class ServingKnobs:
    queue_delay_us: int | None = None  # None: as shipped
    instance_count: int | None = None
    parameters: tuple[tuple[str, str], ...] = ()  # extra config parameters, e.g. (("runtime", "torch"),)
    response_cache: bool = False  # the server must then be started with a cache size
    preferred_batch_sizes: tuple[int, ...] = ()  # () : as shipped


def build_repository(target: Path, models: tuple[str, ...] = TASK_MODELS, knobs: ServingKnobs = ServingKnobs()) -> Path:
    from triton_pooling_backend.seeded import prepare_default_repository

    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in models:
        shutil.copytree(ROOT / "model_repository" / name, target / name,
                        ignore=shutil.ignore_patterns("checkpoint", "__pycache__"))
        config = target / name / "config.pbtxt"
        config.write_text(apply_knobs(config.read_text(), knobs))
    prepare_default_repository(target)
    for folder in target.iterdir():  # it seeds checkpoints for all four; keep only the models asked for
        if folder.name not in models:
            shutil.rmtree(folder)
    return target


def apply_knobs(config: str, knobs: ServingKnobs) -> str:
    if knobs.queue_delay_us is not None:
        config = re.sub(r"max_queue_delay_microseconds: \d+", f"max_queue_delay_microseconds: {knobs.queue_delay_us}",
                        config)
    if knobs.instance_count is not None:
        config = re.sub(r"count: \d+", f"count: {knobs.instance_count}", config)
    if knobs.preferred_batch_sizes:
        config = re.sub(r"  preferred_batch_size: \[[^\]]*\]\n", "", config)
        line = preferred_batch_line(knobs.preferred_batch_sizes)
        config = config.replace("dynamic_batching {\n", "dynamic_batching {\n" + line)
    for key, value in knobs.parameters:
        config += f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}\n'
    if knobs.response_cache and "response_cache" not in config:
        config += "response_cache { enable: true }\n"
    return config
