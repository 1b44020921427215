"""Snippets that show the match: a window of the best passage around the query's terms.

PostgreSQL picks the window (`ts_headline` over the passage, the query's terms OR-ed,
at most `WINDOW_WORDS` words, the stretch holding the most terms). It marks the terms with
two control characters; here the window is found back in the passage (so its offsets in
the document are exact), the marks become the documented markers `**` ... `**`, and each
highlighted word's offsets are kept. When no term is in the passage (a hit found by
meaning only), the snippet is the passage's first `SNIPPET_CHARS` characters, cut at a
word.

Offsets are character offsets into the document's content (Python `str` indices):
`content[start:end]` is the snippet without its markers, `content[a:b]` each highlight.
"""

from __future__ import annotations

from dataclasses import dataclass

from kb_mcp.db.documents import SNIPPET_CHARS

__all__ = [
    "HEADLINE_OPTIONS",
    "MARK_CLOSE",
    "MARK_OPEN",
    "Snippet",
    "build_snippet",
]

WINDOW_WORDS = 45
MARK_OPEN = "**"
MARK_CLOSE = "**"
_START = "\x02"
_STOP = "\x03"
HEADLINE_OPTIONS = (
    f'StartSel="{_START}", StopSel="{_STOP}", MaxWords={WINDOW_WORDS}, MinWords=15,'
    " ShortWord=2, MaxFragments=0, HighlightAll=false"
)
"""`ts_headline`'s options: one window of at most `WINDOW_WORDS` words, terms marked."""


@dataclass(frozen=True, slots=True)
class Snippet:
    """A window of a document around its matched terms."""

    text: str
    """The window, each matched term between `MARK_OPEN` and `MARK_CLOSE`."""
    start: int
    end: int
    highlights: tuple[tuple[int, int], ...] = ()
    """(start, end) of each highlighted term, offsets in the document."""


def _plain(passage: str, passage_start: int) -> Snippet:
    if len(passage) <= SNIPPET_CHARS:
        return Snippet(passage, passage_start, passage_start + len(passage))
    cut = passage.rfind(" ", 0, SNIPPET_CHARS)
    end = cut if cut > SNIPPET_CHARS // 2 else SNIPPET_CHARS
    text = passage[:end].rstrip()
    return Snippet(text + "\u2026", passage_start, passage_start + len(text))


def build_snippet(passage: str, passage_start: int, headline: str | None) -> Snippet:
    """The snippet of `passage` (at `passage_start` in its document) from its `headline`."""
    if not headline or _START not in headline:
        return _plain(passage, passage_start)
    # Parts of one word (`kestrel-7` is `kestrel` and `-7` to the parser): one highlight.
    headline = headline.replace(_STOP + _START, "")
    plain = headline.replace(_START, "").replace(_STOP, "")
    at = passage.find(plain)
    if at < 0 or _START in passage or _STOP in passage:
        return _plain(passage, passage_start)
    marks: list[tuple[int, int]] = []
    out: list[str] = []
    pos = 0  # offset in `plain`
    opened = -1
    for ch in headline:
        if ch == _START:
            opened = pos
            out.append(MARK_OPEN)
        elif ch == _STOP:
            if opened >= 0:
                marks.append((opened, pos))
            opened = -1
            out.append(MARK_CLOSE)
        else:
            out.append(ch)
            pos += 1
    base = passage_start + at
    text = "".join(out)
    if len(plain) > SNIPPET_CHARS:
        # A window of long words: keep its start, where the best terms are.
        cut = max(plain.rfind(" ", 0, SNIPPET_CHARS), SNIPPET_CHARS // 2)
        kept = [(a, b) for a, b in marks if b <= cut]
        return _snippet_of(plain[:cut].rstrip(), base, kept)
    return Snippet(
        text=text,
        start=base,
        end=base + len(plain),
        highlights=tuple((base + a, base + b) for a, b in marks),
    )


def _snippet_of(plain: str, base: int, marks: list[tuple[int, int]]) -> Snippet:
    pieces: list[str] = []
    last = 0
    for a, b in marks:
        pieces += [plain[last:a], MARK_OPEN, plain[a:b], MARK_CLOSE]
        last = b
    pieces.append(plain[last:])
    return Snippet(
        text="".join(pieces) + "\u2026",
        start=base,
        end=base + len(plain),
        highlights=tuple((base + a, base + b) for a, b in marks),
    )
