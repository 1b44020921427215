# syntax=docker/dockerfile:1
# kb-mcp server image: slim Python 3.11, non-root (uid/gid 10001, as the ECS task
# definition in secrets/ecs/task-definition.json runs it), no secrets inside.
#
# Credentials are never baked in or passed as environment values: at boot the server
# reads kb-mcp/{env}/openai-api-key and kb-mcp/{env}/postgres-credentials from AWS
# Secrets Manager with the task's IAM role, and re-reads them while it runs.
#
#   docker build -t kb-mcp .
#   docker compose up        # the whole local stack, see docker-compose.yml

# ---------------------------------------------------------------- build stage
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY kb_mcp ./kb_mcp
# Every dependency ships manylinux wheels: no compiler needed. The `local` extra (moto,
# the PostgreSQL wheel behind `kb-mcp dev`) is deliberately left out of the image.
RUN pip wheel --wheel-dir /wheels .

# ---------------------------------------------------------------- runtime stage
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 kbmcp \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin kbmcp

COPY --from=build /wheels /tmp/wheels
RUN pip install --no-index --find-links /tmp/wheels kb-mcp \
    && rm -rf /tmp/wheels

WORKDIR /app
# The one-shot seeding service of docker-compose.yml runs this wrapper of
# `kb-mcp secrets seed` from this image.
COPY --chmod=0755 secrets/setup-local-secrets.sh /app/secrets/setup-local-secrets.sh

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
