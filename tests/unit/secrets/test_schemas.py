"""Secret schemas: what parses, what is rejected, and that a rejection never quotes its input."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError
from secretswap.schemas import SecretModel, parse_secret

from kb_mcp.errors import SecretFormatError
from kb_mcp.secrets.schemas import (
    AUTH_TOKEN_MIN_LENGTH,
    AuthTokenSecret,
    OpenAIKeySecret,
    PostgresCredentials,
)
from tests.support.fakes import (
    fake_auth_token,
    fake_openai_key,
    fake_password,
    postgres_secret_json,
)

PG_NAME = "kb-mcp/test/postgres-credentials"
KEY_NAME = "kb-mcp/test/openai-api-key"
TOKEN_NAME = "kb-mcp/test/auth-token"
PG_FIELDS = ("username", "password", "host", "port", "database")
PACKAGE = Path(__file__).resolve().parents[3] / "kb_mcp"

# -- helpers ------------------------------------------------------------------------------


def _pg(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "username": "kb_app",
        "password": fake_password(),
        "host": "db.internal",
        "port": 5432,
        "database": "kb",
    }
    data.update(changes)
    return data


def _format_error(model: type[SecretModel], raw: str, name: str = PG_NAME) -> SecretFormatError:
    with pytest.raises(SecretFormatError) as info:
        parse_secret(model, raw, secret_name=name, region="eu-west-1")
    return info.value


def _parse_or_error(model: type[SecretModel], raw: str) -> SecretModel | SecretFormatError:
    """The parsed model, or the SecretFormatError (any other exception propagates)."""
    try:
        return parse_secret(model, raw, secret_name=PG_NAME)
    except SecretFormatError as exc:
        return exc


def _error_texts(error: BaseException) -> Iterator[str]:
    """Every text an error exposes: str, repr, hint, args, and its whole cause/context chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        yield str(getattr(current, "hint", ""))
        yield str(getattr(current, "message", ""))
        current = current.__cause__ or current.__context__


def _baseline_errors() -> list[str]:
    """Error texts for a corpus of known-bad inputs: the vocabulary messages may use."""
    corpus = [
        "",
        " ",
        "{",
        "[",
        "{}",
        "[]",
        "1",
        "null",
        '"x"',
        '{"a": 1,}',
        '{"a" 1}',
        '{"a": 1 "b": 2}',
        '{"a": "\\x"}',
        '{"a": "\\u12"}',
        '{"a": "tab\there"}',
        '{"a": "open',
        "{} []",
        '{"a":' + "[" * 5000,
        '{"port": 1' + "0" * 5000 + "}",
        json.dumps({"api_key": "short"}),
        json.dumps({"api_key": "with space " * 4}),
        json.dumps({"api_key": 12}),
        json.dumps({"api_key": None}),
        "short",
        "has whitespace inside the key",
    ]
    corpus += [json.dumps(_pg(**{field: value})) for field in PG_FIELDS for value in ("", " ", 0)]
    corpus += [json.dumps(_pg(**{field: None})) for field in PG_FIELDS]
    corpus += [json.dumps(_pg(**{field: [1]})) for field in PG_FIELDS]
    corpus += [json.dumps(_pg(port=v)) for v in ("5432", 5432.5, True, -1, 70000, 10**30)]
    corpus += [json.dumps({k: v for k, v in _pg().items() if k != f}) for f in PG_FIELDS]
    texts: list[str] = []
    for model in (OpenAIKeySecret, PostgresCredentials):
        for raw in corpus:
            try:
                parse_secret(model, raw, secret_name=PG_NAME, region="eu-west-1")
            except SecretFormatError as exc:
                texts.extend(_error_texts(exc))
    return texts


# Our own source code and the messages of the corpus: a "value" that is a word of this text
# (hypothesis also draws string literals from the code under test) is vocabulary, not a leak.
VOCABULARY = "\n".join(
    [
        *_baseline_errors(),
        (PACKAGE / "secrets" / "schemas.py").read_text(encoding="utf-8"),
        (PACKAGE / "errors.py").read_text(encoding="utf-8"),
        PG_NAME,
        KEY_NAME,
    ]
)


