"""The one owner of serving tuning: how many instances each model of a repository runs, with how many threads,
on which devices, and how its dynamic batcher waits. `triton-pooling build`, the shipped defaults, the compose
builder and the benchmark all take their numbers from here.

The rule (measured on the reference host, 2 cores; docs/performance.md "Serving tuning"):

- CPU: the host's cores are ONE budget for the whole repository. Models with pinned instances and threads take
  theirs first; the rest split what is left equally, a share S (cores, may be fractional) each. A model gets
  min(floor(S), 8) single-core slots — single-threaded instances beat multi-threaded ones on small hosts (a
  two-threaded instance stalled ~500 ms at p99) — wider slots (floor(S / 8) threads) past 8 cores to bound memory,
  plus one spare instance when S >= 1 (an instance waiting for its next batch leaves its core idle: 3 x 1 beat
  2 x 1 by ~10% on 2 cores). No batcher delay (requests spread over idle instances; the queue still forms
  batches under load), no preferred sizes (no measurable effect).
- The runtime's cost curve (hardware.CpuFeatures; measured on an AMX Xeon, docs/performance.md "This host"): where
  throughput grows with the pass — openvino_bf16 on a CPU with AMX / AVX512_BF16 (2x from 1 to 32 rows; a
  first-seen pass shape costs ~2x a known one) — one instance per core without the spare, 2048-token passes, and
  the engine rounds pass widths to 16-token buckets. Where the curve is flat (the fp32 runtimes, onnx_int8, anything
  on a CPU without those instructions) the plan is the one above.
- Memory: instances never exceed what fits in the memory this process may use (cgroup limit, else MemTotal, or
  --memory-mib), split among the repository's CPU models, counting the mapped weights once and each instance's
  private share of them (instance_bytes).
- GPU: KIND_GPU, `instances` per listed GPU (default 2, so tokenization and pooling overlap the GPU's work),
  one CPU thread each, a 2 ms batcher delay and a larger token budget per pass; runtime torch. Not measured
  here (no GPU on the reference host).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import shlex
from pathlib import Path
from typing import Mapping

from triton_pooling_contract.parameters import DEFAULT_CPU_RUNTIME, InstanceKind, Runtime
from triton_pooling_contract.serving import SHARE_WEIGHTS_MIN_BYTES  # from it ONNX Runtime uses weights in place

from .errors import BuildError
from .hardware import CpuFeatures, read_cpu_features, read_memory_limit

MAX_CPU_SLOTS = 8  # instances per model before instances get wider instead of more numerous
CPU_QUEUE_DELAY_US = 0
GPU_INSTANCES_PER_DEVICE = 2
GPU_QUEUE_DELAY_US = 2000
GPU_MAX_BATCH_TOKENS = 16384  # padded tokens per forward pass on a GPU (the CPU default is the backend's 512)
REFERENCE_HOST_CPUS = 2  # the shipped model_repository is what build writes on this host
# Passes of a runtime that rewards width: padded tokens per pass (the backend's default is 512).
WIDE_MAX_BATCH_TOKENS = 2048
# Memory of a model's instances (docs/performance.md "Memory", PSS per stub measured on a 1.1 GB graph): the mapped
# weight file once, then per instance its runtime's private memory (runtime, tokenizer, activations) plus the
# fraction of the weights it copies: ONNX Runtime's prepacked MatMuls 0.55 (none from SHARE_WEIGHTS_MIN_BYTES up:
# used in place), OpenVINO's repacked f32 0.55 and bf16 conversion 0.46; torch holds the checkpoint itself.
INSTANCE_OVERHEAD_BYTES = {Runtime.ONNX: 220 << 20, Runtime.ONNX_INT8: 220 << 20, Runtime.OPENVINO: 250 << 20,
                           Runtime.OPENVINO_BF16: 250 << 20}
PRIVATE_WEIGHT_FRACTION = {Runtime.ONNX: 0.55, Runtime.ONNX_INT8: 0.55, Runtime.OPENVINO: 0.55,
                           Runtime.OPENVINO_BF16: 0.46}
DEFAULT_INSTANCE_OVERHEAD_BYTES = 400 << 20  # torch and anything not measured
SERVER_RESERVE_BYTES = 512 << 20  # tritonserver, the launcher, /dev/shm between them
MEMORY_USE_FRACTION = 0.8  # never plan the last 20 %: activations of long texts, allocator growth


class Profile(str, enum.Enum):
    AUTO = "auto"  # gpu when the host has GPUs, else cpu
    CPU = "cpu"
    GPU = "gpu"


@dataclasses.dataclass(frozen=True)
class Host:
    cpus: int
    gpus: tuple[int, ...] = ()
    features: CpuFeatures = CpuFeatures()  # empty: a CPU whose cost curve is flat (the reference host)
    memory_bytes: int = 0  # what this process may use; 0: unknown, no memory cap

    @classmethod
    def detect(cls, env: Mapping[str, str] | None = None) -> "Host":
        env = os.environ if env is None else env
        return cls(detect_cpus(), detect_gpus(env), read_cpu_features(), read_memory_limit())

    def describe(self) -> str:
        gpus = f", GPUs {list(self.gpus)}" if self.gpus else ", no GPU"
        return f"{self.cpus} CPU core{'s' if self.cpus != 1 else ''}{gpus}"


@dataclasses.dataclass(frozen=True)
class ModelNeeds:
    """What the plan must know of a model besides its flags: the runtime it will serve with and its weights."""

    runtime: Runtime | None = None  # None: the CPU default
    weight_bytes: int = 0  # the graph and its external data (before an export: the checkpoint's weight files)

    @property
    def served_runtime(self) -> Runtime:
        return self.runtime or DEFAULT_CPU_RUNTIME


def rewards_width(runtime: Runtime, features: CpuFeatures) -> str | None:
    """Why `runtime` on this CPU serves faster in wide passes, or None where its cost per text is flat."""
    if runtime is Runtime.OPENVINO_BF16 and features.bf16:
        return f"bf16 on {'AMX' if features.amx else 'AVX512_BF16'} rewards wide passes"
    return None


def instances_that_fit(needs: ModelNeeds, memory_bytes: int) -> int:
    """How many instances of a model fit in `memory_bytes` (0: no limit known)."""
    if memory_bytes <= 0:
        return MAX_CPU_SLOTS + 1
    per_instance, once = instance_bytes(needs)
    return max(1, int((memory_bytes * MEMORY_USE_FRACTION - once) // per_instance))


def instance_bytes(needs: ModelNeeds) -> tuple[int, int]:
    """(bytes each instance adds, bytes held once for all of them) of a model's instances."""
    runtime, weights = needs.served_runtime, needs.weight_bytes
    overhead = INSTANCE_OVERHEAD_BYTES.get(runtime, DEFAULT_INSTANCE_OVERHEAD_BYTES)
    if runtime not in PRIVATE_WEIGHT_FRACTION:
        return overhead + weights, 0
    unpacked = runtime in (Runtime.ONNX, Runtime.ONNX_INT8) and weights >= SHARE_WEIGHTS_MIN_BYTES
    return overhead + int(0 if unpacked else PRIVATE_WEIGHT_FRACTION[runtime] * weights), weights


