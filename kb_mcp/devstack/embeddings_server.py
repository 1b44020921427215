"""The local OpenAI-compatible embeddings API as a process of its own.

    python -m kb_mcp.devstack.embeddings_server [--host H] [--port P]
        [--key-from-env VAR ...] [--key-from-secret NAME ...]

docker compose runs it (from the app image) so the stack works offline. Accepted API
keys come from environment variables named on the command line (default
``OPENAI_API_KEY``) and from secrets in the Secrets Manager the AWS environment points at:
every key held by a live version (AWSCURRENT, AWSPENDING, AWSPREVIOUS) of each named
secret, re-read when an unknown key arrives, so a rotated or re-seeded key is accepted at
once (see ``local_openai``). Never from arguments, which would show in ``ps``. Embeddings
are the deterministic feature-hash vectors of ``hashing``. SIGTERM and SIGINT stop it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import structlog
import uvicorn

from kb_mcp.devstack.local_openai import AcceptedKeys, KeysFromSecrets, build_app
from kb_mcp.errors import EXIT_OK, EXIT_USAGE
from kb_mcp.observability.logging import configure_logging
from kb_mcp.observability.redaction import secret_registry

__all__ = ["main"]

log = structlog.get_logger(__name__)

_DEFAULT_KEY_VARIABLE = "OPENAI_API_KEY"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kb_mcp.devstack.embeddings_server",
        description="Serve a local OpenAI-compatible embeddings API (feature hashing).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    parser.add_argument(
        "--key-from-env",
        action="append",
        metavar="VAR",
        help=f"accept the API key held in this variable (repeatable; default "
        f"{_DEFAULT_KEY_VARIABLE})",
    )
    parser.add_argument(
        "--key-from-secret",
        action="append",
        metavar="NAME",
        help="accept the keys of this secret's live versions, re-read on an unknown key "
        "(AWS_ENDPOINT_URL, AWS_REGION)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, then serve until stopped; the exit code."""
    args = _parser().parse_args(argv)
    variables = args.key_from_env or ([] if args.key_from_secret else [_DEFAULT_KEY_VARIABLE])
    keys = [os.environ.get(name, "").strip() for name in variables]
    missing = [name for name, key in zip(variables, keys, strict=True) if not key]
    if missing:
        sys.stderr.write(
            f"embeddings_server: error: environment variable {', '.join(missing)} is empty "
            "or unset\n"
        )
        return EXIT_USAGE
    secret_registry().register(*keys)
    configure_logging(json_lines=True)
    loader = (
        KeysFromSecrets(
            args.key_from_secret,
            region=os.environ.get("AWS_REGION", "us-east-1"),
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        )
        if args.key_from_secret
        else None
    )
    log.info(
        "embeddings_server.starting",
        host=args.host,
        port=args.port,
        keys=len(keys),
        key_secrets=list(args.key_from_secret or ()),
    )
    uvicorn.run(
        build_app(AcceptedKeys(keys, loader=loader)),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
