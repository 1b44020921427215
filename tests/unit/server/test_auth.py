"""Bearer tokens, Host/Origin policy and the bind policy of the HTTP transport."""

# ruff: noqa: S104 (the wildcard address is test data here, nothing binds to it)

from __future__ import annotations

import pytest
from pydantic import SecretStr

from kb_mcp.server.auth import BearerAuth, OriginPolicy, check_bind_policy, is_loopback
from tests.conftest import CapturedLogs
from tests.support.fakes import fake_auth_token


async def test_current_and_previous_tokens_are_accepted_and_others_refused() -> None:
    """Any token of the current set passes; a wrong, missing or malformed header does not."""
    current, previous = fake_auth_token(), fake_auth_token()
    auth = BearerAuth(lambda: (SecretStr(current), SecretStr(previous)))
    assert await auth.check(f"Bearer {current}") is None
    assert await auth.check(f"bearer  {previous} ") is None
    assert await auth.check(f"Bearer {current}x") == "invalid"
    assert await auth.check(f"Basic {current}") == "invalid"
    assert await auth.check("Bearer ") == "invalid"
    assert await auth.check(None) == "missing"
    assert await auth.check("  ") == "missing"


async def test_the_token_set_is_read_on_every_check() -> None:
    """A token removed from the source (a second rotation) is refused at once."""
    old, new = fake_auth_token(), fake_auth_token()
    tokens = [SecretStr(old)]

    async def source() -> tuple[SecretStr, ...]:
        return tuple(tokens)

    auth = BearerAuth(source)
    assert await auth.check(f"Bearer {old}") is None
    tokens[:] = [SecretStr(new)]
    assert await auth.check(f"Bearer {old}") == "invalid"
    assert await auth.check(f"Bearer {new}") is None
    assert await auth.current_tokens() == (SecretStr(new),)


async def test_an_empty_token_set_refuses_everything() -> None:
    """Before a token is loaded nothing is accepted."""
    auth = BearerAuth(lambda: ())
    assert await auth.check("Bearer anything-at-all") == "invalid"
    assert "hidden" in repr(auth)


def test_loopback_bind_allows_loopback_hosts_and_origins_only() -> None:
    """Bound to 127.0.0.1: loopback Host on any port; loopback Origins; no foreign ones."""
    policy = OriginPolicy.for_bind("127.0.0.1")
    for host in ("127.0.0.1:8080", "localhost:1", "LOCALHOST", "[::1]:9000", "127.0.0.1"):
        assert policy.host_allowed(host), host
    bad_hosts: tuple[str | None, ...] = ("evil.example:8080", "127.0.0.2:8080", None, "")
    for bad in bad_hosts:
        assert not policy.host_allowed(bad), bad
    for origin in (None, "http://localhost:3000", "https://127.0.0.1", "http://[::1]:6274"):
        assert policy.origin_allowed(origin), origin
    for origin in ("http://evil.example", "null", "http://localhost.evil.example:80", "localhost"):
        assert not policy.origin_allowed(origin), origin


def test_wildcard_bind_accepts_any_host_but_still_checks_origins() -> None:
    """Behind a load balancer the Host is unknown; a browser Origin is still checked."""
    policy = OriginPolicy.for_bind("0.0.0.0", extra_origins=("https://app.example.com",))
    assert policy.allowed_hosts is None
    assert policy.host_allowed("kb.internal.example:443")
    assert policy.origin_allowed("https://app.example.com")
    assert not policy.origin_allowed("https://app.example.com:8443")
    assert policy.origin_allowed("http://localhost:5173")
    assert not policy.origin_allowed("http://app.example.com")
    assert not policy.origin_allowed("https://evil.example")


def test_a_specific_bind_address_is_an_allowed_host() -> None:
    """Bound to one address: that address and loopback names are allowed Hosts."""
    policy = OriginPolicy.for_bind("10.1.2.3", extra_hosts=("kb.example.com",))
    assert policy.host_allowed("10.1.2.3:8080")
    assert policy.host_allowed("10.1.2.3")
    assert policy.host_allowed("kb.example.com")
    assert not policy.host_allowed("kb.example.com:8443")
    assert not policy.host_allowed("10.1.2.4:8080")
    ipv6 = OriginPolicy.for_bind("fd00::5")
    assert ipv6.host_allowed("[fd00::5]:8080")


def test_a_star_origin_allows_every_origin() -> None:
    """An explicit "*" turns the origin check off."""
    assert OriginPolicy(allowed_hosts=None, allowed_origins=("*",)).origin_allowed("http://x.y")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("kb.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    """Loopback means localhost, 127.0.0.0/8 or ::1."""
    assert is_loopback(host) is loopback


def test_bind_policy(captured_logs: CapturedLogs) -> None:
    """Non-loopback without a token is refused unless explicitly allowed, with a warning."""
    assert check_bind_policy("127.0.0.1", has_token=False, allow_unauthenticated=False) is None
    assert check_bind_policy("0.0.0.0", has_token=True, allow_unauthenticated=False) is None
    refusal = check_bind_policy("0.0.0.0", has_token=False, allow_unauthenticated=False)
    assert refusal is not None
    assert "KB_MCP_AUTH_TOKEN_SECRET" in refusal
    assert "--allow-unauthenticated" in refusal
    assert not captured_logs.events("http.unauthenticated_bind")
    assert check_bind_policy("0.0.0.0", has_token=False, allow_unauthenticated=True) is None
    assert len(captured_logs.events("http.unauthenticated_bind")) == 1
