"""One set of --env names for every command that takes one."""

from __future__ import annotations

import argparse

import pytest

from kb_mcp.cli import SECRETS_COMMANDS, build_parser
from kb_mcp.ops.aws import ENV_CHOICES


def _env_choices(op: str) -> tuple[str, ...] | None:
    parser = build_parser(["secrets", op])
    secrets = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    group = secrets.choices["secrets"]
    ops = next(a for a in group._actions if isinstance(a, argparse._SubParsersAction))
    command = ops.choices[op]
    for action in command._actions:
        if "--env" in action.option_strings:
            return tuple(action.choices or ())
    return None


@pytest.mark.parametrize("op", sorted(SECRETS_COMMANDS))
def test_every_env_option_takes_the_same_names(op: str) -> None:
    """verify, seed, rotate, age and policy: dev, staging, prod, development, production."""
    choices = _env_choices(op)
    if op == "audit":
        assert choices is None
    else:
        assert choices is not None
        assert sorted(choices) == sorted(ENV_CHOICES)
