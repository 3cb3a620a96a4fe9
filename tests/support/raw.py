"""Raw tritonclient requests (no project client): what the contract promises over HTTP and gRPC."""

from __future__ import annotations

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from triton_pooling_contract.tasks import Tensor

PROTOCOLS = ("http", "grpc")
_MODULES = {"http": httpclient, "grpc": grpcclient}


def client(protocol: str, server):
    url = server.options.http_url if protocol == "http" else server.options.grpc_url
    return _MODULES[protocol].InferenceServerClient(url)


def make_inputs(protocol: str, texts=None, *, input_ids=None, pairs=None, **options) -> list:
    """Build InferInputs; options are tensor names (DIMENSIONS=…, USE_ACTIVATION=…) per text or scalar."""
    module = _MODULES[protocol]
    inputs = []

    def add(name, array, dtype):
        tensor = module.InferInput(name, list(array.shape), dtype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)

    if texts is not None:
        add(Tensor.TEXT, _bytes_column(texts), "BYTES")
        batch = len(texts)
    if input_ids is not None:
        add(Tensor.INPUT_IDS, np.asarray(input_ids, dtype=np.int64), "INT64")
        batch = len(input_ids)
    if pairs is not None:
        add(Tensor.TEXT_PAIR, _bytes_column(pairs), "BYTES")
    for name, value in options.items():
        values = value if isinstance(value, (list, tuple)) else [value] * batch
        if name == Tensor.USE_ACTIVATION:
            add(name, np.asarray(values, dtype=bool).reshape(-1, 1), "BOOL")
        else:
            add(name, np.asarray(values, dtype=np.int32).reshape(-1, 1), "INT32")
    return inputs


def infer(protocol: str, server, model: str, texts=None, **kwargs) -> dict[str, np.ndarray]:
    """One request; returns every output of the model by name."""
    from triton_pooling_contract.tasks import OUTPUT_TENSOR, SPARSE_OUTPUTS

    result = client(protocol, server).infer(model, make_inputs(protocol, texts, **kwargs))
    outputs = {}
    for name in (*OUTPUT_TENSOR.values(), *SPARSE_OUTPUTS, Tensor.NUM_TOKENS):
        value = result.as_numpy(name)
        if value is not None:
            outputs[name] = value
    return outputs


def _bytes_column(texts) -> np.ndarray:
    return np.array([[t if isinstance(t, bytes) else t.encode("utf-8")] for t in texts], dtype=object)
