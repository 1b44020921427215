"""kb_search's query language: what is a word, a phrase, an exclusion, and the bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb_mcp.db.querytext import ParsedQuery, QueryBounds, parse_query
from kb_mcp.errors import ToolInputError

BOUNDS = QueryBounds()


def test_words_phrases_and_exclusions() -> None:
    """Words and phrases rank, `-word` and `-"phrase"` exclude; duplicates count once."""
    parsed = parse_query('jsonb_set "dutch oven" -walsender -"legacy mode" 40P01 JSONB_SET')
    assert parsed == ParsedQuery(
        terms=("jsonb_set", "dutch oven", "40P01"), negations=("walsender", "legacy mode")
    )
    assert parsed.text == "jsonb_set dutch oven 40P01"


@pytest.mark.parametrize(
    "query", ["--retention-in-days", "s3 rb --force", "a - b", "x->y", "-", "--"]
)
def test_a_minus_before_anything_but_a_letter_digit_or_quote_is_a_word(query: str) -> None:
    """Command-line options and lone dashes are words, never exclusions."""
    assert parse_query(query).negations == ()


def test_an_unclosed_quote_runs_to_the_end() -> None:
    """`"a b` is the phrase `a b`; an empty phrase is nothing."""
    assert parse_query('x "a   b').terms == ("x", "a b")
    assert parse_query('"" -""').terms == ()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (" ".join(f"w{n}" for n in range(41)), "41 words, phrases and exclusions, at most 40"),
        ("a " + " ".join(f"-w{n}" for n in range(9)), "9 exclusions (-word), at most 8"),
        (" ".join(f'"p{n} q"' for n in range(9)), "9 quoted phrases, at most 8"),
        ('"' + " ".join("w" * 9) + '"', "9 words in one phrase, at most 8"),
        (" ".join(f"w{n}" for n in range(33)), "33 distinct words and phrases, at most 32"),
    ],
)
def test_each_bound_is_refused_with_its_limit(query: str, message: str) -> None:
    """Every bound has its own message naming the count and the limit."""
    with pytest.raises(ToolInputError) as refused:
        parse_query(query)
    assert str(refused.value) == f"query has {message} are accepted"


_TOKEN = st.one_of(
    st.from_regex(r"-?[A-Za-z0-9_.:/-]{1,12}", fullmatch=True),
    st.from_regex(r'-?"[a-z ]{0,40}"?', fullmatch=True),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_TOKEN, max_size=80), st.sampled_from([" ", "  ", "\t", "\n"]))
def test_any_query_is_refused_by_a_limit_or_parsed_within_bounds(
    tokens: list[str], separator: str
) -> None:
    """Whatever is typed, the parse either names a bound it exceeds or stays within all."""
    query = separator.join(tokens)
    try:
        parsed = parse_query(query)
    except ToolInputError as exc:
        refused = str(exc)
        assert "at most" in refused
        return
    assert len(parsed.terms) <= BOUNDS.terms
    assert len(parsed.negations) <= BOUNDS.negations
    assert len(parsed.terms) + len(parsed.negations) <= BOUNDS.total
    assert all(len(t.split()) <= BOUNDS.phrase_words for t in parsed.terms)
