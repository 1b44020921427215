# kb-mcp server image: slim Python 3.11, non-root (uid/gid 10001, as the ECS task
# definition in secrets/ecs/task-definition.json runs it), no secrets inside.
#
# Credentials are never baked in or passed as environment values: at boot the server
# reads kb-mcp/{env}/openai-api-key and kb-mcp/{env}/postgres-credentials from AWS
# Secrets Manager with the task's IAM role, and re-reads them while it runs.
#
#   docker build -t kb-mcp .
#   docker compose up        # the whole local stack, see docker-compose.yml
#
# Needs Docker Engine 20.10 or later, with or without BuildKit: no `# syntax=` frontend
# (it would be pulled from a public registry), no BuildKit-only instructions. Compose
# needs v2.23.1 or later (docker-compose.yml uses `configs.content`).
#
# Reproducible: every package the image installs is pinned by docker/constraints.txt
# (regenerate it with the command written at its top when pyproject.toml changes).

# ---------------------------------------------------------------- build stage
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The installed tree lives in a venv that the runtime stage copies whole: no wheel files
# ever reach the final image (nor the venv's own pip, removed once it has installed). Every dependency ships manylinux wheels: no compiler needed.
# The `local` extra (moto, the PostgreSQL wheel behind `kb-mcp dev`) is left out, except
# boto3, which the local embeddings service of docker-compose.yml reads its keys with.
RUN python -m venv /opt/kb-mcp
WORKDIR /src
COPY docker/constraints.txt ./
COPY pyproject.toml README.md ./
COPY kb_mcp ./kb_mcp
COPY secretswap ./secretswap
RUN /opt/kb-mcp/bin/pip install --requirement constraints.txt \
    && /opt/kb-mcp/bin/pip install --no-deps --constraint constraints.txt ./secretswap . \
    && /opt/kb-mcp/bin/pip check \
    && /opt/kb-mcp/bin/pip uninstall --quiet --yes pip setuptools

# ---------------------------------------------------------------- runtime stage
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/kb-mcp/bin:$PATH

RUN groupadd --system --gid 10001 kbmcp \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin kbmcp

COPY --from=build /opt/kb-mcp /opt/kb-mcp

WORKDIR /app
# The one-shot seeding service of docker-compose.yml runs this wrapper of
# `kb-mcp secrets seed` from this image (executable in git, so COPY keeps the mode).
COPY secrets/setup-local-secrets.sh /app/secrets/setup-local-secrets.sh

USER 10001:10001

EXPOSE 8080

# Liveness only (/readyz is for the load balancer). No curl in slim images: urllib.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3).status == 200 else 1)"]

# Inside a container the server must bind 0.0.0.0 to be reachable at all. kb-mcp refuses
# a non-loopback bind without a bearer-token secret unless told otherwise, so the default
# command passes --allow-unauthenticated: it suits a task on a private subnet that only
# the load balancer reaches (the ECS task definition does the same), and the server logs
# a warning about it. To require a token instead, set KB_MCP_AUTH_TOKEN_SECRET (a secret
# *name*) and override the command without the flag.
CMD ["kb-mcp", "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8080", "--allow-unauthenticated"]
