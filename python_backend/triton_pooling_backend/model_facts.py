"""What serving a model needs to know besides its encoder: pooling, limits, ids, the classifier activation and
the graph's interface. Read from the built model's serving.json (lean runtimes), or worked out from the
Hugging Face config and tokenizer (at build time, and for `runtime: torch`)."""

from __future__ import annotations

import dataclasses

from triton_pooling_contract import rules
from triton_pooling_contract.parameters import Activation
from triton_pooling_contract.checkpoint_info import NO_TOKENIZER_LIMIT, CheckpointInfo
from triton_pooling_contract.serving import GraphOutput, ServingDescription
from triton_pooling_contract.tasks import PoolingTask, PoolingType

from .errors import ModelConfigError
from triton_pooling_contract.definition import ModelDefinition

TOKEN_TYPES = "token_type_ids"
BASE_INPUTS = ("input_ids", "attention_mask")


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    pooling: PoolingType
    max_tokens: int
    hidden_size: int  # the embedding's width (the encoder's, or the last Dense module's): what DIMENSIONS may not exceed
    num_labels: int
    vocab_size: int
    pad_token_id: int
    activation: Activation
    graph_inputs: tuple[str, ...]
    graph_output: GraphOutput
    head: tuple = ()  # pooler.DenseStep / LayerNormStep: the pipeline's modules after pooling (loaded weights)

    @property
    def with_token_types(self) -> bool:
        return TOKEN_TYPES in self.graph_inputs

    @classmethod
    def from_description(cls, d: ServingDescription, definition: ModelDefinition, head: tuple = ()) -> "ModelFacts":
        dense = [step.weight.shape[0] for step in head if hasattr(step, "activation")]
        return cls(
            pooling=PoolingType(d.pooling), max_tokens=definition.max_tokens or d.max_tokens,
            hidden_size=dense[-1] if dense else d.hidden_size, num_labels=d.num_labels, vocab_size=d.vocab_size,
            pad_token_id=d.pad_token_id, activation=definition.activation or Activation(d.activation),
            graph_inputs=tuple(d.graph_inputs), graph_output=d.graph_output, head=head,
        )


def graph_output_for(task: PoolingTask, pooling: PoolingType) -> GraphOutput:
    if pooling is PoolingType.SPLADE:
        return GraphOutput.SPARSE_WEIGHTS
    if task in (PoolingTask.EMBED, PoolingTask.TOKEN_EMBED):
        return GraphOutput.HIDDEN_STATES
    if task is PoolingTask.SEQ_CLASSIFY and pooling is PoolingType.NATIVE:
        return GraphOutput.SEQUENCE_LOGITS
    return GraphOutput.TOKEN_LOGITS


def facts_from_hf(definition: ModelDefinition, info: CheckpointInfo, pooling: PoolingType, hf_config, tokenizer,
                  with_token_types: bool) -> ModelFacts:
    """From a transformers config and tokenizer (build time and the torch runtime)."""
    num_labels = int(getattr(hf_config, "num_labels", 0) or 0)
    try:
        activation = definition.activation or rules.classifier_activation(
            getattr(hf_config, "problem_type", None), num_labels, info.cross_encoder_activation)
    except rules.NotServable as e:
        raise ModelConfigError(str(e)) from None
    check_returned_ids(definition, num_labels)
    return ModelFacts(
        pooling=pooling,
        max_tokens=max_tokens_of(definition, info, hf_config, tokenizer),
        hidden_size=int(hf_config.hidden_size),
        num_labels=num_labels,
        vocab_size=int(hf_config.vocab_size),
        pad_token_id=pad_token_id_of(tokenizer, hf_config),
        activation=activation,
        graph_inputs=BASE_INPUTS + ((TOKEN_TYPES,) if with_token_types else ()),
        graph_output=graph_output_for(definition.task, pooling),
    )


def max_tokens_of(definition: ModelDefinition, info: CheckpointInfo, config, tokenizer) -> int:
    """Explicit max_tokens > sentence-transformers max_seq_length > position embeddings / tokenizer limit."""
    if definition.max_tokens is not None:
        return definition.max_tokens
    window = info.sentence_transformers.window if info.sentence_transformers else None
    if window:
        return window
    limits = [info.token_limit]  # the positions it can address (offset included) and the tokenizer's limit
    if tokenizer.model_max_length and tokenizer.model_max_length < NO_TOKENIZER_LIMIT:
        limits.append(tokenizer.model_max_length)
    limits = [int(v) for v in limits if v]
    if not limits:
        raise ModelConfigError("cannot tell the checkpoint's token limit: set parameter 'max_tokens'")
    return min(limits)


def pad_token_id_of(tokenizer, config) -> int:
    for value in (tokenizer.pad_token_id, getattr(config, "pad_token_id", None), tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0  # padded positions are masked out, so any valid id serves


def check_returned_ids(definition: ModelDefinition, num_labels: int) -> None:
    """STEP's returned label columns against the labels the model has (known once its config or graph is read)."""
    if definition.returned_token_ids:
        try:
            rules.check_returned_token_ids(definition.returned_token_ids, num_labels, rules.PARAMETERS)
        except rules.NotServable as e:
            raise ModelConfigError(str(e)) from None
