"""Python-backend steps of the TensorRT ensemble (see triton_pooling_server.build.tensorrt_layout): tokenize before
the encoder engine, the task's pooling head after it, and an ONNX Runtime stand-in for the engine on CPU."""
