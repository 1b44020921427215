"""Split a document into passages small enough to embed well, deterministically.

The text is cut into pieces at natural boundaries: paragraphs (blank lines), then
sentences, then whitespace, and only as a last resort inside a word longer than the
limit. Pieces are packed greedily into chunks of at most `max_chars` characters; a chunk
also ends at a paragraph break once it is half full, so passages stay on one topic.
When a chunk ends inside a paragraph, the next one starts with the last sentence(s) of
the previous one, up to `overlap_chars`, so a passage cut in two is still found whole.

Every chunk is an exact slice `text[start:end]` of the input that starts and ends with a
non-space character; together the chunks cover every non-space character of the text;
the same text always gives the same chunks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_CHUNK_CHARS", "OVERLAP_CHARS", "Chunk", "split_into_chunks"]

MAX_CHUNK_CHARS = 1000
OVERLAP_CHARS = 200
_PARAGRAPH_FILL = 0.5
"""A chunk at least this full ends at the next paragraph break."""

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]]*(?=\s)")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage of a document: its position and its text (`text == source[start:end]`)."""

    ordinal: int
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class _Piece:
    start: int
    end: int
    opens_paragraph: bool


def split_into_chunks(
    text: str, *, max_chars: int = MAX_CHUNK_CHARS, overlap_chars: int = OVERLAP_CHARS
) -> list[Chunk]:
    """The chunks of `text` in order; empty when the text has no non-space character."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    if not 0 <= overlap_chars < max_chars:
        raise ValueError("overlap_chars must be at least 0 and below max_chars")
    pieces = _pieces(text, max_chars)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(pieces):
        start = pieces[i].start
        j = i
        while j + 1 < len(pieces) and pieces[j + 1].end - start <= max_chars:
            full = pieces[j].end - start >= max_chars * _PARAGRAPH_FILL
            if pieces[j + 1].opens_paragraph and full:
                break
            j += 1
        spans.append((start, pieces[j].end))
        i = _next_start(pieces, i, j, max_chars, overlap_chars)
    return [Chunk(n, s, e, text[s:e]) for n, (s, e) in enumerate(spans)]


def _next_start(pieces: list[_Piece], i: int, j: int, max_chars: int, overlap: int) -> int:
    """Index of the piece the next chunk starts with: overlapping within a paragraph."""
    following = j + 1
    if following >= len(pieces) or pieces[following].opens_paragraph:
        return following
    best = following
    for k in range(j, i, -1):
        if pieces[j].end - pieces[k].start > overlap:
            break
        if pieces[following].end - pieces[k].start > max_chars:
            break
        best = k
        if pieces[k].opens_paragraph:
            break
    return best


def _pieces(text: str, max_chars: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    for p_start, p_end in _split(text, 0, len(text), _PARAGRAPH_BREAK, keep_match=False):
        first = True
        for s_start, s_end in _split(text, p_start, p_end, _SENTENCE_END, keep_match=True):
            for w_start, w_end in _fit(text, s_start, s_end, max_chars):
                pieces.append(_Piece(w_start, w_end, first))
                first = False
    return pieces


def _split(
    text: str, start: int, end: int, boundary: re.Pattern[str], *, keep_match: bool
) -> list[tuple[int, int]]:
    """Trimmed, non-empty spans of text[start:end] between matches of `boundary`."""
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in boundary.finditer(text, start, end):
        cut = match.end() if keep_match else match.start()
        span = _trim(text, cursor, cut)
        if span is not None:
            spans.append(span)
        cursor = match.end()
    span = _trim(text, cursor, end)
    if span is not None:
        spans.append(span)
    return spans


def _fit(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut a trimmed span into pieces of at most `max_chars`, at whitespace when possible."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        limit = start + max_chars
        cut = limit
        for index in range(limit, start, -1):
            if text[index].isspace():
                cut = index
                break
        span = _trim(text, start, cut)
        if span is not None:
            pieces.append(span)
        start = cut
        while start < end and text[start].isspace():
            start += 1
    span = _trim(text, start, end)
    if span is not None:
        pieces.append(span)
    return pieces


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
