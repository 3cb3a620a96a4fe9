"""`triton-pooling serve`: run a real tritonserver over a model repository, and keep it healthy."""
