"""The one owner of serving tuning: instances, threads, devices and batcher from the host or the flags, one core
budget per repository, and a build that re-divides it among the models already there."""

from __future__ import annotations

import pytest

from triton_pooling_server.builder import BuildError
from triton_pooling_server.builder.tuning import (
    GPU_INSTANCES_PER_DEVICE, GPU_MAX_BATCH_TOKENS, Host, Profile, ServingPlan, TuningFlags, detect_gpus,
    plan_model, plan_repository,
)


def _shape(plan: ServingPlan) -> tuple:
    return plan.kind, plan.instances, plan.threads


@pytest.mark.parametrize("cpus, expected", [
    (1, ("KIND_CPU", 2, 1)),     # one core: a spare instance covers the gap between batches
    (2, ("KIND_CPU", 3, 1)),     # measured on the reference host: 3 x 1 beat 2 x 1
    (4, ("KIND_CPU", 5, 1)),
    (8, ("KIND_CPU", 9, 1)),
    (16, ("KIND_CPU", 9, 2)),    # past 8 cores instances get wider, not more numerous
    (64, ("KIND_CPU", 9, 8)),
])
def test_a_model_alone_gets_the_host(cpus, expected):
    plan = plan_model(Host(cpus))
    assert _shape(plan) == expected
    assert plan.queue_delay_us == 0 and plan.preferred_batch_sizes == () and plan.max_batch_tokens is None
    assert plan.total_instances * plan.threads <= cpus + plan.threads  # the budget, plus one spare instance


@pytest.mark.parametrize("cpus, models, expected", [
    (2, 4, ("KIND_CPU", 1, 1)),   # the shipped repository on the reference host: 0.5 core each
    (2, 2, ("KIND_CPU", 2, 1)),
    (16, 4, ("KIND_CPU", 5, 1)),  # a 16-core host serving the four defaults: 20 threads, not 62
    (64, 2, ("KIND_CPU", 9, 4)),
])
def test_models_of_a_repository_share_one_core_budget(cpus, models, expected):
    plans = plan_repository(Host(cpus), {f"m{i}": TuningFlags() for i in range(models)})
    assert {_shape(p) for p in plans.values()} == {expected}
    threads = sum(p.total_instances * p.threads for p in plans.values())
    assert threads <= max(cpus + models * expected[2], models)


def test_pinned_models_take_their_cores_first():
    plans = plan_repository(Host(8), {"pinned": TuningFlags(instances=2, threads=2), "a": TuningFlags(),
                                      "b": TuningFlags(instances=1)})
    assert _shape(plans["pinned"]) == ("KIND_CPU", 2, 2)
    assert _shape(plans["a"]) == ("KIND_CPU", 3, 1)  # (8 - 4) / 2 = 2 cores each
    assert _shape(plans["b"]) == ("KIND_CPU", 1, 1)  # instances pinned, threads by the rule
    assert "--instances and --threads" in plans["pinned"].reason and "8 cores shared by 3" in plans["a"].reason


def test_flags_override_the_rule():
    plan = plan_model(Host(2), TuningFlags(instances=4, threads=2, queue_delay_us=500, preferred_batch_sizes=(8, 16)))
    assert (plan.instances, plan.threads, plan.queue_delay_us, plan.preferred_batch_sizes) == (4, 2, 500, (8, 16))
    with pytest.raises(BuildError, match=r"--instances is 0; expected an integer >= 1"):
        TuningFlags(instances=0)
    with pytest.raises(BuildError, match=r"--queue-delay-us is -1"):
        TuningFlags(queue_delay_us=-1)


