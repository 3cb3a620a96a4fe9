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

from triton_pooling_contract.parameters import InstanceKind

from .errors import BuildError

MAX_CPU_SLOTS = 8  # instances per model before instances get wider instead of more numerous
CPU_QUEUE_DELAY_US = 0
GPU_INSTANCES_PER_DEVICE = 2
GPU_QUEUE_DELAY_US = 2000
GPU_MAX_BATCH_TOKENS = 16384  # padded tokens per forward pass on a GPU (the CPU default is the backend's 512)
REFERENCE_HOST_CPUS = 2  # the shipped model_repository is what build writes on this host


class Profile(str, enum.Enum):
    AUTO = "auto"  # gpu when the host has GPUs, else cpu
    CPU = "cpu"
    GPU = "gpu"


@dataclasses.dataclass(frozen=True)
class Host:
    cpus: int
    gpus: tuple[int, ...] = ()

    @classmethod
    def detect(cls, env: Mapping[str, str] | None = None) -> "Host":
        env = os.environ if env is None else env
        return cls(detect_cpus(), detect_gpus(env))

    def describe(self) -> str:
        gpus = f", GPUs {list(self.gpus)}" if self.gpus else ", no GPU"
        return f"{self.cpus} CPU core{'s' if self.cpus != 1 else ''}{gpus}"


@dataclasses.dataclass(frozen=True)
class TuningFlags:
    """What the user pinned for one model; None: the rule decides."""

    profile: Profile = Profile.AUTO
    instances: int | None = None
    threads: int | None = None
    gpus: tuple[int, ...] | None = None
    queue_delay_us: int | None = None
    preferred_batch_sizes: tuple[int, ...] | None = None

    def __post_init__(self):
        for name in ("instances", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BuildError(f"--{name} is {value}; expected an integer >= 1")
        if self.queue_delay_us is not None and self.queue_delay_us < 0:
            raise BuildError(f"--queue-delay-us is {self.queue_delay_us}; expected an integer >= 0")

    def as_flags(self) -> str:
        """The flags as given on the command line (stored in the config so a later build keeps them)."""
        parts = [] if self.profile is Profile.AUTO else ["--profile", self.profile.value]
        for name in ("instances", "threads", "queue_delay_us"):
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
            elif name in ("instances", "threads", "queue_delay_us"):
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


def plan_repository(host: Host, models: Mapping[str, TuningFlags]) -> dict[str, ServingPlan]:
    """Plans for every model of a repository; CPU models share the host's cores."""
    profiles = {name: _profile(host, flags) for name, flags in models.items()}
    cpu_models = [n for n, p in profiles.items() if p is Profile.CPU]
    pinned = {n: models[n].instances * models[n].threads for n in cpu_models
              if models[n].instances is not None and models[n].threads is not None}
    free = [n for n in cpu_models if n not in pinned]
    left = max(0, host.cpus - sum(pinned.values()))
    share = left / len(free) if free else 0.0
    plans = {}
    for name, flags in models.items():
        if profiles[name] is Profile.GPU:
            plans[name] = _gpu_plan(host, flags)
        else:
            plans[name] = _cpu_plan(flags, share, host.cpus, len(cpu_models))
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
                       flags.preferred_batch_sizes or (), None, reason)


def _gpu_plan(host: Host, flags: TuningFlags) -> ServingPlan:
    gpus = tuple(flags.gpus) if flags.gpus else host.gpus
    return ServingPlan(InstanceKind.GPU, flags.instances or GPU_INSTANCES_PER_DEVICE, flags.threads or 1, gpus,
                       _given(flags.queue_delay_us, GPU_QUEUE_DELAY_US), flags.preferred_batch_sizes or (),
                       GPU_MAX_BATCH_TOKENS, f"GPU profile: GPUs {list(gpus)}")


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
