"""Shared Triton Python-backend logic for triton-pooling's per-task models.

Each `model_repository/<name>/1/model.py` subclasses `TritonPoolingModel` (in `triton_model`)
and names its task; everything else lives here because Triton only puts the model's own folder
on the stub's sys.path.
"""
