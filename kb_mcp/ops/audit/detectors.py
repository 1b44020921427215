"""Secret detectors of the audit: detect-secrets' plugins plus ours for kb-mcp's shapes.

detect-secrets 1.5 misses OpenAI keys without OpenAI's `T3BlbkFJ` marker, unquoted
assignments (`.env`, YAML, shell) and DSNs other than its basic-auth shape, so kb-mcp adds
its own `RegexBasedDetector`/`BasePlugin` subclasses for the shapes this project handles:

    openai-api-key        sk-..., sk-proj-..., with or without the marker
    aws-access-key-id     AKIA/ASIA/... ids
    aws-secret-access-key 40-character keys assigned to a secret-access-key name
    postgres-dsn          postgres[ql]://user:password@host (the password is the secret)
    password-assignment   DB_PASSWORD=..., "password": "...", PGPASSWORD, PASSWORD '...'
    private-key           a PEM private-key header followed by key material
    high-entropy-base64   detect-secrets' entropy plugins, limited to assigned values
    high-entropy-hex

and keeps detect-secrets' precise vendor plugins (GitHub, Slack, Stripe, JWT, ...).
`scan_lines` runs them all over numbered lines, then drops placeholders (one list:
`PLACEHOLDER_WORDS`, `PLACEHOLDER_MARKERS`), detect-secrets' heuristic filters and lines
carrying `pragma: allowlist secret`. A value only counts when it is a literal: a quoted
string followed by `+`, `%` or a method call is built at run time and is skipped.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Any

from detect_secrets.core.potential_secret import PotentialSecret
from detect_secrets.filters import heuristic
from detect_secrets.filters.allowlist import is_line_allowlisted
from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.high_entropy_strings import (
    Base64HighEntropyString,
    HexHighEntropyString,
    HighEntropyStringsPlugin,
)
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.util.code_snippet import CodeSnippet, get_code_snippet

__all__ = [
    "NON_SENSITIVE_NAMES",
    "PLACEHOLDER_MARKERS",
    "PLACEHOLDER_WORDS",
    "SENSITIVE_NAME_PATTERNS",
    "Hit",
    "build_plugins",
    "detector_id",
    "env_sensitive_values",
    "fingerprint",
    "is_placeholder",
    "is_sensitive_name",
    "redact",
    "scan_lines",
]

# The one place that says what an obvious placeholder is (compared case-insensitively).
PLACEHOLDER_WORDS = frozenset(
    {
        "admin", "change-me", "change_me", "changeit", "changeme", "default", "dummy",
        "example", "fake", "foo", "foobar", "none", "null", "pass", "passwd", "password",
        "placeholder", "postgres", "redacted", "replace-me", "replaceme", "root", "sample",
        "secret", "test", "testing", "todo", "unset", "user", "username",
    }
)  # fmt: skip
PLACEHOLDER_MARKERS = (
    "***", "...", "\u2026", "<", ">", "${", "$(", "{{", "{", "}", "%(", "%s",
    "changeme", "change-me", "change_me", "placeholder", "example", "redacted", "your-",
    "your_", "dummy", "replace-me", "replace_me", "not-a-real", "not_a_real", "notreal",
)  # fmt: skip

# `.env*` keys that may only hold an empty value or a placeholder (fnmatch, upper case).
SENSITIVE_NAME_PATTERNS = (
    "*PASSWORD*", "*PASSWD*", "*SECRET*", "*TOKEN*", "*API_KEY*", "*APIKEY*",
    "*PRIVATE_KEY*", "*ACCESS_KEY*", "*CREDENTIAL*", "DB_PASSWORD", "PGPASSWORD",
    "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "KB_MCP_AUTH_TOKEN",
)  # fmt: skip
# Names matching a pattern above that hold a reference, not a secret.
NON_SENSITIVE_NAMES = frozenset({"KB_MCP_AUTH_TOKEN_SECRET"})  # a Secrets Manager name
_NON_SENSITIVE_SUFFIXES = ("_NAME", "_ARN", "_FILE", "_PATH", "_REGION", "_SECRET_ID", "_TTL",
                           "_SECONDS", "_S")  # fmt: skip
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(?P<value>.*)$")

# Files whose unquoted `KEY=value` / `key: value` lines are literals (not code).
_UNQUOTED_SUFFIXES = frozenset(
    {".sh", ".bash", ".zsh", ".yaml", ".yml", ".ini", ".cfg", ".conf", ".properties",
     ".md", ".rst", ".txt", ".tfvars"}
)  # fmt: skip
# Keys whose values are identifiers, not secrets, even when they look random.
_NON_SECRET_KEY = re.compile(
    r"(?i)(hash|sha\d*|digest|checksum|fingerprint|uuid|(^|[_.-])id$|version|commit|etag|"
    r"integrity|nonce|salt|arn|name|path|file|url|region|model|image)"
)
_SECRET_KEY = re.compile(r"(?i)(key|secret|token|passw|pwd|auth|cred|signing|session)")
_PASSWORD_KEY = re.compile(r"(?i)(password|passwd|pwd|(^|[_.-])pass)$")
_AWS_SECRET_KEY = re.compile(r"(?i)(aws)?[_.-]?secret[_.-]?(access[_.-]?)?key$")

_KEY = r"(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)"
_QUOTED_VALUE = r"\s*[bru]{0,2}(?P<q>[\"'])(?P<value>[^\"'\s]+)(?P=q)(?P<after>\s*.?)"
_QUOTED_ASSIGNMENTS = (
    re.compile(  # key = "v", key: "v", "key": "v", key: str = "v", env["KEY"] = "v"
        r"(?<![A-Za-z0-9_.-])[\"']?" + _KEY + r"[\"']?\]?\s*"
        r"(?::\s*[A-Za-z_][\w\[\]., |]*?\s*(?==))?"  # an optional Python annotation
        r"(?<![=!<>])(?:=>|:=|=|:)(?!=)" + _QUOTED_VALUE
    ),
    re.compile(
        r"\(\s*[\"'](?P<key>[A-Z][A-Z0-9_]*)[\"']\s*," + _QUOTED_VALUE
    ),  # setenv("KEY", "v")
)
_UNQUOTED_ASSIGNMENTS = (
    re.compile(r"^\s*(?:-\s+)?(?:export\s+|ENV\s+|ARG\s+)?" + _KEY + r"\s*(?:=|:\s)\s*"
               r"(?P<value>[^\s\"'#]+)\s*(?:#.*)?$"),
    re.compile(r"^\s*(?:ENV|ARG)\s+" + _KEY + r"\s+(?P<value>[^\s\"'#=]+)\s*$"),  # Dockerfile
)  # fmt: skip
_SQL_PASSWORD = re.compile(r"(?i)\bpassword\s+'(?P<value>[^'\s]+)'")
_LIBPQ_PASSWORD = re.compile(r"(?<![\w.-])password=(?P<value>[^\s'\"(),]+)")
_LIBPQ_OTHER_KEY = re.compile(r"(?<![\w.-])(?:host|hostaddr|dbname|user)=[^\s'\"(),]")
# Names and word phrases (`DB_PASSWORD`, `wrong_password`, `hidden-by-key`), not passwords.
_IDENTIFIER = re.compile(r"[A-Z]+(?:_[A-Z0-9]+)*|[a-z]+(?:[-_][a-z]+)+|[a-z]+(?:[A-Z][a-z]+)+")
_QUOTED_STRING = re.compile(r"\"[^\"]*\"|'[^']*'")


@dataclass(frozen=True)
class Hit:
    """One secret a detector found on one line; `secret` is never printed."""

    detector: str
    line_number: int
    secret: str


def fingerprint(secret: str) -> str:
    """sha256 of a secret value, the key allowlist entries use (never the value)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def redact(secret: str) -> str:
    """At most the first four characters and an ellipsis, never the whole value."""
    return secret[: min(4, len(secret) // 4)] + "\u2026"


def _entropy(value: str) -> float:
    counts = {char: value.count(char) for char in set(value)}
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def is_placeholder(value: str) -> bool:
    """True for empty values, `${VAR}`/`$VAR` references, `<...>`, `xxx` and listed words."""
    stripped = value.strip().strip("\"'`")
    lowered = stripped.lower()
    if not stripped or stripped.startswith(("$", "!", "@", "%")):
        return True
    if lowered in PLACEHOLDER_WORDS or any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        return True
    if "xxx" in stripped or "XXX" in stripped:  # same case: random keys rarely hold either
        return True
    return len(set(lowered)) <= 2 or bool(heuristic.is_sequential_string(stripped))


def is_sensitive_name(key: str) -> bool:
    """Whether an environment variable name says its value is a credential."""
    name = key.upper()
    if name in NON_SENSITIVE_NAMES or name.endswith(_NON_SENSITIVE_SUFFIXES):
        return False
    return any(fnmatchcase(name, pattern) for pattern in SENSITIVE_NAME_PATTERNS)


def env_sensitive_values(lines: Sequence[str]) -> list[tuple[int, str]]:
    """(line number, key) of each sensitive key in a `.env` file holding a real value."""
    found: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        match = _ENV_LINE.match(line)
        if match is None or not is_sensitive_name(match.group("key")):
            continue
        value = match.group("value").strip()
        if value[:1] in {'"', "'"}:
            value = value[1:].split(value[0], 1)[0]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        settings_value = value.isdigit() or value.lower() in {"true", "false", "yes", "no"}
        if not settings_value and not is_placeholder(value):  # MAX_TOKENS=8191 is a setting
            found.append((number, match.group("key")))
    return found


def _unquoted_literals(path: str) -> bool:
    posix = PurePosixPath(path)
    name = posix.name.lower()
    return (
        name.startswith(".env")
        or posix.suffix.lower() in _UNQUOTED_SUFFIXES
        or "dockerfile" in name
        or "compose" in name
        or posix.suffix == ""
    )


def _assignments(line: str, *, unquoted: bool) -> list[tuple[str, str]]:
    """(key, literal value) pairs on a line; values built at run time are skipped."""
    pairs: list[tuple[str, str]] = []
    for pattern in _QUOTED_ASSIGNMENTS:
        for match in pattern.finditer(line):
            if match.group("after").strip() not in {"+", "%", ".", "["}:
                pairs.append((match.group("key"), match.group("value")))
            # else: concatenated, formatted, called or indexed at run time
    for unquoted_pattern in _UNQUOTED_ASSIGNMENTS if unquoted else ():
        found = unquoted_pattern.match(line)
        if found is not None:
            pairs.append((found.group("key"), found.group("value")))
    return pairs


def _secret(plugin: BasePlugin, path: str, line_number: int, value: str) -> PotentialSecret:
    return PotentialSecret(
        type=plugin.secret_type, filename=path, secret=value, line_number=line_number
    )


class OpenAIKeyDetector(RegexBasedDetector):
    """`sk-`/`sk-proj-` keys with at least 20 key characters, OpenAI's marker optional."""

    secret_type = "openai-api-key"  # noqa: S105 - a detector name, not a secret
    denylist = (re.compile(r"(?<![A-Za-z0-9_-])(sk-[A-Za-z0-9_-]{20,})"),)

    def analyze_string(self, string: str) -> Generator[str, None, None]:
        for key in super().analyze_string(string):
            body = key[3:]
            if "T3BlbkFJ" in key or (
                _entropy(body) >= 3.5 and any(char.isdigit() for char in body)
            ):
                yield key


class AwsAccessKeyIdDetector(RegexBasedDetector):
    """AWS access key ids (long-term AKIA, temporary ASIA and the other documented prefixes)."""

    secret_type = "aws-access-key-id"  # noqa: S105 - a detector name, not a secret
    denylist = (
        re.compile(r"(?<![A-Z0-9])((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AROA)[A-Z0-9]{16})"
                   r"(?![A-Z0-9])"),
    )  # fmt: skip


class _AssignmentDetector(BasePlugin):
    """Base for detectors that read `key = value` pairs; `accepts` decides per pair."""

    def accepts(self, key: str, value: str) -> bool:
        raise NotImplementedError

    def extra_values(self, line: str) -> list[str]:
        """Secrets on the line in shapes other than `key = value` (none by default)."""
        return []

    def analyze_string(self, string: str) -> Generator[str, None, None]:
        for key, value in _assignments(string, unquoted=False):
            if self.accepts(key, value):
                yield value

    def analyze_line(
        self,
        filename: str,
        line: str,
        line_number: int = 0,
        context: CodeSnippet | None = None,
        enable_eager_search: bool = False,
        assignments: Sequence[tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> set[PotentialSecret]:
        """`assignments` lets `scan_lines` parse a line once for every assignment detector."""
        if assignments is None:
            assignments = _assignments(line, unquoted=_unquoted_literals(filename))
        values = [v for k, v in assignments if self.accepts(k, v)]
        values += self.extra_values(line)
        return {_secret(self, filename, line_number, value) for value in values}


class AwsSecretAccessKeyDetector(_AssignmentDetector):
    """40-character AWS secret access keys assigned to a `*secret*access*key` name."""

    secret_type = "aws-secret-access-key"  # noqa: S105 - a detector name, not a secret
    _shape = re.compile(r"[A-Za-z0-9/+]{40}")

    def accepts(self, key: str, value: str) -> bool:
        return bool(_AWS_SECRET_KEY.search(key) and self._shape.fullmatch(value))


def _password_literal(value: str) -> bool:
    # Four characters at least, and not a name or a phrase of lowercase words.
    return len(value) >= 4 and not _IDENTIFIER.fullmatch(value)


class PasswordAssignmentDetector(_AssignmentDetector):
    """Literal passwords: `*PASSWORD=`, `"password": "..."`, SQL `PASSWORD '...'`, libpq."""

    secret_type = "password-assignment"  # noqa: S105 - a detector name, not a secret

    def accepts(self, key: str, value: str) -> bool:
        return bool(_PASSWORD_KEY.search(key)) and _password_literal(value)

    def extra_values(self, line: str) -> list[str]:
        values = [m.group("value") for m in _SQL_PASSWORD.finditer(line)]
        for quoted in _QUOTED_STRING.finditer(line):  # libpq: "host=h user=u password=p"
            if _LIBPQ_OTHER_KEY.search(quoted.group()):
                values += [m.group("value") for m in _LIBPQ_PASSWORD.finditer(quoted.group())]
        return [value for value in values if _password_literal(value)]


class PostgresDsnDetector(RegexBasedDetector):
    """The inline password of `postgres://user:password@host` and `postgresql+driver://...`."""

    secret_type = "postgres-dsn"  # noqa: S105 - a detector name, not a secret
    denylist = (re.compile(r"(?i)\bpostgres(?:ql)?(?:\+\w+)?://[^:@/\s'\"]+:([^@\s'\"]+)@"),)


class PrivateKeyBlockDetector(RegexBasedDetector):
    """A PEM private-key header followed by key material (a header alone is documentation)."""

    secret_type = "private-key"  # noqa: S105 - a detector name, not a secret
    denylist = (re.compile(r"-----BEGIN[A-Z ]{0,30}PRIVATE KEY(?: BLOCK)?-----"),)
    _inline_body = re.compile(r"(?:\\n|\s)*([A-Za-z0-9+/=]{20,})")
    _body_line = re.compile(r"\s*[\"']?([A-Za-z0-9+/=]{20,})[\"',]*(?:\\n)?[\"',]*\s*")
    _pem_header = re.compile(r"\s*(?:[A-Za-z-]+:.*)?")  # Proc-Type:, DEK-Info: or blank

    def analyze_line(
        self,
        filename: str,
        line: str,
        line_number: int = 0,
        context: CodeSnippet | None = None,
        **kwargs: Any,
    ) -> set[PotentialSecret]:
        header = self.denylist[0].search(line)
        if header is None:
            return set()
        inline = self._inline_body.match(line, header.end())
        if inline is not None:
            return {_secret(self, filename, line_number, inline.group(1))}
        following = [] if context is None else context.lines[context.target_index + 1 :]
        for text in following[:4]:
            body = self._body_line.fullmatch(text)
            if body is not None:
                return {_secret(self, filename, line_number, body.group(1))}
            if not self._pem_header.fullmatch(text):
                break
        return set()


def _high_entropy(plugin: HighEntropyStringsPlugin, key: str, value: str) -> bool:
    if isinstance(plugin, HexHighEntropyString) and not _SECRET_KEY.search(key):
        return False  # hex under other names is a digest or an id (sbom, lock, etag)
    return (
        len(value) >= 20
        and not _NON_SECRET_KEY.search(key)
        and all(char in plugin.charset for char in value)
        and plugin.calculate_shannon_entropy(value) > plugin.entropy_limit
    )


class AssignedBase64HighEntropy(_AssignmentDetector, Base64HighEntropyString):
    """Base64 high-entropy values in assignments (detect-secrets' limit, 4.5 by default)."""

    secret_type = "high-entropy-base64"  # noqa: S105 - a detector name, not a secret

    def accepts(self, key: str, value: str) -> bool:
        return _high_entropy(self, key, value)


class AssignedHexHighEntropy(_AssignmentDetector, HexHighEntropyString):
    """Hex high-entropy values in assignments (detect-secrets' limit, 3.0 by default)."""

    secret_type = "high-entropy-hex"  # noqa: S105 - a detector name, not a secret

    def accepts(self, key: str, value: str) -> bool:
        return _high_entropy(self, key, value)


def build_plugins() -> list[BasePlugin]:
    """Our detectors first (they win a tie), then detect-secrets' precise vendor plugins."""
    return [
        OpenAIKeyDetector(),
        AwsAccessKeyIdDetector(),
        AwsSecretAccessKeyDetector(),
        PostgresDsnDetector(),
        PasswordAssignmentDetector(),
        PrivateKeyBlockDetector(),
        GitHubTokenDetector(),
        GitLabTokenDetector(),
        SlackDetector(),
        StripeDetector(),
        SendGridDetector(),
        PypiTokenDetector(),
        NpmDetector(),
        DiscordBotTokenDetector(),
        JwtTokenDetector(),
        BasicAuthDetector(),
        AssignedHexHighEntropy(limit=3.0),
        AssignedBase64HighEntropy(limit=4.5),
    ]


def detector_id(plugin: BasePlugin) -> str:
    """The id findings and allowlist entries use: `openai-api-key`, `github-token`, ..."""
    return re.sub(r"[^a-z0-9]+", "-", str(plugin.secret_type).lower()).strip("-")


def _filtered(secret: str) -> bool:
    return (
        is_placeholder(secret)
        or bool(heuristic.is_potential_uuid(secret))
        or bool(heuristic.is_templated_secret(secret))
        or bool(heuristic.is_not_alphanumeric_string(secret))
    )


def scan_lines(
    path: str,
    lines: Sequence[str],
    plugins: Sequence[BasePlugin],
    *,
    line_numbers: Sequence[int] | None = None,
) -> list[Hit]:
    """Every non-placeholder secret in `lines` (numbered from 1 unless `line_numbers`)."""
    numbers = list(line_numbers) if line_numbers is not None else list(range(1, len(lines) + 1))
    content = [line.rstrip("\r\n") for line in lines]
    unquoted = _unquoted_literals(path)
    hits: list[Hit] = []
    for index, line in enumerate(content):
        if not line.strip():
            continue
        context = get_code_snippet(content, index + 1)
        pairs = _assignments(line, unquoted=unquoted)
        line_hits: list[Hit] = []
        for plugin in plugins:
            extra = {"assignments": pairs} if isinstance(plugin, _AssignmentDetector) else {}
            for potential in plugin.analyze_line(
                filename=path, line=line, line_number=numbers[index], context=context, **extra
            ):
                value = str(potential.secret_value)
                if _filtered(value) or any(value in h.secret or h.secret in value
                                           for h in line_hits):  # fmt: skip
                    continue
                line_hits.append(Hit(detector_id(plugin), numbers[index], value))
        if line_hits and not is_line_allowlisted(path, line, context):
            hits += line_hits
    return hits
