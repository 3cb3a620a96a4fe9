"""One core budget per repository: a build re-divides the host among all pooling models already in the
repository, rewriting only the tuning of the others (instance group, threads, batcher delay, preferred sizes,
the tuning comment) and keeping the flags each was built with (`tuning_flags`)."""

from __future__ import annotations

from pathlib import Path

from triton_pooling_contract.parameters import TUNING_FLAGS_PARAMETER, Runtime

from .config_text import is_pooling_model, read_parameters, rewrite_tuning, runs_on_cpu
from .model_size import graph_bytes
from .tuning import ModelNeeds, ServingPlan, TuningFlags


def pooling_models(repository: Path, exclude: str = "") -> dict[str, Path]:
    """Python-backend pooling models of a repository (not ensembles, not their steps), by name."""
    return {config.parent.name: config for config in sorted(Path(repository).glob("*/config.pbtxt"))
            if config.parent.name != exclude and is_pooling_model(config.read_text(encoding="utf-8"))}


def sharing_models(repository: Path, exclude: str = "") -> dict[str, TuningFlags]:
    """The other models that share the host, with the tuning flags each was built with."""
    return {name: TuningFlags.from_flags(read_parameters(config.read_text(encoding="utf-8")).get(TUNING_FLAGS_PARAMETER, ""))
            for name, config in pooling_models(repository, exclude).items()}


def sharing_needs(repository: Path, exclude: str = "") -> dict[str, ModelNeeds]:
    """The other models' runtimes (as their configs name them) and built weights, for the memory budget."""
    needs = {}
    for name, config in pooling_models(repository, exclude).items():
        runtime = read_parameters(config.read_text(encoding="utf-8")).get("runtime", "")
        known = runtime in {r.value for r in Runtime}
        needs[name] = ModelNeeds(Runtime(runtime) if known else None, graph_bytes(config.parent / "1"))
    return needs


def retune_others(repository: Path, plans: dict[str, ServingPlan], exclude: str) -> list[str]:
    """Rewrite the tuning of the other CPU models whose plan changed; one line per model rewritten."""
    lines = []
    for name, config in pooling_models(repository, exclude).items():
        plan = plans.get(name)
        text = config.read_text(encoding="utf-8")
        if plan is None or plan.on_gpu or not runs_on_cpu(text):
            continue  # GPU models do not share the CPU budget
        new = rewrite_tuning(text, instances=plan.instances, kind=plan.kind, gpus=plan.gpus,
                             queue_delay_us=plan.queue_delay_us, preferred_batch_sizes=plan.preferred_batch_sizes,
                             threads=plan.threads, note=plan.note)
        if new != text:
            config.write_text(new, encoding="utf-8")
            lines.append(f"retuned {name}: {plan.describe()}")
    return lines
