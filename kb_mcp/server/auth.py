"""Access control for the HTTP transport: bearer tokens, Host/Origin checks, bind policy.

- `BearerAuth` accepts `Authorization: Bearer <token>` when the token equals one of the
  tokens its source returns now (the runtime's token holder: AWSCURRENT and, during a
  rotation overlap, AWSPREVIOUS; hot-reloaded). Comparison is constant-time: SHA-256
  digests of equal length, compared with `hmac.compare_digest` against every token,
  without an early exit.
- `OriginPolicy` is the DNS-rebinding protection the MCP specification asks of streamable
  HTTP servers: a request whose `Origin` is not allowed is refused (403), and so is a
  `Host` outside the allowed list when there is one. A pattern is `host`, `host:port` or
  `host:*` (origins: `scheme://host[:port|:*]`); `:*` allows any port or none, and a
  pattern without a port allows only a value without one (an origin on its default port).
  Requests without an `Origin` (every non-browser client) pass the origin check. Values
  are parsed strictly (`_split_host`): no userinfo, ports of ASCII digits 1-65535 only.
- `check_bind_policy` refuses a non-loopback bind without a token unless the operator
  said `--allow-unauthenticated` (a private subnet behind a load balancer).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import ipaddress
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import structlog
from pydantic import SecretStr

__all__ = [
    "LOOPBACK_HOSTS",
    "BearerAuth",
    "OriginPolicy",
    "TokenSource",
    "check_bind_policy",
    "is_loopback",
]

log = structlog.get_logger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
"""Names a loopback client may use; with `:*` appended, they are the default allowed Hosts."""
_WILDCARD_BINDS = {"", "0.0.0.0", "::", "[::]"}  # noqa: S104 (names a bind, binds nothing)

TokenSource = Callable[[], Sequence[SecretStr] | Awaitable[Sequence[SecretStr]]]
"""Returns the tokens accepted now; sync (a holder's `tokens`) or async."""

RejectReason = Literal["missing", "invalid"]


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


class BearerAuth:
    """Checks bearer tokens against a hot-reloaded set, in constant time."""

    def __init__(self, tokens: TokenSource) -> None:
        self._tokens = tokens

    def __repr__(self) -> str:
        return "BearerAuth(tokens=<hidden>)"

    async def current_tokens(self) -> tuple[SecretStr, ...]:
        """The tokens accepted right now."""
        result = self._tokens()
        if inspect.isawaitable(result):
            result = await result
        return tuple(result)

    async def check(self, authorization: str | None) -> RejectReason | None:
        """None when the header carries an accepted token, else why not."""
        if authorization is None or not authorization.strip():
            return "missing"
        scheme, _, presented = authorization.strip().partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            return "invalid"
        wanted = _digest(presented)
        matched = False
        for token in await self.current_tokens():
            # `|` rather than `or`: every token is compared, whichever matches.
            matched |= hmac.compare_digest(wanted, _digest(token.get_secret_value()))
        return None if matched else "invalid"


_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?", re.ASCII)
_IPV6 = re.compile(r"\[[0-9a-f:.]+\]", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*", re.ASCII)


def _split_host(value: str, *, pattern: bool = False) -> tuple[str, str | None] | None:
    """("example.com", "8080") from "example.com:8080"; None when malformed.

    Strict: a DNS name or IPv4 address (letters, digits, dots, hyphens) or a bracketed
    IPv6 address, then optionally `:` and a port of ASCII digits from 1 to 65535 (`*` in
    a pattern). Userinfo (`@`), paths, spaces and empty ports are malformed.
    """
    text = value.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[: end + 1], text[end + 1 :]
        if end == -1 or not _IPV6.fullmatch(host):
            return None
    else:
        host, sep, port_text = text.partition(":")
        rest = sep + port_text
        if not _HOST_NAME.fullmatch(host):
            return None
    if not rest:
        return host, None
    if not rest.startswith(":"):
        return None
    port = rest[1:]
    if pattern and port == "*":
        return host, port
    if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        return None
    return host, str(int(port))


def _port_matches(pattern: str | None, actual: str | None) -> bool:
    return pattern == "*" or pattern == actual


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """Allowed `Host` and `Origin` values for `/mcp`."""

    allowed_hosts: tuple[str, ...] | None
    """None: any Host (behind a load balancer whose name the app cannot know)."""
    allowed_origins: tuple[str, ...]
    """`("*",)` allows every origin."""

    @classmethod
    def for_bind(
        cls,
        bind_host: str,
        *,
        extra_hosts: Sequence[str] = (),
        extra_origins: Sequence[str] = (),
    ) -> OriginPolicy:
        """Loopback names always; the bind address too, unless it is a wildcard."""
        origins = tuple(f"{scheme}://{h}:*" for h in LOOPBACK_HOSTS for scheme in ("http", "https"))
        loopback = tuple(f"{h}:*" for h in LOOPBACK_HOSTS)
        host = bind_host.strip().lower()
        hosts: tuple[str, ...] | None
        if host in _WILDCARD_BINDS:
            hosts = (*loopback, *extra_hosts) if extra_hosts else None
        else:
            name = f"[{host}]" if ":" in host and not host.startswith("[") else host
            hosts = tuple(dict.fromkeys((*loopback, f"{name}:*", *extra_hosts)))
        return cls(allowed_hosts=hosts, allowed_origins=(*origins, *extra_origins))

    def host_allowed(self, host: str | None) -> bool:
        if self.allowed_hosts is None:
            return True
        if not host:
            return False
        parsed = _split_host(host)
        if parsed is None:
            return False
        for pattern in self.allowed_hosts:
            wanted = _split_host(pattern, pattern=True)
            if (
                wanted is not None
                and wanted[0] == parsed[0]
                and _port_matches(wanted[1], parsed[1])
            ):
                return True
        return False

    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None:
            return True
        if "*" in self.allowed_origins:
            return True
        parsed = _parse_origin(origin)
        if parsed is None:
            return False
        for pattern in self.allowed_origins:
            wanted = _parse_origin(pattern, pattern=True)
            if wanted is None:
                continue
            if wanted[:2] == parsed[:2] and _port_matches(wanted[2], parsed[2]):
                return True
        return False


def _parse_origin(value: str, *, pattern: bool = False) -> tuple[str, str, str | None] | None:
    """(scheme, host, port) of an origin or origin pattern; None when malformed."""
    text = value.strip().lower()
    scheme, sep, rest = text.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme) or not rest or "/" in rest:
        return None
    parsed = _split_host(rest, pattern=pattern)
    if parsed is None:
        return None
    return scheme, parsed[0], parsed[1]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    name = host.strip().lower().strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind_policy(host: str, *, has_token: bool, allow_unauthenticated: bool) -> str | None:
    """The refusal message for an unauthenticated non-loopback bind, or None to go ahead.

    With `allow_unauthenticated` the bind goes ahead and a warning is logged.
    """
    if has_token or is_loopback(host):
        return None
    if allow_unauthenticated:
        log.warning(
            "http.unauthenticated_bind",
            host=host,
            detail="serving /mcp without a bearer token on a non-loopback address",
        )
        return None
    return (
        f"refusing to serve http on {host} without a bearer token: set "
        "KB_MCP_AUTH_TOKEN_SECRET to the name of a token secret, bind to 127.0.0.1, or pass "
        "--allow-unauthenticated when only a load balancer in a private subnet can reach it"
    )
