from pathlib import Path

import pytest

from triton_pooling_server.builder.defaults import DEFAULT_BUILDS, SEEDED, render_defaults
from triton_pooling_contract.definition import ModelDefinition
from triton_pooling_contract.parameters import InstanceKind
from triton_pooling_server.builder.config_text import ModelSpec, render_config, render_model_py
from triton_pooling_server.builder.tuning import REFERENCE_HOST_CPUS, Host
from triton_pooling_contract.tasks import PoolingTask, PoolingType

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def defaults_written_by_build(tmp_path_factory):
    """What `triton-pooling build` writes for the four defaults on the reference host (2 cores, no GPU)."""
    from triton_pooling_server.builder.seeded import prepare_default_repository

    repo = tmp_path_factory.mktemp("defaults")
    prepare_default_repository(repo, artifacts=False)
    return render_defaults(repo, Host(REFERENCE_HOST_CPUS, ()))


@pytest.mark.parametrize("name", list(DEFAULT_BUILDS))
def test_shipped_repository_is_what_build_writes_on_the_reference_host(defaults_written_by_build, name):
    for rel in (f"{name}/config.pbtxt", f"{name}/1/model.py"):
        assert (ROOT / "model_repository" / rel).read_text() == defaults_written_by_build[rel], rel
    config = defaults_written_by_build[f"{name}/config.pbtxt"]
    assert "instance_group [ { count: 1 kind: KIND_CPU } ]" in config  # 4 models share 2 cores: 0.5 each
    assert 'key: "intra_op_threads" value { string_value: "1" }' in config
    assert 'key: "runtime" value { string_value: "' in config
    if DEFAULT_BUILDS[name][0].endswith(SEEDED):
        assert 'key: "checkpoint" value { string_value: "checkpoint" }' in config  # relative: the repository can move


def test_config_has_contract_essentials():
    text = render_config(ModelSpec("m", ModelDefinition(PoolingTask.TOKEN_EMBED, "/ckpt", pooling_type=PoolingType.ALL)))
    for needle in ['name: "m"', "max_batch_size: 64", "dynamic_batching", 'name: "TOKEN_EMBEDDINGS"',
                   "dims: [ -1, -1 ]", 'key: "pooling_task" value { string_value: "token_embed" }',
                   'name: "INPUT_IDS" data_type: TYPE_INT64 dims: [ -1 ] optional: true allow_ragged_batch: true']:
        assert needle in text


def test_preferred_batch_sizes_are_rendered_into_the_batcher():
    text = render_config(ModelSpec("m", ModelDefinition(PoolingTask.EMBED, "/ckpt"), preferred_batch_sizes=(8, 16)))
    assert "dynamic_batching {\n  preferred_batch_size: [ 8, 16 ]\n  max_queue_delay_microseconds: 0\n" in text
    assert "preferred_batch_size" not in render_config(ModelSpec("m", ModelDefinition(PoolingTask.EMBED, "/ckpt")))


def test_gpu_instances_name_their_devices():
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    text = render_config(ModelSpec("m", ModelDefinition(PoolingTask.EMBED, "/ckpt"), instance_count=2, instance_kind=InstanceKind.GPU,
                                   gpus=(0, 1), tuning_note="2 instances per GPU"))
    assert "instance_group [ { count: 2 kind: KIND_GPU gpus: [ 0, 1 ] } ]" in text
    config = text_format.Parse(text, model_config_pb2.ModelConfig())  # what Triton reads
    (group,) = config.instance_group
    assert (group.count, group.kind, list(group.gpus)) == (2, model_config_pb2.ModelInstanceGroup.KIND_GPU, [0, 1])