@dataclasses.dataclass(frozen=True)
class TuningFlags:
    """What the user pinned for one model; None: the rule decides."""

    profile: Profile = Profile.AUTO
    instances: int | None = None
    threads: int | None = None
    gpus: tuple[int, ...] | None = None
    queue_delay_us: int | None = None
    preferred_batch_sizes: tuple[int, ...] | None = None
    max_batch_tokens: int | None = None

    def __post_init__(self):
        for name in ("instances", "threads", "max_batch_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BuildError(f"--{name} is {value}; expected an integer >= 1")
        if self.queue_delay_us is not None and self.queue_delay_us < 0:
            raise BuildError(f"--queue-delay-us is {self.queue_delay_us}; expected an integer >= 0")

    def as_flags(self) -> str:
        """The flags as given on the command line (stored in the config so a later build keeps them)."""
        parts = [] if self.profile is Profile.AUTO else ["--profile", self.profile.value]
        for name in ("instances", "threads", "queue_delay_us", "max_batch_tokens"):
            if getattr(self, name) is not None:
                parts += [f"--{name.replace('_', '-')}", str(getattr(self, name))]
        for name, values in (("gpus", self.gpus), ("preferred-batch-sizes", self.preferred_batch_sizes)):
            if values is not None:
                parts += [f"--{name}", ",".join(str(v) for v in values)]
        return " ".join(parts)

    @classmethod
    def from_flags(cls, text: str) -> "TuningFlags":
        args, values = shlex.split(text or ""), {}
        for flag, value in zip(args[::2], args[1::2]):
            name = flag.lstrip("-").replace("-", "_")
            if name == "profile":
                values[name] = Profile(value)
            elif name in ("gpus", "preferred_batch_sizes"):
                values[name] = tuple(int(v) for v in value.split(",") if v)
            elif name in ("instances", "threads", "queue_delay_us", "max_batch_tokens"):
                values[name] = int(value)
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class ServingPlan:
    kind: InstanceKind
    instances: int  # per GPU for KIND_GPU
    threads: int  # intra-op threads per instance
    gpus: tuple[int, ...] = ()
    queue_delay_us: int = CPU_QUEUE_DELAY_US
    preferred_batch_sizes: tuple[int, ...] = ()
    max_batch_tokens: int | None = None  # None: the backend's default
    reason: str = ""  # one line: where the numbers came from

    @property
    def on_gpu(self) -> bool:
        return self.kind is InstanceKind.GPU

    @property
    def total_instances(self) -> int:
        return self.instances * max(1, len(self.gpus))

    @property
    def note(self) -> str:
        """The config's `# tuning:` line."""
        return f"{self.describe()}; {self.reason} (triton-pooling build, docs/performance.md)"

    def describe(self) -> str:
        where = f" on GPUs {list(self.gpus)}" if self.on_gpu else ""
        per = " per GPU" if self.on_gpu else ""
        return (f"{self.instances} instance{'s' if self.instances != 1 else ''}{per} x {self.threads} "
                f"thread{'s' if self.threads != 1 else ''}{where}, batcher delay {self.queue_delay_us} us")


def plan_repository(host: Host, models: Mapping[str, TuningFlags],
                    needs: Mapping[str, ModelNeeds] | None = None) -> dict[str, ServingPlan]:
    """Plans for every model of a repository; CPU models share the host's cores and memory."""
    needs = needs or {}
    profiles = {name: _profile(host, flags) for name, flags in models.items()}
    cpu_models = [n for n, p in profiles.items() if p is Profile.CPU]
    pinned = {n: models[n].instances * models[n].threads for n in cpu_models
              if models[n].instances is not None and models[n].threads is not None}
    free = [n for n in cpu_models if n not in pinned]
    left = max(0, host.cpus - sum(pinned.values()))
    share = left / len(free) if free else 0.0
    memory = max(0, host.memory_bytes - SERVER_RESERVE_BYTES) // max(1, len(cpu_models)) if host.memory_bytes else 0
    plans = {}
    for name, flags in models.items():
        if profiles[name] is Profile.GPU:
            plans[name] = _gpu_plan(host, flags)
        else:
            plan = _cpu_plan(flags, share, host.cpus, len(cpu_models))
            model_needs = needs.get(name, ModelNeeds())
            plans[name] = _fit_memory(_for_curve(plan, flags, model_needs, host.features, share), flags, model_needs,
                                      memory)
    return plans


def plan_model(host: Host, flags: TuningFlags = TuningFlags()) -> ServingPlan:
    """A model alone in its repository."""
    return plan_repository(host, {"model": flags})["model"]


def _profile(host: Host, flags: TuningFlags) -> Profile:
    if flags.profile is Profile.AUTO:
        return Profile.GPU if (flags.gpus or host.gpus) else Profile.CPU
    if flags.profile is Profile.GPU and not (flags.gpus or host.gpus):
        raise BuildError("--profile is 'gpu', but this host shows no GPU (CUDA_VISIBLE_DEVICES / "
                         "/proc/driver/nvidia/gpus): pass --gpus 0[,1...] to build for another host, or use --profile cpu")
    return flags.profile


def _cpu_plan(flags: TuningFlags, share: float, cpus: int, sharing: int) -> ServingPlan:
    cores = max(1, math.floor(share))
    slots = min(cores, MAX_CPU_SLOTS)
    threads = flags.threads or max(1, cores // slots)
    instances = flags.instances or (slots + (1 if share >= 1 else 0))
    if flags.instances and flags.threads:
        reason = "--instances and --threads"
    else:
        reason = (f"{cpus} core{'s' if cpus != 1 else ''} shared by {sharing} CPU model{'s' if sharing != 1 else ''}: "
                  f"{share:.2g} each")
    return ServingPlan(InstanceKind.CPU, instances, threads, (), _given(flags.queue_delay_us, CPU_QUEUE_DELAY_US),
                       flags.preferred_batch_sizes or (), flags.max_batch_tokens, reason)


def _for_curve(plan: ServingPlan, flags: TuningFlags, needs: ModelNeeds, features: CpuFeatures,
               share: float) -> ServingPlan:
    """Where the runtime rewards width: no spare instance (its passes are short, so a core idles little between
    batches, and each instance fewer means wider passes and one weight copy fewer), a wider token budget (the
    engine buckets pass widths). Measured, MiniLM bf16 on 2 AMX cores, gRPC c=32: 2 x 1 434 / 435 texts/s, 3 x 1
    409 / 316, 1 x 2 251 / 275 (p99 ~600 ms)."""
    why = rewards_width(needs.served_runtime, features)
    if why is None:
        return plan
    instances = plan.instances - 1 if flags.instances is None and share >= 1 and plan.instances > 1 else plan.instances
    tokens = flags.max_batch_tokens or WIDE_MAX_BATCH_TOKENS
    return dataclasses.replace(plan, instances=instances, max_batch_tokens=tokens,
                               reason=f"{plan.reason}; {why} ({features.describe()}): no spare instance, "
                                      f"{tokens}-token passes in 16-token width buckets")


def _fit_memory(plan: ServingPlan, flags: TuningFlags, needs: ModelNeeds, memory_bytes: int) -> ServingPlan:
    """Never more instances than the model's share of memory holds (pinned --instances are kept, and said so)."""
    fit = instances_that_fit(needs, memory_bytes)
    if plan.instances <= fit:
        return plan
    gib = memory_bytes / 2**30
    weights = f"{needs.weight_bytes / 2**30:.2f} GiB of weights"
    if flags.instances is not None:
        return dataclasses.replace(plan, reason=f"{plan.reason}; WARNING: only {fit} instance(s) fit in "
                                                f"{gib:.1f} GiB with {weights} (--instances {flags.instances} kept)")
    return dataclasses.replace(plan, instances=fit, reason=f"{plan.reason}; memory: {fit} instance"
                               f"{'s fit' if fit != 1 else ' fits'} in {gib:.1f} GiB with {weights}")


def _gpu_plan(host: Host, flags: TuningFlags) -> ServingPlan:
    gpus = tuple(flags.gpus) if flags.gpus else host.gpus
    return ServingPlan(InstanceKind.GPU, flags.instances or GPU_INSTANCES_PER_DEVICE, flags.threads or 1, gpus,
                       _given(flags.queue_delay_us, GPU_QUEUE_DELAY_US), flags.preferred_batch_sizes or (),
                       flags.max_batch_tokens or GPU_MAX_BATCH_TOKENS, f"GPU profile: GPUs {list(gpus)}")


def _given(value, default):
    return default if value is None else value


def detect_cpus() -> int:
    """Cores this process may use: its affinity, capped by a cgroup v2 CPU quota (containers, Kubernetes)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def detect_gpus(env: Mapping[str, str]) -> tuple[int, ...]:
    """GPU ids: CUDA_VISIBLE_DEVICES when set (as CUDA renumbers them: 0..n-1), else the NVIDIA driver's list."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        names = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
        return tuple(range(len(names)))
    try:
        return tuple(range(len(list(Path("/proc/driver/nvidia/gpus").iterdir()))))
    except OSError:
        return ()
