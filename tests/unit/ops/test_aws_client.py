"""`kb_mcp.ops.aws.aws_client`: the ops commands' client, and the error for an AWS
configuration the SDK cannot use (raised while it builds the session and client, before
any request is sent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kb_mcp.config import load_settings
from kb_mcp.errors import ConfigError
from kb_mcp.ops.aws import aws_client


@pytest.fixture(autouse=True)
def aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An AWS config file of this test's own; no credentials or profile from outside."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "KB_MCP_")):
            monkeypatch.delenv(name)
    config = tmp_path / "config"
    config.write_text("[profile kb-other]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return config


async def test_a_profile_that_does_not_exist_is_a_config_error_naming_aws_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "kb-missing")
    with pytest.raises(ConfigError) as caught:
        async with aws_client(load_settings(), "secretsmanager"):
            pass  # pragma: no cover - never opened
    assert caught.value.variable == "AWS_PROFILE"
    assert "kb-missing" in str(caught.value)
    assert "AWS_CONFIG_FILE" in caught.value.hint


@pytest.fixture
def unparsable(aws_config: Path) -> Path:
    aws_config.write_text("[default\nregion = us-east-1\n")  # the section never closed
    return aws_config


@pytest.mark.usefixtures("unparsable")
async def test_an_unparsable_config_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unable to parse config file") as caught:
        async with aws_client(load_settings(), "secretsmanager"):
            pass  # pragma: no cover - never opened
    assert caught.value.variable == "AWS_PROFILE"


async def test_a_profile_that_exists_opens_a_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "kb-other")
    async with aws_client(load_settings(), "secretsmanager") as client:
        assert client.meta.region_name == "us-east-1"
