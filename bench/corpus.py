"""A fixed, seeded corpus of English-like sentences in three length classes and their mix.

Seeded word choice from a built-in vocabulary: the same texts on every machine, no downloads.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

# Words per text for each length class (inclusive bounds).
LENGTHS = {"short": (5, 12), "medium": (20, 40), "long": (80, 150)}
# The mix: how many of each class, per 10 texts.
MIX_PARTS = {"short": 5, "medium": 4, "long": 1}
CORPORA = (*LENGTHS, "mix")
DEFAULT_SEED = 20251123

_VOCABULARY = (
    "the a of and to in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there been one all we their has would when if can more will other its into time only new "
    "some could these two may first then do any like my now over such our man me even most made after also did many "
    "before must through back years where much your way well down should because each just those people how too "
    "little state good very make world still own see men work long get here between both life being under never day "
    "same another know while last might us great old year off come since against go came right used take three "
    "server model request batch token vector search query document answer question language network memory latency "
    "throughput sentence embedding cluster river mountain city market music history science water light energy "
    "garden window family morning evening kitchen letter travel picture student teacher doctor engine signal forest"
).split()


def make_text(rng: random.Random, words: tuple[int, int]) -> str:
    count = rng.randint(*words)
    body = " ".join(rng.choice(_VOCABULARY) for _ in range(count))
    return body[0].upper() + body[1:] + "."


def make_corpus(name: str, size: int, seed: int = DEFAULT_SEED) -> list[str]:
    """`size` texts of one length class, or of the mix (classes interleaved by MIX_PARTS)."""
    if name not in CORPORA:
        raise ValueError(f"corpus {name!r} is unknown; allowed: {', '.join(CORPORA)}")
    rng = random.Random(f"{seed}:{name}")
    if name != "mix":
        return [make_text(rng, LENGTHS[name]) for _ in range(size)]
    classes = [c for c, n in MIX_PARTS.items() for _ in range(n)]
    return [make_text(rng, LENGTHS[rng.choice(classes)]) for _ in range(size)]


def perf_analyzer_data(texts: list[str], truncate: int | None = None) -> dict:
    """perf_analyzer `--input-data` JSON: one single-text request per entry, cycled through;
    `truncate` adds TRUNCATE_PROMPT_TOKENS (models whose tokenizer makes long texts too long)."""
    extra = {} if truncate is None else {"TRUNCATE_PROMPT_TOKENS": {"content": [truncate], "shape": [1]}}
    return {"data": [{"TEXT": {"content": [t], "shape": [1]}, **extra} for t in texts]}


def write_perf_analyzer_data(texts: list[str], path: Path, truncate: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(perf_analyzer_data(texts, truncate)))
    return path
