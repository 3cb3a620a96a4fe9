"""ColBERT late interaction as sentence-transformers' MultiVectorEncoder computes it, read from a folder's JSON:
PyLate's layout (flat keys in config_sentence_transformers.json, a `pylate.models.Dense.Dense` projection) and
MultiVectorEncoder's own (the knobs on the Transformer's sentence_bert_config.json, a MultiVectorMask module).

Per role (PROMPT_NAME "query" / "document"; none counts as a document, without a prefix):
  prefix     the role's prompt, prepended as text (its marker token registered as one special token)
  length     right truncation, special tokens counted ([CLS] + first L-2 pieces + [SEP])
  expansion  queries: padded with [MASK] to the expansion length, attended to only when `attend`; their rows kept
  skiplist   documents: rows of skiplist tokens (punctuation) left out
then the Dense projection on every token and L2 normalization. Standard library only.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Any, Mapping

QUERY, DOCUMENT = "query", "document"
# config_sentence_transformers.json model_type of the folders this reads.
MODEL_TYPES = ("ColBERT", "MultiVectorEncoder")
# PyLate's flat keys: their presence marks a PyLate folder even without model_type (pre-v3 saves).
PYLATE_KEYS = ("query_prefix", "document_prefix", "query_length", "document_length", "do_query_expansion",
               "attend_to_expansion_tokens", "skiplist_words")
EXPANSION_STRATEGIES = ("fixed", "min")
PYLATE_DEFAULT_QUERY_LENGTH = 32
SERVED_SIMILARITIES = (None, "MaxSim", "maxsim")


@dataclasses.dataclass(frozen=True)
class Expansion:
    strategy: str  # fixed: every query exactly `length` wide; min: at least `length`
    length: int
    attend: bool  # the expansion tokens' attention mask (PyLate's attend_to_expansion_tokens)
    token: Any = None  # None: the tokenizer's mask token (a custom one is refused)


@dataclasses.dataclass(frozen=True)
class LateInteraction:
    prompts: tuple[tuple[str, str], ...]  # role -> prefix text (PyLate's prefixes merged into its prompts)
    prefixes: tuple[str, ...]  # markers a legacy (PyLate) folder's tokenizer must register as single special tokens
    query_length: int | None
    document_length: int | None
    expansion: Expansion | None
    skiplist_words: tuple[str, ...]
    skiplist_tasks: tuple[str, ...] = (DOCUMENT,)
    legacy: bool = False  # PyLate's layout: MultiVectorEncoder appends MultiVectorMask and Normalize itself
    expansion_token: str | None = None  # what expands queries: the tokenizer's mask token, else its eos token
    problems: tuple[str, ...] = ()  # options read but not served exactly (rules.check_pipeline refuses with them)

    def length_for(self, role: str | None, model_max: int) -> int:
        """The tokens a text of `role` keeps (MultiVectorEncoder's max_length for its task)."""
        if role == QUERY:
            if self.expansion is not None and self.expansion.strategy == "fixed":
                return self.expansion.length
            if self.expansion is not None:
                return max(self.query_length, self.expansion.length) if self.query_length else model_max
            return self.query_length or model_max
        return self.document_length or model_max


def read_late_interaction(st_config: Mapping[str, Any], transformer_config: Mapping[str, Any],
                          mask_config: Mapping[str, Any] | None, has_normalize: bool,
                          tokenizer_config: Mapping[str, Any]) -> LateInteraction | None:
    """None unless the folder is a ColBERT one (its model_type, or PyLate's keys)."""
    late = _read(st_config, transformer_config, mask_config, has_normalize)
    if late is None:
        return None
    token = _token_text(tokenizer_config.get("mask_token")) or _token_text(tokenizer_config.get("eos_token"))
    return dataclasses.replace(late, expansion_token=token)


def _token_text(value) -> str | None:
    """tokenizer_config.json writes a token as text or as an AddedToken dict ({"content": ...})."""
    return value.get("content") if isinstance(value, dict) else value


def _read(st_config, transformer_config, mask_config, has_normalize) -> LateInteraction | None:
    legacy = any(k in st_config for k in PYLATE_KEYS)
    if st_config.get("model_type") not in MODEL_TYPES and not legacy:
        return None
    problems = []
    if st_config.get("similarity_fn_name") not in SERVED_SIMILARITIES:
        problems.append(f"similarity_fn_name {st_config.get('similarity_fn_name')!r} (served: MaxSim)")
    prompts = {str(k): str(v) for k, v in (st_config.get("prompts") or {}).items()}
    if legacy:
        return _pylate(st_config, prompts, problems)
    if transformer_config.get("processing_kwargs"):
        problems.append(f"the Transformer's processing_kwargs {transformer_config['processing_kwargs']!r}")
    expansion = transformer_config.get("query_expansion")
    mask = mask_config or {}
    if mask_config is None:
        problems.append("no MultiVectorMask module (MultiVectorEncoder then returns no expansion rows)")
    if mask.get("keep_only_token_ids"):
        problems.append(f"MultiVectorMask keep_only_token_ids {mask['keep_only_token_ids']!r}")
    if not has_normalize:
        problems.append("no Normalize module after the projection")
    return LateInteraction(
        tuple(sorted(prompts.items())), (), transformer_config.get("query_length"),
        transformer_config.get("document_length"), _expansion(expansion, problems),
        tuple(mask.get("skiplist_words") or ()), tuple(mask.get("skiplist_tasks") or (DOCUMENT,)), legacy=False,
        problems=tuple(problems))


def _pylate(st: Mapping[str, Any], prompts: dict[str, str], problems: list[str]) -> LateInteraction:
    """PyLate's flat keys as MultiVectorEncoder promotes them: prefixes into the prompts, query_length into a
    fixed expansion unless do_query_expansion is false, punctuation as the default skiplist."""
    prefixes = []
    for key, role in (("query_prefix", QUERY), ("document_prefix", DOCUMENT)):
        if key in st:
            prefix = str(st[key] or "")
            prefixes.append(prefix)
            prompts[role] = prefix + prompts.get(role, "").removeprefix(prefix)
    expansion = None
    query_length = st.get("query_length")
    if st.get("do_query_expansion") is not False:
        attend = bool(st.get("attend_to_expansion_tokens", st.get("attend_to_mask_tokens")))
        expansion = Expansion("fixed", int(query_length or PYLATE_DEFAULT_QUERY_LENGTH), attend)
        query_length = None
    skiplist = st.get("skiplist_words")
    return LateInteraction(tuple(sorted(prompts.items())), tuple(p for p in prefixes if p.strip()), query_length,
                           st.get("document_length"), expansion,
                           tuple(string.punctuation if skiplist is None else skiplist), (DOCUMENT,), legacy=True,
                           problems=tuple(problems))


def _expansion(value, problems: list[str]) -> Expansion | None:
    if not value:
        return None
    expansion = Expansion(str(value.get("strategy", "fixed")), int(value.get("length") or PYLATE_DEFAULT_QUERY_LENGTH),
                          bool(value.get("attend")), value.get("token"))
    if expansion.strategy not in EXPANSION_STRATEGIES:
        problems.append(f"query_expansion strategy {expansion.strategy!r} (served: {', '.join(EXPANSION_STRATEGIES)})")
    if expansion.token is not None:
        problems.append(f"query_expansion token {expansion.token!r} (served: the tokenizer's mask token)")
    return expansion
