"""OpenAI API key rotation: the operator's new key through the four AWS steps.

OpenAI keys cannot be created through an API we hold, so the new key is made in the
OpenAI console first (Project -> API keys) and handed to `kb-mcp secrets rotate openai`
through an environment variable or stdin, never a command-line argument (it would show
in `ps`). `set` has nothing to do: the key already exists where it was issued (a local
OpenAI-compatible endpoint, such as the local stack's, accepts the keys the secret holds).
`test` lists models with the new key (`GET /v1/models`, honouring `OPENAI_BASE_URL`).

The old key stays valid until the operator revokes it in the console: keep it for the
24-hour overlap (it is the secret's `AWSPREVIOUS` version), then revoke it.

`--generate` makes a fresh key of the usual shape, for the local stack and tests only.
"""

from __future__ import annotations

import json
import secrets

import openai
from pydantic import SecretStr
from secretswap.schemas import parse_secret

from kb_mcp.config import Settings
from kb_mcp.errors import RotationError, SecretFormatError
from kb_mcp.observability.redaction import secret_registry
from kb_mcp.ops.aws import aws_client
from kb_mcp.ops.rotation.steps import RotationResult, StopAfter, run_rollback, run_rotation
from kb_mcp.secrets.schemas import OpenAIKeySecret

__all__ = [
    "OpenAIKeyStrategy",
    "generate_openai_key",
    "probe_openai_key",
    "rollback_openai",
    "rotate_openai",
]

GENERATED_PREFIX = "sk-kbmcp-local-"


def generate_openai_key() -> SecretStr:
    """A fresh key in the usual `sk-` shape, for local endpoints only (never valid at OpenAI)."""
    key = GENERATED_PREFIX + secrets.token_hex(24)
    secret_registry().register(key)
    return SecretStr(key)


async def probe_openai_key(
    key: SecretStr, *, base_url: str | None, timeout_s: float, secret_name: str
) -> int:
    """List models with `key`; the number of models, or `RotationError` when refused."""
    client = openai.AsyncOpenAI(
        api_key=key.get_secret_value(), base_url=base_url, max_retries=0, timeout=timeout_s
    )
    try:
        page = await client.models.list()
        return len(page.data)
    except openai.AuthenticationError as exc:
        raise RotationError(
            f"the openai endpoint rejected the tested key of secret {secret_name} (401)",
            secret_name=secret_name,
            version_id="",
            hint="check the key was created in the OpenAI console for the right project and "
            "copied whole; rerun with the corrected key (--new-value-from-env VAR)",
        ) from exc
    except openai.APIStatusError as exc:
        raise RotationError(
            f"the openai endpoint refused to list models with the tested key of secret "
            f"{secret_name} (http {exc.status_code})",
            secret_name=secret_name,
            version_id="",
            hint="check the key's project permissions (models: read) and the endpoint status",
        ) from exc
    except openai.APIConnectionError as exc:
        raise RotationError(
            f"the openai endpoint could not be reached to test secret {secret_name} "
            f"({type(exc).__name__})",
            secret_name=secret_name,
            version_id="",
            hint="check OPENAI_BASE_URL and the network route; rerun to resume",
        ) from exc
    finally:
        await client.close()


