"""Benchmark harness for triton-pooling (`make bench`): see docs/performance.md. Not part of the tests."""
