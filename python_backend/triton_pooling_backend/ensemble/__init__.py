"""Python-backend steps of the TensorRT ensemble (see triton_pooling_server.builder.tensorrt.layout): tokenize before
the encoder engine, the task's pooling head after it, and an ONNX Runtime stand-in for the engine on CPU."""
