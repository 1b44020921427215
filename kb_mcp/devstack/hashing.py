"""Deterministic text embeddings by feature hashing, for the local OpenAI stand-in.

Each lowercase word (``\\w+``) and each pair of neighbouring words is hashed with
BLAKE2b to a vector index and a sign; the signed weights (1.0 for a word, 0.5
for a bigram) are summed and the vector is L2-normalised. Texts that share
words get a high cosine similarity, so a query about a document's subject ranks
that document first, which is all the local stack and the tests need from an
embedding model. The same text always gives the same vector, on every machine.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re

__all__ = ["hashed_embedding", "token_count"]

_WORD = re.compile(r"\w+")
_UNIGRAM_WEIGHT = 1.0
_BIGRAM_WEIGHT = 0.5
_HASH_PERSON = b"kb-mcp-embed"


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def token_count(text: str) -> int:
    """Return the number of word tokens in ``text`` (used for the usage figures)."""
    return len(_words(text))


def _slot(feature: str, dimensions: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8, person=_HASH_PERSON).digest()
    value = int.from_bytes(digest, "little")
    sign = 1.0 if value & 1 else -1.0
    return (value >> 1) % dimensions, sign


def hashed_embedding(text: str, dimensions: int) -> list[float]:
    """Return a unit-length embedding of ``text`` with ``dimensions`` components.

    Text without any word yields a fixed unit vector (every component equal).
    """
    if dimensions < 1:
        raise ValueError("dimensions must be at least 1")
    words = _words(text)
    vector = [0.0] * dimensions
    for word in words:
        index, sign = _slot(word, dimensions)
        vector[index] += sign * _UNIGRAM_WEIGHT
    for first, second in itertools.pairwise(words):
        index, sign = _slot(f"{first} {second}", dimensions)
        vector[index] += sign * _BIGRAM_WEIGHT
    norm = math.sqrt(math.fsum(component * component for component in vector))
    if norm == 0.0:
        # No words, or (vanishingly rare) features that cancel out exactly.
        return [1.0 / math.sqrt(dimensions)] * dimensions
    return [component / norm for component in vector]