class OpenAIKeyStrategy:
    """The new key comes from the operator (or `generate`); test lists models."""

    kind = "openai"

    def __init__(
        self,
        *,
        secret_name: str,
        new_key: SecretStr | None,
        base_url: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.secret_name = secret_name
        self.new_key = new_key
        self.base_url = base_url
        self.timeout_s = timeout_s

    def _key(self, value: str) -> SecretStr:
        return parse_secret(OpenAIKeySecret, value, secret_name=self.secret_name).api_key

    def reuse_pending(self, pending: str, current: str) -> bool:
        try:
            pending_key = self._key(pending).get_secret_value()
            current_key = self._key(current).get_secret_value()
        except SecretFormatError:
            return False
        if pending_key == current_key:
            return False
        return self.new_key is None or pending_key == self.new_key.get_secret_value()

    async def new_value(self, current: str) -> str:
        key = self.new_key if self.new_key is not None else generate_openai_key()
        raw_key = key.get_secret_value()
        parse_secret(OpenAIKeySecret, raw_key, secret_name=self.secret_name)  # shape check
        if raw_key == self._key(current).get_secret_value():
            raise RotationError(
                f"the new key for secret {self.secret_name} is the current key",
                secret_name=self.secret_name,
                version_id="",
                hint="create a new key in the OpenAI console first",
            )
        stripped = current.strip()
        if stripped.startswith("{"):
            data = json.loads(stripped)
            data["api_key"] = raw_key
            return json.dumps(data)
        return raw_key

    def describe(self, value: str) -> str:
        try:
            key = self._key(value).get_secret_value()
        except SecretFormatError:
            return "a malformed value"
        return f"an api key of {len(key)} characters"

    async def plan(self, current: str, pending: str | None) -> list[str]:
        endpoint = self.base_url or "the default openai endpoint"
        set_line = "nothing to set: the key was created where it is issued"
        return [set_line, f"would list models at {endpoint} with the new key"]

    async def set_secret(self, pending: str, current: str) -> str:
        return "nothing to set: the key was created where it is issued"

    async def test_secret(self, pending: str) -> str:
        count = await probe_openai_key(
            self._key(pending),
            base_url=self.base_url,
            timeout_s=self.timeout_s,
            secret_name=self.secret_name,
        )
        return f"listed {count} models with the new key"


async def rotate_openai(
    settings: Settings,
    *,
    new_key: SecretStr | None,
    generate: bool = False,
    secret_name: str | None = None,
    dry_run: bool = False,
    stop_after: StopAfter | None = None,
) -> RotationResult:
    """Rotate the OpenAI API key secret to `new_key` (or a generated key); resumable.

    With neither a key nor `generate`, only a dry run or the resumption of a pending
    version is possible.
    """
    if new_key is not None and generate:
        raise ValueError("give a new key or generate one, not both")
    if new_key is not None:
        secret_registry().register(new_key.get_secret_value())
    name = secret_name or settings.openai_secret_name
    strategy = OpenAIKeyStrategy(
        secret_name=name,
        new_key=new_key,
        base_url=settings.openai_base_url,
        timeout_s=settings.openai_timeout_s,
    )
    if new_key is None and not generate and not dry_run:
        strategy = _ResumeOnly(strategy)
    async with aws_client(settings, "secretsmanager") as client:
        return await run_rotation(
            client, settings, name, strategy, dry_run=dry_run, stop_after=stop_after
        )


async def rollback_openai(
    settings: Settings, *, secret_name: str | None = None, dry_run: bool = False
) -> RotationResult:
    """Move AWSCURRENT back to AWSPREVIOUS once the previous key still lists models."""
    name = secret_name or settings.openai_secret_name
    strategy = OpenAIKeyStrategy(
        secret_name=name,
        new_key=None,
        base_url=settings.openai_base_url,
        timeout_s=settings.openai_timeout_s,
    )
    async with aws_client(settings, "secretsmanager") as client:
        return await run_rollback(client, settings, name, strategy, dry_run=dry_run)


class _ResumeOnly(OpenAIKeyStrategy):
    """No new key given: finish a pending version, or explain that a key is needed."""

    def __init__(self, inner: OpenAIKeyStrategy) -> None:
        super().__init__(
            secret_name=inner.secret_name,
            new_key=None,
            base_url=inner.base_url,
            timeout_s=inner.timeout_s,
        )

    async def new_value(self, current: str) -> str:
        raise RotationError(
            f"no new key given for secret {self.secret_name} and no pending version to resume",
            secret_name=self.secret_name,
            version_id="",
            hint="pass the new key with --new-value-from-env VAR or on stdin",
        )
