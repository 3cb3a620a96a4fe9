"""What every ensemble step shares: definition from its config.pbtxt, one answer or one error per request."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from triton_pooling_contract.ensemble import STEP_TASK_PARAMETER
from triton_pooling_contract.tasks import TASK_PARAMETER

from ..errors import PoolingError
from triton_pooling_contract.definition import ModelDefinition
from ..definition_reader import read_definition


class StepModel:
    """Subclasses implement setup() and answer(tensors) → outputs; Triton's API stays in this class."""

    input_names: tuple[str, ...] = ()

    def initialize(self, args: dict) -> None:
        import triton_python_backend_utils as pb_utils

        self._pb = pb_utils
        self.config = json.loads(args["model_config"])
        self.model_dir = Path(args["model_repository"])
        self.version_dir = self.model_dir / str(args["model_version"])
        self.input_names = tuple(i["name"] for i in self.config["input"])
        self.setup()

    def step_definition(self) -> ModelDefinition:
        """The backend's typed definition; a step names its ensemble's task under its own key (see triton_pooling_server.builder.tensorrt.layout)."""
        params = dict(self.config.get("parameters") or {})
        if STEP_TASK_PARAMETER in params:
            params[TASK_PARAMETER] = params.pop(STEP_TASK_PARAMETER)
        return read_definition({**self.config, "parameters": params}, self.model_dir)

    def setup(self) -> None:
        raise NotImplementedError

    def answer(self, tensors: dict[str, np.ndarray | None]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def execute(self, requests):
        pb = self._pb
        responses = []
        for request in requests:
            tensors = {}
            for name in self.input_names:
                tensor = pb.get_input_tensor_by_name(request, name)
                tensors[name] = None if tensor is None else tensor.as_numpy()
            try:
                outputs = self.answer(tensors)
            except PoolingError as e:
                code = getattr(pb.TritonError, e.kind.value, pb.TritonError.INTERNAL)
                responses.append(pb.InferenceResponse(output_tensors=[], error=pb.TritonError(str(e), code)))
                continue
            except Exception as e:  # our fault: reported to the caller, never swallowed
                error = pb.TritonError(f"internal error: {type(e).__name__}: {e}", pb.TritonError.INTERNAL)
                responses.append(pb.InferenceResponse(output_tensors=[], error=error))
                continue
            responses.append(pb.InferenceResponse([pb.Tensor(k, v) for k, v in outputs.items()]))
        return responses

    def finalize(self) -> None:
        pass
