"""Chunking: slices of the text, within the limit, covering it, deterministic."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb_mcp.embeddings.chunking import MAX_CHUNK_CHARS, OVERLAP_CHARS, split_into_chunks

_WORDS = st.sampled_from(
    ["alpha", "beta", "gamma.", "delta!", "epsilon?", "zeta,", "x" * 70, "y" * 1300, "é", "\u2026"]
)
_SEPARATORS = st.sampled_from([" ", " ", " ", "\n", "\n\n", "  \n \n", "\t"])
_TEXTS = st.lists(st.tuples(_WORDS, _SEPARATORS), max_size=300).map(
    lambda parts: "".join(word + sep for word, sep in parts)
)


def _covered(text: str, spans: list[tuple[int, int]]) -> set[int]:
    return {i for start, end in spans for i in range(start, end)}


@settings(max_examples=150, deadline=None)
@given(text=_TEXTS | st.text(max_size=3000), max_chars=st.sampled_from([40, 200, 1000]))
def test_chunks_are_trimmed_slices_within_the_limit_covering_the_text(
    text: str, max_chars: int
) -> None:
    """Every non-space character is in a chunk; no chunk is empty or over the limit."""
    overlap = max_chars // 5
    chunks = split_into_chunks(text, max_chars=max_chars, overlap_chars=overlap)
    for n, chunk in enumerate(chunks):
        assert chunk.ordinal == n
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text
        assert chunk.text == chunk.text.strip()
        assert len(chunk.text) <= max_chars
    spans = [(c.start, c.end) for c in chunks]
    non_space = {i for i, ch in enumerate(text) if not ch.isspace()}
    assert non_space <= _covered(text, spans)
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start
        assert before.end < after.end
        assert before.end - after.start <= overlap
    assert split_into_chunks(text, max_chars=max_chars, overlap_chars=overlap) == chunks


def test_blank_text_has_no_chunks() -> None:
    """Whitespace only gives nothing to embed."""
    assert split_into_chunks("") == []
    assert split_into_chunks(" \n\t \n ") == []


def test_short_text_is_one_chunk() -> None:
    """A text under the limit is a single chunk, trimmed."""
    (chunk,) = split_into_chunks("  Hello world. Second sentence.\n")
    assert chunk.text == "Hello world. Second sentence."


def test_paragraphs_end_a_chunk_once_it_is_half_full() -> None:
    """A new paragraph starts a new chunk when the current one is past half the limit."""
    first = "One sentence here. " * 30  # about 570 characters
    second = "Another topic entirely. " * 5
    chunks = split_into_chunks(f"{first}\n\n{second}")
    assert [c.text for c in chunks] == [first.strip(), second.strip()]


def test_small_paragraphs_are_packed_together() -> None:
    """Short paragraphs share a chunk rather than one chunk each."""
    text = "\n\n".join(f"Paragraph {i}." for i in range(10))
    (chunk,) = split_into_chunks(text)
    assert chunk.text == text


def test_a_long_paragraph_overlaps_by_whole_sentences() -> None:
    """Within a paragraph the next chunk repeats the last sentences of the previous one."""
    text = " ".join(f"Sentence number {i} is about the topic at hand." for i in range(60))
    chunks = split_into_chunks(text)
    assert len(chunks) >= 3
    for before, after in itertools.pairwise(chunks):
        shared = text[after.start : before.end]
        assert 0 < len(shared) <= OVERLAP_CHARS
        assert shared.startswith("Sentence number")
        assert shared.endswith("at hand.")
        assert len(before.text) <= MAX_CHUNK_CHARS


def test_a_word_longer_than_the_limit_is_cut_hard() -> None:
    """Text without any space is cut at exactly the limit."""
    chunks = split_into_chunks("x" * 2500, max_chars=1000, overlap_chars=100)
    assert [len(c.text) for c in chunks] == [1000, 1000, 500]


@pytest.mark.parametrize(("max_chars", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_limits_are_refused(max_chars: int, overlap: int) -> None:
    """The limit must be positive and the overlap smaller than it."""
    with pytest.raises(ValueError, match="must"):
        split_into_chunks("text", max_chars=max_chars, overlap_chars=overlap)