def test_gpu_profile_places_instances_on_every_gpu():
    plan = plan_model(Host(16, (0, 1)))
    assert (plan.kind, plan.instances, plan.gpus, plan.threads) == ("KIND_GPU", GPU_INSTANCES_PER_DEVICE, (0, 1), 1)
    assert plan.total_instances == 2 * GPU_INSTANCES_PER_DEVICE and plan.max_batch_tokens == GPU_MAX_BATCH_TOKENS
    assert plan_model(Host(16, (0, 1)), TuningFlags(gpus=(1,), instances=3)).gpus == (1,)
    assert plan_model(Host(16, (0, 1)), TuningFlags(Profile.CPU)).kind == "KIND_CPU"
    assert plan_model(Host(4), TuningFlags(Profile.GPU, gpus=(0,))).kind == "KIND_GPU"  # building for another host
    with pytest.raises(BuildError, match=r"--profile is 'gpu', but this host shows no GPU"):
        plan_model(Host(4), TuningFlags(Profile.GPU))


def test_gpu_models_do_not_take_cpu_cores():
    plans = plan_repository(Host(4, (0,)), {"gpu": TuningFlags(), "cpu": TuningFlags(Profile.CPU)})
    assert plans["gpu"].on_gpu and _shape(plans["cpu"]) == ("KIND_CPU", 5, 1)


def test_flags_survive_the_round_trip_through_the_config():
    flags = TuningFlags(Profile.GPU, instances=3, threads=1, gpus=(0, 2), queue_delay_us=100,
                        preferred_batch_sizes=(4, 8))
    assert TuningFlags.from_flags(flags.as_flags()) == flags
    assert TuningFlags().as_flags() == "" and TuningFlags.from_flags("") == TuningFlags()


def test_host_detection_reads_cuda_visible_devices():
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == (0, 1)
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": ""}) == ()
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == ()
    assert Host.detect({"CUDA_VISIBLE_DEVICES": ""}).cpus >= 1


# --- the build: flags in the config, the repository re-divided ------------------------------------------------------

def _build(ckpt, repo, *args, cpus="2"):
    from triton_pooling_server.cli import main

    return main(["build", str(ckpt), "--repository", str(repo), "--runtime", "torch", "--cpus", cpus, *map(str, args)])


def test_build_writes_the_plan_and_rebalances_the_repository(tmp_path, capsys):
    from unit.build_helpers import fake_checkpoint

    ckpt = fake_checkpoint(tmp_path / "ckpt")
    repo = tmp_path / "repo"
    assert _build(ckpt, repo, "--name", "a") == 0
    a = repo / "a" / "config.pbtxt"
    assert "instance_group [ { count: 3 kind: KIND_CPU } ]" in a.read_text()
    assert 'key: "intra_op_threads" value { string_value: "1" }' in a.read_text()
    assert "# tuning: 3 instances x 1 thread, batcher delay 0 us; 2 cores shared by 1 CPU model" in a.read_text()
    assert _build(ckpt, repo, "--name", "b") == 0
    assert "retuned a: 2 instances x 1 thread" in capsys.readouterr().out
    assert "instance_group [ { count: 2 kind: KIND_CPU } ]" in a.read_text()
    assert _build(ckpt, repo, "--name", "c", "--instances", "1", "--threads", "1") == 0
    text = (repo / "c" / "config.pbtxt").read_text()
    assert 'key: "tuning_flags" value { string_value: "--instances 1 --threads 1" }' in text
    assert "count: 1 kind: KIND_CPU" in a.read_text()  # (2 - 1) / 2 cores each
    # A rebuild of a with the same flags is unchanged; a rebuild on a bigger host retunes, with no --force.
    assert _build(ckpt, repo, "--name", "a") == 0
    assert "unchanged: model 'a'" in capsys.readouterr().out
    assert _build(ckpt, repo, "--name", "a", cpus="9") == 0
    assert "retuned: model 'a'" in capsys.readouterr().out
    assert "count: 5 kind: KIND_CPU" in a.read_text() and "count: 1 kind: KIND_CPU" in text  # c keeps its pins


