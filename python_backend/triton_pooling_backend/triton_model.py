"""The Triton Python-backend adapter: `model_repository/<name>/1/model.py` subclasses
`TritonPoolingModel` and sets `task`; the config must name that same task."""

from __future__ import annotations

import json
from pathlib import Path

from triton_pooling_contract.tasks import TASK_PARAMETER, Tensor, parse_task

from .errors import ErrorKind, ModelConfigError, PoolingError
from .definition_reader import read_declared_task, read_definition

_INPUTS = (
    Tensor.TEXT, Tensor.INPUT_IDS, Tensor.TEXT_PAIR, Tensor.TRUNCATE_PROMPT_TOKENS,
    Tensor.DIMENSIONS, Tensor.USE_ACTIVATION, Tensor.PROMPT_NAME,
)


class TritonPoolingModel:
    task: str = ""  # set by each model.py

    def initialize(self, args: dict) -> None:
        import triton_python_backend_utils as pb_utils

        from .loading import Instance
        from .service import PoolingService

        self._pb = pb_utils
        config = json.loads(args["model_config"])
        # The one-task rule first: a mismatch is the real error even when other settings are off too.
        served, named = parse_task(self.task), read_declared_task(config)
        if named is not served:
            raise ModelConfigError(
                f"model {args['model_name']!r} serves task {served.value!r} (its model.py), but its config.pbtxt "
                f"parameter '{TASK_PARAMETER}' names {named.value!r}: one model serves one task; "
                f"set it to {served.value!r} or use the {named.value} model.py"
            )
        definition = read_definition(config, Path(args["model_repository"]))
        self.service = PoolingService.load(definition, Instance.from_args(args))

    def execute(self, requests):
        pb = self._pb
        tensors = [{name: _numpy(pb.get_input_tensor_by_name(r, name)) for name in _INPUTS} for r in requests]
        answers = answer_each(self.service, tensors)
        responses = []
        for answer in answers:
            if isinstance(answer, PoolingError):
                code = getattr(pb.TritonError, answer.kind.value, pb.TritonError.INTERNAL)
                responses.append(pb.InferenceResponse(output_tensors=[], error=pb.TritonError(str(answer), code)))
            else:
                responses.append(pb.InferenceResponse([pb.Tensor(k, v) for k, v in answer.items()]))
        return responses

    def finalize(self) -> None:
        self.service = None


def answer_each(service, tensors: list) -> list:
    """The batch's answers; when the engine fails on the batch, each request is retried on its own, so only the
    request that caused the failure hears of it (INTERNAL), never a well-formed batch-mate."""
    try:
        return service.handle(tensors)
    except Exception as e:
        if len(tensors) == 1:
            return [_internal(e)]
    answers = []
    for one in tensors:
        try:
            answers.extend(service.handle([one]))
        except Exception as e:
            answers.append(_internal(e))
    return answers


def _internal(error: BaseException) -> PoolingError:
    return PoolingError(f"internal error: {type(error).__name__}: {error}")


def _numpy(tensor):
    return None if tensor is None else tensor.as_numpy()


__all__ = ["TritonPoolingModel", "ErrorKind"]
