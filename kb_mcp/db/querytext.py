"""kb_search's query language, parsed and bounded before any of it reaches PostgreSQL.

A query is words, `"quoted phrases"` and exclusions (`-word`, `-"a phrase"`: a minus
before a letter, digit or quote), separated by spaces. Everything else is a word as
written: `jsonb_set`, `40P01`, `pg_hba.conf`, `--retention-in-days` and `ERROR:` are
words. An unclosed quote runs to the end of the query; `or`/`OR` is a word (an English
stop word, so it matches nothing: every term of a query is optional anyway, documents
having more of them rank higher).

Each term becomes `phraseto_tsquery('english', term)` in SQL (`kb_mcp.db.keyword`): a
word the parser splits (`jsonb_set` is `jsonb <-> set`) must appear as written, in that
order. Stop words become empty queries and are dropped there.

Bounds (`QueryBounds`), checked by counting before anything is built, so refusing a query
costs nothing whatever its size: at most 32 distinct terms (words and phrases), 8
phrases, 8 words in a phrase, 8 exclusions, 40 in all. The cost of a keyword search is
one pass over the chunks holding any of the terms plus, per such chunk, one test per
term; exclusions are one index lookup each, of the documents to drop. A query made only of
exclusions has no term: it matches nothing by keyword (a negation alone would match
nearly every document, PostgreSQL's `!a & !b` costs rows x terms).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kb_mcp.errors import ToolInputError

__all__ = ["ParsedQuery", "QueryBounds", "parse_query"]


@dataclass(frozen=True, slots=True)
class QueryBounds:
    """How much one query may ask for (see the module docstring)."""

    terms: int = 32
    phrases: int = 8
    phrase_words: int = 8
    negations: int = 8
    total: int = 40


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A query's terms (words and phrases, ranked) and exclusions, each as written."""

    terms: tuple[str, ...]
    negations: tuple[str, ...]

    @property
    def text(self) -> str:
        """The positive part of the query, for the embedding: exclusions say what not to find."""
        return " ".join(self.terms)


def _tokens(query: str) -> list[tuple[bool, bool, str]]:
    """(negated, quoted, text) of each token, in order; empty texts dropped."""
    tokens: list[tuple[bool, bool, str]] = []
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        # `-word` and `-"a phrase"` exclude; `--option`, `-` alone and `->` are words.
        negated = query[i] == "-" and i + 1 < n and (query[i + 1].isalnum() or query[i + 1] == '"')
        if negated:
            i += 1
        if query[i] == '"':
            close = query.find('"', i + 1)
            end = n if close < 0 else close
            text = " ".join(query[i + 1 : end].split())
            i = end + 1
            quoted = True
        else:
            end = i
            while end < n and not query[end].isspace():
                end += 1
            text = query[i:end]
            i = end
            quoted = False
        if text.strip('"'):
            tokens.append((negated, quoted, text))
    return tokens


def _refuse(what: str, count: int, limit: int) -> ToolInputError:
    return ToolInputError(f"query has {count} {what}, at most {limit} are accepted")


def parse_query(query: str, bounds: QueryBounds | None = None) -> ParsedQuery:
    """The query's distinct terms and exclusions, or `ToolInputError` naming the bound exceeded.

    The caller has already bounded the query's length (`check_query`), so tokenising it
    is linear in a few thousand characters; the bounds are counted before any term is kept.
    """
    b = bounds or QueryBounds()
    tokens = _tokens(query)
    negations = [t for t in tokens if t[0]]
    phrases = [t for t in tokens if t[1] and not t[0]]
    if len(tokens) > b.total:
        raise _refuse("words, phrases and exclusions", len(tokens), b.total)
    if len(negations) > b.negations:
        raise _refuse("exclusions (-word)", len(negations), b.negations)
    if len(phrases) > b.phrases:
        raise _refuse("quoted phrases", len(phrases), b.phrases)
    for _, quoted, text in tokens:
        words = len(text.split())
        if quoted and words > b.phrase_words:
            raise _refuse("words in one phrase", words, b.phrase_words)
    terms = _distinct(t[2] for t in tokens if not t[0])
    if len(terms) > b.terms:
        raise _refuse("distinct words and phrases", len(terms), b.terms)
    return ParsedQuery(terms=terms, negations=_distinct(t[2] for t in negations))


def _distinct(texts: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for text in texts:
        seen.setdefault(text.casefold(), text)
    return tuple(seen.values())