def test_gpu_build_renders_kind_gpu_with_devices_and_torch(tmp_path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from unit.build_helpers import fake_checkpoint

    ckpt = fake_checkpoint(tmp_path / "ckpt")
    repo = tmp_path / "repo"
    assert _build(ckpt, repo, "--profile", "gpu", "--gpus", "0,1") == 0
    config = text_format.Parse((repo / "embed" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    (group,) = config.instance_group
    assert (group.kind, group.count, list(group.gpus)) == (model_config_pb2.ModelInstanceGroup.KIND_GPU, 2, [0, 1])
    assert config.parameters["runtime"].string_value == "torch"
    assert config.parameters["max_batch_tokens"].string_value == str(GPU_MAX_BATCH_TOKENS)
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000


def test_each_gpu_instance_runs_on_its_own_device(monkeypatch, tmp_path):
    """The backend reads model_instance_kind / model_instance_device_id (KIND_GPU) and never lands all on cuda:0."""
    from triton_pooling_backend.loading import Instance, _torch_device
    from triton_pooling_contract.definition import ModelDefinition
    from triton_pooling_contract.parameters import InstanceKind
    from triton_pooling_contract.tasks import PoolingTask

    class FakeCuda:
        @staticmethod
        def is_available():
            return True

    class FakeTorch:
        cuda = FakeCuda

    (tmp_path / "config.json").write_text("{}")
    definition = ModelDefinition(PoolingTask.EMBED, str(tmp_path)).located()
    gpu1 = Instance.from_args({"model_repository": str(tmp_path), "model_version": "1",
                               "model_instance_kind": "GPU", "model_instance_device_id": "1"})
    assert (gpu1.kind, gpu1.device_id) == (InstanceKind.GPU, 1)
    assert _torch_device(definition, gpu1, FakeTorch) == "cuda:1"
    cpu = Instance.from_args({"model_repository": str(tmp_path), "model_version": "1", "model_instance_kind": "CPU"})
    assert _torch_device(definition, cpu, FakeTorch) == "cpu"  # device auto follows the instance kind


# --- the cost curve and the memory budget (issue 22) ----------------------------------------------------------------

from triton_pooling_contract.parameters import Runtime  # noqa: E402
from triton_pooling_server.builder.hardware import CpuFeatures, parse_cpu_flags, parse_memory_limit  # noqa: E402
from triton_pooling_server.builder.tuning import (  # noqa: E402
    WIDE_MAX_BATCH_TOKENS, ModelNeeds, instances_that_fit, rewards_width,
)

XEON_FLAGS = "flags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n"
EPYC_FLAGS = "flags\t\t: fpu sse avx2 fma\n"
AMX = parse_cpu_flags("processor\t: 0\n" + XEON_FLAGS)
GIB = 1 << 30


def test_cpu_flags_say_which_runtimes_reward_wide_passes():
    assert AMX.amx and AMX.bf16 and AMX.int8
    flat = parse_cpu_flags(EPYC_FLAGS)
    assert not (flat.amx or flat.bf16 or flat.int8) and parse_cpu_flags("") == CpuFeatures()
    assert "AMX" in rewards_width(Runtime.OPENVINO_BF16, AMX)
    assert "AVX512_BF16" in rewards_width(Runtime.OPENVINO_BF16, parse_cpu_flags("flags : avx512_bf16\n"))
    assert rewards_width(Runtime.OPENVINO_BF16, flat) is None
    assert rewards_width(Runtime.ONNX, AMX) is None and rewards_width(Runtime.OPENVINO, AMX) is None


def test_bf16_on_amx_gets_wide_passes_and_says_why():
    plans = plan_repository(Host(2, (), AMX), {"m": TuningFlags()}, {"m": ModelNeeds(Runtime.OPENVINO_BF16)})
    plan = plans["m"]
    assert plan.max_batch_tokens == WIDE_MAX_BATCH_TOKENS and _shape(plan) == ("KIND_CPU", 2, 1)  # no spare
    assert "bf16 on AMX rewards wide passes" in plan.note and "amx_bf16" in plan.note
    pinned = plan_repository(Host(2, (), AMX), {"m": TuningFlags(max_batch_tokens=1024)},
                             {"m": ModelNeeds(Runtime.OPENVINO_BF16)})["m"]
    assert pinned.max_batch_tokens == 1024
    assert plan_repository(Host(2, (), AMX), {"m": TuningFlags(instances=3)},
                           {"m": ModelNeeds(Runtime.OPENVINO_BF16)})["m"].instances == 3  # a pin stands
    eight = plan_repository(Host(8, (), AMX), {"m": TuningFlags()}, {"m": ModelNeeds(Runtime.OPENVINO_BF16)})["m"]
    assert _shape(eight) == ("KIND_CPU", 8, 1)


def test_the_fp32_plan_is_unchanged_by_the_cpu_and_a_flat_host_keeps_bf16_narrow():
    for runtime in (None, Runtime.ONNX, Runtime.OPENVINO):
        plan = plan_repository(Host(2, (), AMX), {"m": TuningFlags()}, {"m": ModelNeeds(runtime)})["m"]
        assert plan == plan_model(Host(2)), runtime
    flat = plan_repository(Host(2), {"m": TuningFlags()}, {"m": ModelNeeds(Runtime.OPENVINO_BF16)})["m"]
    assert flat.max_batch_tokens is None


def test_memory_limit_reads_the_cgroup_then_the_host():
    meminfo = "MemTotal:       24731184 kB\nMemFree: 1 kB\n"
    assert parse_memory_limit("3221225472\n", None, meminfo) == 3 * GIB
    assert parse_memory_limit("max\n", "9223372036854771712\n", meminfo) == 24731184 * 1024
    assert parse_memory_limit(None, "2147483648", meminfo) == 2 * GIB
    assert parse_memory_limit("99999999999999", None, meminfo) == 24731184 * 1024  # capped by the host


def test_instances_never_exceed_the_memory_and_shared_weights_count_once():
    big = 2.4 * GIB  # a 0.6B-class model in float32
    assert instances_that_fit(ModelNeeds(Runtime.OPENVINO_BF16, int(big)), 3 * GIB) == 0 + 1  # one, at least
    shared = instances_that_fit(ModelNeeds(Runtime.ONNX, int(big)), 6 * GIB)
    private = instances_that_fit(ModelNeeds(Runtime.OPENVINO, int(big)), 6 * GIB)
    assert shared > private >= 1
    assert instances_that_fit(ModelNeeds(Runtime.ONNX, int(big)), 0) > 8  # no limit known: the CPU decides
    plan = plan_repository(Host(2, (), AMX, 4 * GIB), {"m": TuningFlags()}, {"m": ModelNeeds(Runtime.OPENVINO, int(big))})["m"]
    assert plan.instances == 1 and "memory: 1 instance fits in" in plan.note
    pinned = plan_repository(Host(2, (), AMX, 4 * GIB), {"m": TuningFlags(instances=3)},
                             {"m": ModelNeeds(Runtime.OPENVINO, int(big))})["m"]
    assert pinned.instances == 3 and "WARNING: only 1 instance(s) fit" in pinned.note
    small = plan_repository(Host(2, (), AMX, 24 * GIB), {"m": TuningFlags()}, {"m": ModelNeeds(Runtime.ONNX, 90 << 20)})
    assert small["m"] == plan_model(Host(2))  # MiniLM: the CPU plan, memory says nothing


def test_the_tuner_and_the_backend_agree_on_when_weights_are_shared():
    from triton_pooling_backend.encoders.ort_encoder import SHARE_WEIGHTS_MIN_BYTES as backend
    from triton_pooling_server.builder.tuning import SHARE_WEIGHTS_MIN_BYTES as tuner

    assert tuner == backend
    below, at = ModelNeeds(Runtime.ONNX, backend - 1), ModelNeeds(Runtime.ONNX, backend)
    from triton_pooling_server.builder.tuning import instance_bytes

    assert instance_bytes(below)[0] > instance_bytes(at)[0]  # a private prepacked copy below, none from there up