def _strings(value: Any) -> Iterator[str]:
    """Every string value inside a JSON document (not keys)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _assert_no_leak(error: SecretFormatError, candidates: list[str]) -> None:
    texts = list(_error_texts(error))
    for candidate in candidates:
        if len(candidate) < 6 or candidate in VOCABULARY:
            continue
        assert not any(candidate in text for text in texts), "error text quotes an input value"


# -- strategies ---------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
random_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)
pg_like_objects = st.fixed_dictionaries(
    {},
    optional={
        "username": st.text(max_size=20) | json_values,
        "password": st.text(max_size=40) | json_values,
        "host": st.text(max_size=20) | json_values,
        "port": st.integers() | st.text(max_size=8) | json_values,
        "database": st.text(max_size=20) | json_values,
        "dbname": st.text(max_size=20) | json_values,
        "api_key": st.text(max_size=60) | json_values,
    },
).flatmap(lambda known: random_objects.map(lambda extra: {**extra, **known}))
any_documents = json_values | random_objects | pg_like_objects
models = st.sampled_from([OpenAIKeySecret, PostgresCredentials])
hypothesis_settings = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# -- property-based -----------------------------------------------------------------------


@hypothesis_settings
@given(model=models, raw=st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_format_error_without_quoting_it(
    model: type[SecretModel], raw: str
) -> None:
    """Any string gives a model or a SecretFormatError that never contains the string."""
    parsed = _parse_or_error(model, raw)
    if isinstance(parsed, SecretFormatError):
        assert parsed.secret_name == PG_NAME
        assert PG_NAME in str(parsed)
        _assert_no_leak(parsed, [raw, raw.strip()])
    else:
        assert isinstance(parsed, model)
        assert raw.strip() not in repr(parsed) or raw.strip() in VOCABULARY


@hypothesis_settings
@given(model=models, document=any_documents)
def test_arbitrary_json_parses_or_raises_format_error_without_quoting_values(
    model: type[SecretModel], document: Any
) -> None:
    """Any JSON document (right keys with wrong types included) never leaks a value."""
    raw = json.dumps(document)
    parsed = _parse_or_error(model, raw)
    if isinstance(parsed, SecretFormatError):
        assert PG_NAME in str(parsed)
        assert parsed.hint
        _assert_no_leak(parsed, [raw, *_strings(document)])
    else:
        assert isinstance(parsed, model)
        for value in parsed.sensitive_values():
            others = "".join(str(v) for v in parsed.model_dump().values() if isinstance(v, str))
            if len(value) >= 6 and value not in others:
                assert value not in repr(parsed)
                assert value not in str(parsed)


@hypothesis_settings
@given(password=st.text(min_size=1, max_size=60), port=json_values)
def test_postgres_password_never_in_error_for_wrong_port(password: str, port: Any) -> None:
    """With a non-integer port, the error names `port` and never quotes the password."""
    document = _pg(password=password, port=port)
    raw = json.dumps(document)
    if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
        assert parse_secret(PostgresCredentials, raw, secret_name=PG_NAME).port == port
        return
    error = _format_error(PostgresCredentials, raw)
    assert "port" in str(error)
    _assert_no_leak(error, [password, raw])


# -- examples -----------------------------------------------------------------------------


def test_openai_key_plain_string_is_parsed_and_stripped() -> None:
    """A plain string key (surrounding newline tolerated) becomes `OpenAIKeySecret`."""
    key = fake_openai_key()
    parsed = parse_secret(OpenAIKeySecret, key + "\n", secret_name=KEY_NAME)
    assert parsed.api_key.get_secret_value() == key
    assert parsed.sensitive_values() == (key,)


def test_openai_key_json_object_form_is_accepted() -> None:
    """`{"api_key": "..."}` is accepted for teams that store keys as JSON."""
    key = fake_openai_key()
    parsed = parse_secret(OpenAIKeySecret, json.dumps({"api_key": key}), secret_name=KEY_NAME)
    assert parsed.api_key.get_secret_value() == key


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("sk-" + "a" * 10, "at least 20 characters"),
        ("sk-test " + "a" * 30, "whitespace"),
        ("", "at least 20 characters"),
        ('{"api_key": 123456789012345678901234}', "api_key"),
        ('{"key": "x"}', "api_key"),
        ("{not json", "not valid json"),
    ],
)
def test_openai_key_rejections_name_the_secret_and_the_problem(raw: str, problem: str) -> None:
    """A too-short, spaced, mistyped or non-JSON key is a SecretFormatError saying why."""
    error = _format_error(OpenAIKeySecret, raw, KEY_NAME)
    assert str(error).startswith(f"secret {KEY_NAME} in eu-west-1 ")
    assert problem in str(error)
    assert error.aws_error == "MalformedSecret"
    assert "OpenAIKeySecret" in error.hint
    assert error.__cause__ is None
    assert error.__context__ is None


def test_postgres_credentials_parse_and_helpers() -> None:
    """Valid JSON parses; dsn/connect_kwargs carry the password, identity does not."""
    password = "p@ss:w/rd " + secrets.token_hex(8)
    raw = postgres_secret_json(
        username="kb app", password=password, host="db.internal", port=6543, database="kb/main"
    )
    creds = parse_secret(PostgresCredentials, raw, secret_name=PG_NAME)
    assert creds.port == 6543
    assert creds.connect_kwargs() == {
        "user": "kb app",
        "password": password,
        "host": "db.internal",
        "port": 6543,
        "database": "kb/main",
    }
    dsn = creds.dsn()
    assert isinstance(dsn, SecretStr)
    assert password not in repr(dsn)
    assert dsn.get_secret_value().startswith("postgresql://kb%20app:p%40ss%3Aw%2Frd%20")
    assert dsn.get_secret_value().endswith("@db.internal:6543/kb/main")
    assert creds.identity() == "kb app@db.internal:6543/kb/main"
    assert creds.sensitive_values() == (password,)


def test_postgres_dbname_alias_and_extra_keys() -> None:
    """AWS's RDS template key `dbname` is accepted; extra keys (engine, ...) are ignored."""
    data = _pg()
    data["dbname"] = data.pop("database")
    data["engine"] = "postgres"
    creds = parse_secret(PostgresCredentials, json.dumps(data), secret_name=PG_NAME)
    assert creds.database == "kb"


