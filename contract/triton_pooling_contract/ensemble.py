"""Names inside the TensorRT ensemble layout (see triton_pooling_server.builder.tensorrt.layout),
shared by the builder that writes the ensemble and the backend steps that run in it."""

from .serving import GraphOutput
from .tasks import PoolingTask

# Tensor names between the ensemble's steps (the ONNX graph's input and output names too).
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
TOKEN_TYPE_IDS = "token_type_ids"
HIDDEN_STATES = "last_hidden_state"
LOGITS = "logits"
ENCODER_PLATFORMS = ("tensorrt_plan", "onnxruntime_onnx", "python-onnxruntime")
ENCODER_FILES = {"tensorrt_plan": "model.plan", "onnxruntime_onnx": "model.onnx", "python-onnxruntime": "model.onnx"}
# Steps name their ensemble's task under another key: only the ensemble is a pooling model to clients
# (discovery looks for `pooling_task`), the steps are its internals.
STEP_TASK_PARAMETER = "ensemble_step_of_task"

# What the ensemble's encoder returns per task: hidden states, or the checkpoint's own logits (pooled already for
# seq_classify: its head runs in the engine).
ENCODER_GRAPH_OUTPUT = {
    PoolingTask.EMBED: GraphOutput.HIDDEN_STATES,
    PoolingTask.TOKEN_EMBED: GraphOutput.HIDDEN_STATES,
    PoolingTask.SEQ_CLASSIFY: GraphOutput.SEQUENCE_LOGITS,
    PoolingTask.TOKEN_CLASSIFY: GraphOutput.TOKEN_LOGITS,
}
