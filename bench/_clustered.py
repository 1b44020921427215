"""A second data set for `bench_search`: synthetic vectors with cluster structure.

Not text and not a model's embeddings: a stand-in for what real embedding models give
(documents about a few subjects, their passages close to one another, most pairs of
texts unrelated), against which the hashed prose set, close to uniformly spread over
1,536 dimensions, is the hard case. Built from fixed random unit vectors (Gaussian,
normalised): `TOPICS` subject directions and `NOISE` directions of variation.

- a document: two subjects (weights 1.0 and 0.7) and one noise direction (0.5), normalised:
  its centre;
- each of its 1-4 chunks: the centre, one more subject (0.6) and one more noise direction
  (0.4), normalised;
- a query: a random document's centre, one subject (0.6) and one noise direction (0.5),
  normalised: a question about that document, its own chunks near but not identical.

Every vector is a normalised sum of at most five directions: low intrinsic dimension
locally and clusters globally (documents sharing a subject), as real embeddings have.
Deterministic for a seed.
"""

from __future__ import annotations

import math
import random

__all__ = ["ClusteredCorpus"]

TOPICS = 512
NOISE = 1024


def _unit(rng: random.Random, dimensions: int) -> list[float]:
    vector = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector]


def _mix(terms: list[tuple[float, list[float]]]) -> list[float]:
    (wa, a), (wb, b), (wc, c) = terms
    vector = [wa * x + wb * y + wc * z for x, y, z in zip(a, b, c, strict=True)]
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector]


class ClusteredCorpus:
    """Documents (title, content, chunks as (text, vector)) and query vectors."""

    def __init__(self, rng: random.Random, dimensions: int) -> None:
        self._rng = rng
        self._topics = [_unit(rng, dimensions) for _ in range(TOPICS)]
        self._noise = [_unit(rng, dimensions) for _ in range(NOISE)]
        self._centres: list[tuple[int, int, int]] = []

    def _centre(self, spec: tuple[int, int, int]) -> list[float]:
        first, second, noise = spec
        return _mix(
            [(1.0, self._topics[first]), (0.7, self._topics[second]), (0.5, self._noise[noise])]
        )

    def document(self, n: int) -> tuple[str, str, list[tuple[str, list[float]]]]:
        rng = self._rng
        spec = (rng.randrange(TOPICS), rng.randrange(TOPICS), rng.randrange(NOISE))
        self._centres.append(spec)
        centre = self._centre(spec)
        chunks = [
            (
                f"passage {k} of clustered document {n}",
                _mix(
                    [
                        (1.0, centre),
                        (0.6, rng.choice(self._topics)),
                        (0.4, rng.choice(self._noise)),
                    ]
                ),
            )
            for k in range(rng.randint(1, 4))
        ]
        content = " ".join(text for text, _ in chunks)
        return f"clustered document {n}", content, chunks

    def query(self) -> list[float]:
        """A vector near a random document stored so far (at least one must be)."""
        rng = self._rng
        centre = self._centre(rng.choice(self._centres))
        return _mix(
            [(1.0, centre), (0.6, rng.choice(self._topics)), (0.5, rng.choice(self._noise))]
        )
