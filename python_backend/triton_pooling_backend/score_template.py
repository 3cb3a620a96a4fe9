"""A seq_classify model's score template (`score_template`): a Jinja template over `query`, `document` and an
optional `instruction` that renders every (TEXT, TEXT_PAIR) pair into the one text the model reads — an LLM
reranker's prompt (docs/templates/). The rendered text is tokenized as a single text, special tokens added, as
transformers' tokenizer would tokenize it; TEXT_PAIR is then not tokenized as a pair.

jinja2 is imported only by a model that has a template, and renders in Jinja's immutable sandbox (a template is
configuration, not code: it cannot reach Python objects)."""

from __future__ import annotations

import dataclasses

from triton_pooling_contract.tasks import Tensor

from .errors import InvalidInputError, ModelConfigError
from .request_parsing import TextInput

# Template variables: the pair, and an instruction (no request sets it today: a template writes its default).
VARIABLES = ("query", "document", "instruction")


def compile_template(text: str, source: str = "parameter 'score_template'"):
    """The compiled template; a syntax error, or jinja2 missing, is refused naming `source`."""
    try:
        from jinja2 import TemplateSyntaxError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise ModelConfigError(f"{source} needs the jinja2 package, which is not installed where this model runs: "
                               "pip install jinja2") from None
    environment = ImmutableSandboxedEnvironment(keep_trailing_newline=True, autoescape=False)
    try:
        template = environment.from_string(text)
    except TemplateSyntaxError as e:
        raise ModelConfigError(f"{source} is not a valid Jinja template: line {e.lineno}: {e.message}") from None
    missing = [v for v in ("query", "document") if v not in _names(environment, text)]
    if missing:
        raise ModelConfigError(f"{source} never uses {', '.join(missing)}; a score template renders "
                               "{{ query }} and {{ document }} (and optionally {{ instruction }})")
    return template


def _names(environment, text: str) -> set[str]:
    from jinja2 import meta

    return meta.find_undeclared_variables(environment.parse(text))


def render(template, query: str, document: str, instruction: str | None = None) -> str:
    values = {"query": query, "document": document}
    if instruction is not None:
        values["instruction"] = instruction
    return template.render(**values)


class ScoreTemplate:
    """Applies a model's template to each request's pairs (None: the model has none, inputs pass unchanged)."""

    def __init__(self, text: str | None):
        self._template = compile_template(text) if text is not None else None

    @property
    def active(self) -> bool:
        return self._template is not None

    def apply(self, inputs: list[TextInput]) -> list[TextInput]:
        if self._template is None:
            return inputs
        return [self._one(item, row) for row, item in enumerate(inputs)]

    def _one(self, item: TextInput, row: int) -> TextInput:
        if item.input_ids is not None:  # pre-tokenized: the caller formatted it
            return item
        if item.text_pair is None:
            raise InvalidInputError(
                f"{Tensor.TEXT}[{row}] has no {Tensor.TEXT_PAIR}: this model scores (query, document) pairs through its "
                f"score template, so send the query as {Tensor.TEXT} and the document as {Tensor.TEXT_PAIR} (or "
                f"pre-tokenized {Tensor.INPUT_IDS} of a prompt you formatted)")
        try:
            text = render(self._template, item.text, item.text_pair)
        except Exception as e:  # a template error at render time (e.g. a filter on a missing value)
            raise InvalidInputError(f"the model's score template failed on {Tensor.TEXT}[{row}]: "
                                    f"{type(e).__name__}: {e}") from None
        return dataclasses.replace(item, text=text, text_pair=None)
