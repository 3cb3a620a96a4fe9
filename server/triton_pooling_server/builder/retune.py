"""One core budget per repository: a build re-divides the host among all pooling models already in the
repository, rewriting only the tuning of the others (instance group, threads, batcher delay, preferred sizes,
the tuning comment) and keeping the flags each was built with (`tuning_flags`)."""

from __future__ import annotations

import re
from pathlib import Path

from triton_pooling_contract.parameters import TUNING_FLAGS_PARAMETER

from .model_config import instance_group_line, preferred_batch_line
from .tuning import ServingPlan, TuningFlags

_POOLING_TASK = re.compile(r'key:\s*"pooling_task"')
_PYTHON = re.compile(r'^backend:\s*"python"', re.MULTILINE)
_GROUP = re.compile(r"^instance_group \[.*\]$", re.MULTILINE)
_KIND_CPU = re.compile(r"^instance_group \[[^\]]*KIND_CPU", re.MULTILINE)
_DELAY = re.compile(r"max_queue_delay_microseconds: \d+")
_PREFERRED = re.compile(r"^  preferred_batch_size: \[[^\]]*\]\n", re.MULTILINE)
_NOTE = re.compile(r"^# tuning: .*\n", re.MULTILINE)
_TUNING_PARAMETERS = ("intra_op_threads", "max_batch_tokens", TUNING_FLAGS_PARAMETER)


def _parameter(key: str) -> re.Pattern:
    return re.compile(rf'^parameters {{ key: "{key}" value {{ string_value: "((?:[^"\\]|\\.)*)" }} }}\n', re.MULTILINE)


def pooling_models(repository: Path, exclude: str = "") -> dict[str, Path]:
    """Python-backend pooling models of a repository (not ensembles, not their steps), by name."""
    found = {}
    for config in sorted(Path(repository).glob("*/config.pbtxt")):
        text = config.read_text(encoding="utf-8")
        if config.parent.name != exclude and _POOLING_TASK.search(text) and _PYTHON.search(text):
            found[config.parent.name] = config
    return found


def sharing_models(repository: Path, exclude: str = "") -> dict[str, TuningFlags]:
    """The other models that share the host, with the tuning flags each was built with."""
    flags = {}
    for name, config in pooling_models(repository, exclude).items():
        text = config.read_text(encoding="utf-8")
        pinned = _parameter(TUNING_FLAGS_PARAMETER).search(text)
        flags[name] = TuningFlags.from_flags(pinned.group(1) if pinned else "")
    return flags


def retune_text(text: str, plan: ServingPlan, note: str) -> str:
    """The config with the plan's tuning in place of its own; everything else untouched."""
    text = _GROUP.sub(instance_group_line(plan.instances, plan.kind, plan.gpus), text, count=1)
    text = _DELAY.sub(f"max_queue_delay_microseconds: {plan.queue_delay_us}", text, count=1)
    text = _PREFERRED.sub("", text)
    if plan.preferred_batch_sizes:
        text = text.replace("dynamic_batching {\n", "dynamic_batching {\n" + preferred_batch_line(plan.preferred_batch_sizes), 1)
    text = _set_parameter(text, "intra_op_threads", str(plan.threads))
    text = _NOTE.sub("", text)
    first, _, rest = text.partition("\n")
    return f"{first}\n# tuning: {note}\n{rest}"


def strip_tuning(text: str) -> str:
    """The config without its tuning: two configs equal here describe the same model."""
    text = _NOTE.sub("", _PREFERRED.sub("", _DELAY.sub("", _GROUP.sub("", text))))
    for key in _TUNING_PARAMETERS:
        text = _parameter(key).sub("", text)
    return text


def retune_others(repository: Path, plans: dict[str, ServingPlan], exclude: str) -> list[str]:
    """Rewrite the tuning of the other CPU models whose plan changed; one line per model rewritten."""
    lines = []
    for name, config in pooling_models(repository, exclude).items():
        plan = plans.get(name)
        text = config.read_text(encoding="utf-8")
        if plan is None or plan.on_gpu or not _KIND_CPU.search(text):
            continue  # GPU models do not share the CPU budget
        new = retune_text(text, plan, f"{plan.describe()}; {plan.reason} (triton-pooling build, docs/performance.md)")
        if new != text:
            config.write_text(new, encoding="utf-8")
            lines.append(f"retuned {name}: {plan.describe()}")
    return lines


def _set_parameter(text: str, key: str, value: str) -> str:
    line = f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}\n'
    pattern = _parameter(key)
    if pattern.search(text):
        return pattern.sub(lambda _: line, text, count=1)
    return text.rstrip("\n") + "\n" + line
