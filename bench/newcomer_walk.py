"""A newcomer's walk: every command the README and docs/ name, in order, from a fresh clone.

    python bench/newcomer_walk.py [--source .] [--venv PATH] [--with-suite] [--out walk.md]

Clones `--source` (default: this checkout, its committed HEAD) into a temporary folder and,
as the README says, runs
`python3 -m venv .venv && .venv/bin/pip install -e ./secretswap -e '.[local]'`
there (`--venv PATH` reuses an installed venv instead, to walk the rest quickly), then
starts `.venv/bin/kb-mcp dev --port 0` and, beside it, runs each documented command in
the order the documentation gives them, printing for each its command line, exit code,
duration and what it printed (stdout and stderr, the first lines of each). Ends with the
stack stopped by SIGINT, as Ctrl-C would. `bash .ci/run` (the whole suite, ~17 minutes) is
walked only with `--with-suite`. Nothing is read from logs: the port comes from the
`--ready-fd` handshake. Uses only the standard library, so it runs with any python3.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_SHOWN_LINES = 12
_POLICY = ["--account", "123456789012", "--region", "us-east-1"]


def _show(label: str, text: str) -> list[str]:
    lines = text.rstrip("\n").splitlines()
    if not lines:
        return []
    shown = lines[:_SHOWN_LINES]
    more = len(lines) - len(shown)
    out = [f"  {label}:"] + [f"    {line[:160]}" for line in shown]
    if more > 0:
        out.append(f"    ... ({more} more lines)")
    return out


class Walk:
    """Runs steps in a clone and keeps what each printed."""

    def __init__(self, clone: Path, env: dict[str, str]) -> None:
        self.clone = clone
        self.env = env
        self.report: list[str] = []
        self.failed: list[str] = []

    def run(
        self, title: str, argv: list[str], *, ok: tuple[int, ...] = (0,), timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = subprocess.run(  # noqa: S603 - the documented commands, as written
            argv,
            cwd=self.clone,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        took = time.monotonic() - started
        verdict = "ok" if done.returncode in ok else "UNEXPECTED"
        if verdict != "ok":
            self.failed.append(title)
        shown = " ".join(argv)
        lines = [f"### {title}", "", "```", f"$ {shown}", f"  exit {done.returncode} ({verdict}), "
                 f"{took:.1f} s"]  # fmt: skip
        lines += _show("stdout", done.stdout) + _show("stderr", done.stderr)
        lines += ["```", ""]
        self.report += lines
        print("\n".join(lines), flush=True)
        return done


def _start_dev(walk: Walk) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    read_fd, write_fd = os.pipe()
    argv = [".venv/bin/kb-mcp", "dev", "--port", "0", "--ready-fd", str(write_fd)]
    started = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - our own console script
        argv,
        cwd=walk.clone,
        env=walk.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(walk.clone / "dev.log", "wb"),  # noqa: SIM115 - the child owns it
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as ready:
        line = ready.readline()
    if not line:
        raise SystemExit(f"kb-mcp dev exited before ready:\n{(walk.clone / 'dev.log').read_text()}")
    started_line = json.loads(line)
    took = time.monotonic() - started
    banner = (walk.clone / "dev.log").read_text()
    walk.report += ["### kb-mcp dev", "", "```", f"$ {' '.join(argv[:4])}",
                    f"  ready in {took:.1f} s: {started_line}"]  # fmt: skip
    walk.report += _show("stderr (the banner)", banner[banner.find("kb-mcp dev: the local") :])
    walk.report += ["```", ""]
    print("\n".join(walk.report[-12:]), flush=True)
    return proc, started_line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default=".", help="repository to clone (default: this one)")
    parser.add_argument("--venv", help="reuse this installed venv instead of installing")
    parser.add_argument("--with-suite", action="store_true", help="also run bash .ci/run")
    parser.add_argument("--out", help="also write the walk as Markdown to this file")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="kb-walk-"))
    os.chmod(base, 0o711)  # noqa: S103 - as root, the postgres user must traverse it
    clone = base / "kb-mcp"
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.setdefault("PATH", "/usr/bin:/bin")
    for name in ("VIRTUAL_ENV", "AWS_ENDPOINT_URL", "KB_MCP_ENV", "PYTHONPATH"):
        env.pop(name, None)
    walk = Walk(clone, env)
    load = os.getloadavg()
    walk.report += ["# A newcomer's walk", "", f"- load average at start: {load[0]:.2f} "
                    f"{load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs",
                    f"- python: {sys.version.split()[0]}", ""]  # fmt: skip
    source = str(Path(args.source).resolve())
    walk.clone = base
    walk.run("git clone", ["git", "clone", "--quiet", source, str(clone)])
    walk.clone = clone
    if args.venv:
        (clone / ".venv").symlink_to(Path(args.venv).resolve())
        walk.report += [f"(install skipped: .venv -> {args.venv})", ""]
    else:
        walk.run(
            "README: install",
            [
                "bash",
                "-c",
                "python3 -m venv .venv && .venv/bin/pip install -q -e ./secretswap -e '.[local]'",
            ],
            timeout=1800,
        )
    walk.run("kb-mcp --help", [".venv/bin/kb-mcp", "--help"])
    dev, ready = _start_dev(walk)
    try:
        url = ready["url"]
        kb = ".venv/bin/kb-mcp"
        walk.run("HTTP: /healthz", ["curl", "-sS", url.removesuffix("/mcp") + "/healthz"])
        walk.run("HTTP: /readyz", ["curl", "-sS", url.removesuffix("/mcp") + "/readyz"])
        walk.run("README: secrets verify", [kb, "secrets", "verify"])
        walk.run("README: secrets age", [kb, "secrets", "age"])
        walk.run(
            "README: secrets seed (existing secrets kept)",
            [kb, "secrets", "seed", "--if-missing", "--generate-openai-key"],
        )
        walk.run(
            "README: secrets rotate (dry run)", [kb, "secrets", "rotate", "postgres", "--dry-run"]
        )
        walk.run(
            "docs/OPERATIONS: secrets rotate openai --generate",
            [kb, "secrets", "rotate", "openai", "--generate"],
        )
        walk.run("README: secrets audit", [kb, "secrets", "audit", "--history-depth", "10"])
        walk.run(
            "README: secrets policy --check",
            [kb, "secrets", "policy", *_POLICY, "--env", "prod", "--check"],
        )
        walk.run(
            "docs/CONFIGURATION: --env production",
            [kb, "secrets", "policy", *_POLICY, "--env", "production"],
        )
        walk.run(
            "README: drill",
            [kb, "drill", "--rotations", "1", "--warmup", "2", "--cooldown", "1", "--no-progress"],
            timeout=900,
        )
        for script in sorted((clone / "secrets").glob("*.sh")):
            walk.run(
                f"README: bash secrets/{script.name} --help",
                ["bash", f"secrets/{script.name}", "--help"],
            )
        walk.run(
            "README: bash secrets/test-secret-retrieval.sh",
            ["bash", "secrets/test-secret-retrieval.sh"],
        )
        walk.run(
            "README: bash secrets/check-rotation-age.sh", ["bash", "secrets/check-rotation-age.sh"]
        )
        if shutil.which("node") and shutil.which("npm"):
            walk.run(
                "TypeScript client: npm ci",
                ["bash", "-c", "cd tests/e2e/ts && npm ci --no-audit --no-fund --loglevel=error"],
            )
            walk.run("TypeScript client over HTTP", ["node", "tests/e2e/ts/drive.mjs", "http", url])
    finally:
        started = time.monotonic()
        dev.send_signal(signal.SIGINT)
        code = dev.wait(timeout=120)
        walk.report += [
            "### Ctrl-C (SIGINT) to kb-mcp dev",
            "",
            f"exit {code} after {time.monotonic() - started:.1f} s",
            "",
        ]
    if args.with_suite:
        walk.run("README: bash .ci/run", ["bash", ".ci/run", "-q", "-x"], timeout=3600)
    walk.report += ["", f"unexpected: {', '.join(walk.failed) or 'none'}"]
    print(walk.report[-1])
    if args.out:
        Path(args.out).write_text("\n".join(walk.report) + "\n", encoding="utf-8")
    shutil.rmtree(base, ignore_errors=True)
    return 1 if walk.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
