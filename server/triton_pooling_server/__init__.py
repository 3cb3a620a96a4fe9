"""triton-pooling's server side: `launch` runs and supervises tritonserver (`triton-pooling serve`),
`build` turns a Hugging Face checkpoint into a per-task Triton model (`triton-pooling build`)."""