@pytest.mark.parametrize(
    ("document", "where"),
    [
        (_pg(port="5432"), "port"),
        (_pg(port=5432.0), "port"),
        (_pg(port=True), "port"),
        (_pg(port=0), "port"),
        (_pg(port=65536), "port"),
        (_pg(password=""), "password"),
        (_pg(username=" "), "username"),
        (_pg(host=""), "host"),
        (_pg(database=None), "database"),
        ({k: v for k, v in _pg().items() if k != "host"}, "host: field required"),
        ({k: v for k, v in _pg().items() if k != "password"}, "password: field required"),
        ([_pg()], "must be an object"),
        ("just a string", "must be an object"),
    ],
)
def test_postgres_rejections_name_the_field_and_never_the_password(
    document: Any, where: str
) -> None:
    """Wrong types, empty values and missing keys name the field, never a value."""
    error = _format_error(PostgresCredentials, json.dumps(document))
    assert where in str(error)
    assert PG_NAME in str(error)
    assert error.region == "eu-west-1"
    password = document[0]["password"] if isinstance(document, list) else None
    if isinstance(document, dict):
        password = document.get("password")
    if password:
        assert all(password not in text for text in _error_texts(error))


def test_malformed_json_reports_position_not_content() -> None:
    """Broken JSON says where it broke, and the raw text (with its password) is not in it."""
    password = fake_password()
    raw = '{"username": "kb", "password": "' + password + '", "port": }'
    error = _format_error(PostgresCredentials, raw)
    assert "not valid json (line 1 column" in str(error)
    assert all(password not in text for text in _error_texts(error))


def test_pathological_json_is_a_format_error() -> None:
    """Nesting deep enough to exhaust recursion, or a 5,000-digit port, is still a format error."""
    for raw in ('{"a":' + "[" * 100_000, '{"port": 1' + "0" * 5000 + "}"):
        for model in (OpenAIKeySecret, PostgresCredentials):
            assert isinstance(_format_error(model, raw), SecretFormatError)


def test_models_are_frozen() -> None:
    """A parsed secret cannot be mutated in place."""
    creds = PostgresCredentials.model_validate(_pg())
    with pytest.raises(ValidationError):
        creds.port = 1


def test_auth_token_plain_string_is_parsed_and_stripped() -> None:
    token = fake_auth_token()
    parsed = parse_secret(AuthTokenSecret, f"  {token}\n", secret_name=TOKEN_NAME)
    assert parsed.token.get_secret_value() == token
    assert parsed.sensitive_values() == (token,)


def test_a_short_auth_token_is_refused_without_being_quoted() -> None:
    """A bearer token under 24 characters is guessable: a format error naming the rule."""
    short = secrets.token_hex(AUTH_TOKEN_MIN_LENGTH)[: AUTH_TOKEN_MIN_LENGTH - 1]
    error = _format_error(AuthTokenSecret, short, TOKEN_NAME)
    assert str(error).startswith(f"secret {TOKEN_NAME} in eu-west-1 ")
    assert f"at least {AUTH_TOKEN_MIN_LENGTH} characters" in str(error)
    assert short not in f"{error} {error.hint} {error!r}"
    assert error.__cause__ is None


class _ServiceCredentials(SecretModel):
    """A secret shape of an application reusing the core: the base class parses its JSON."""

    client_id: str
    client_secret: SecretStr


def test_a_new_secret_shape_parses_json_objects_with_the_base_class() -> None:
    value = secrets.token_urlsafe(24)
    parsed = parse_secret(
        _ServiceCredentials,
        json.dumps({"client_id": "svc", "client_secret": value, "note": "ignored"}),
        secret_name="app/service",
    )
    assert parsed.client_id == "svc"
    assert parsed.client_secret.get_secret_value() == value


@pytest.mark.parametrize("raw", ['["svc", "s3cr3t-value"]', '"svc"', "42", "null"])
def test_a_new_secret_shape_refuses_json_that_is_not_an_object(raw: str) -> None:
    error = _format_error(_ServiceCredentials, raw, "app/service")
    assert "secret json must be an object" in str(error)
    assert "client_id, client_secret" in error.hint
    assert "s3cr3t" not in str(error)
