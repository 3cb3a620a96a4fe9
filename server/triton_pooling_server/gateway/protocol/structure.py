"""A bound on what a body costs to parse, checked on its bytes before it is parsed. orjson turns 8 MiB of
`[{},{},...]` into 2.8 million dicts (+235 MiB) that no endpoint can use; a request any endpoint can use
holds a few JSON objects and arrays per input (a list of token ids, a `{"text": ...}` document), so a body
with far more is refused (400) unparsed. Counting brackets is a C scan (~2 ms for 8 MiB); only a body with
more brackets than allowed is scanned again without its strings (a text may hold brackets of its own)."""

from __future__ import annotations

import re

from ..errors import invalid

# Containers a request may hold per input, plus room for fields this gateway ignores (as vLLM does).
PER_INPUT = 4
SLACK = 1024
# A JSON string, escapes included; unrolled so it runs in linear time without backtracking.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def max_containers(max_inputs: int) -> int:
    return PER_INPUT * max_inputs + SLACK


def check_structure(raw: bytes, max_inputs: int) -> None:
    limit = max_containers(max_inputs)
    if raw.count(b"{") + raw.count(b"[") <= limit:
        return
    outside_strings = _STRING.sub(b"", raw)
    count = outside_strings.count(b"{") + outside_strings.count(b"[")
    if count > limit:
        raise invalid(f"the request body holds {count} JSON objects and arrays; a request to this gateway holds at "
                      f"most {limit} ({PER_INPUT} per input, --max-inputs {max_inputs}, + {SLACK}): it would cost "
                      "more memory to parse than any endpoint can use")
