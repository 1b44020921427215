"""Running `kb-mcp` as a real subprocess: environment, log parsing, clean stops."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KbMcpProcess", "base_env", "run_kb_mcp"]

_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")


def base_env(**overrides: str) -> dict[str, str]:
    """A minimal environment for a child `kb-mcp` (no inherited AWS or OpenAI variables)."""
    env = {k: v for k, v in os.environ.items() if k in _KEEP}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "KB_MCP_LOG_FORMAT": "json",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    env.update(overrides)
    return env


def run_kb_mcp(
    *args: str, env: Mapping[str, str], timeout_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run `python -m kb_mcp ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "kb_mcp", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@dataclass
class KbMcpProcess:
    """A long-running `kb-mcp` child whose stderr lines are collected as they come."""

    args: tuple[str, ...]
    env: dict[str, str]
    handshake: bool = False
    """Pass `--ready-fd` (serve, dev) so `wait_ready()` gets the started line."""
    proc: subprocess.Popen[str] | None = None
    _ready_r: int | None = None
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _more: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._more = threading.Condition(self._lock)

    def start(self) -> KbMcpProcess:
        args: tuple[str, ...] = self.args
        keep: tuple[int, ...] = ()
        if self.handshake:
            self._ready_r, ready_w = os.pipe()
            args, keep = (*args, "--ready-fd", str(ready_w)), (ready_w,)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kb_mcp", *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                pass_fds=keep,
            )
        finally:
            for fd in keep:
                os.close(fd)  # the child holds the only write end: its exit means EOF
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._more:
                self.lines.append(line.rstrip("\n"))
                self._more.notify_all()
        with self._more:
            self.lines.append("")  # the end of the stream wakes the waiters too
            self._more.notify_all()

    def events(self, name: str) -> list[dict[str, Any]]:
        """Parsed JSON log lines whose event is `name`."""
        found = []
        with self._lock:
            lines = list(self.lines)
        for line in lines:
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == name:
                found.append(event)
        return found

    def wait_ready(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """Block until the child's started line (port, url); fails if it exits first."""
        assert self._ready_r is not None, "start the process with handshake=True"
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while not chunks or not chunks[-1].endswith(b"\n"):
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([self._ready_r], [], [], max(0.0, remaining))
            if not readable:
                raise AssertionError(f"not ready within {timeout_s}s:\n{self.text()}")
            chunk = os.read(self._ready_r, 4096)
            if not chunk:
                code = self.wait(timeout_s=30.0)  # the pipe closed: the child is exiting
                raise AssertionError(f"kb-mcp exited ({code}) before ready:\n{self.text()}")
            chunks.append(chunk)
        os.close(self._ready_r)
        self._ready_r = None
        document: dict[str, Any] = json.loads(b"".join(chunks))
        return document

    def wait_for_text(self, needle: str, timeout_s: float = 30.0) -> str:
        """Everything printed so far, once it holds `needle` (what the child wrote before
        a handshake may still be in the pipe when the handshake arrives)."""
        deadline = time.monotonic() + timeout_s
        with self._more:
            while needle not in "\n".join(self.lines):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self._reader is not None and not self._reader.is_alive()):
                    raise AssertionError(f"{needle!r} not printed:\n" + "\n".join(self.lines))
                self._more.wait(remaining)
            return "\n".join(self.lines)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout_s)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
