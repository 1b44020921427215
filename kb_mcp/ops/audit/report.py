"""The audit's two renderings: a Markdown report (written only when asked) and a summary."""

from __future__ import annotations

from pathlib import Path

from kb_mcp.ops.audit.scan import DEFAULT_ALLOWLIST, AuditResult

__all__ = ["render_markdown", "render_summary"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: AuditResult) -> str:
    """The audit report: scope, verdict, findings, `.env` policy, allowed entries."""
    verdict = "PASS: no findings" if result.clean else (
        f"FAIL: {len(result.findings)} finding(s), {len(result.env_failures)} .env failure(s)"
    )  # fmt: skip
    history = (
        f"{result.commits_scanned} commit(s) (depth {result.history_depth})"
        if result.mode == "tree" else "not scanned (--files mode)"
    )  # fmt: skip
    out = [
        "# Secret audit report",
        "",
        f"- When: {result.started_at.isoformat(timespec='seconds')}",
        f"- Mode: {result.mode}",
        f"- Files scanned: {result.files_scanned}",
        f"- History: {history}",
        f"- Detectors: {', '.join(result.detectors)}",
        *(f"- Note: {note}" for note in result.notes),
        "",
        f"**Verdict: {verdict}**",
        "",
        "Previews show at most four characters; fingerprints are sha256 prefixes (use them in",
        f"`{DEFAULT_ALLOWLIST}` entries, each with a reason). Rotate any real secret found.",
    ]
    for title, rows in (("Findings", result.findings), ("Allowed (allowlist)", result.allowed)):
        out += ["", f"## {title}", ""]
        if not rows:
            out.append("None.")
            continue
        out += ["| kind | location | detector | preview | fingerprint | reason |",
                "|---|---|---|---|---|---|"]  # fmt: skip
        out += [
            f"| {f.kind} | {_cell(f.location)} | {f.detector} | `{f.preview}` | {f.fingerprint} "
            f"| {_cell(f.allowed_reason or '')} |"
            for f in rows
        ]
    out += ["", "## .env policy", ""]
    if result.env_checks:
        out += ["| file | check | result | detail |", "|---|---|---|---|"]
        out += [
            f"| {_cell(c.path)} | {c.check} | {'ok' if c.ok else 'FAIL'} | {_cell(c.detail)} |"
            for c in result.env_checks
        ]
    else:
        out.append("No .env files in scope.")
    if result.unused_allowlist:
        out += ["", "## Unused allowlist entries", ""]
        out += [
            f"- `{e.path}` {e.detector} {e.fingerprint}: {e.reason}"
            for e in result.unused_allowlist
        ]
    return "\n".join(out) + "\n"


def render_summary(result: AuditResult, report: Path | None) -> str:
    """A few lines for the terminal (and the pre-commit hook's output)."""
    lines = [
        f"secret audit ({result.mode}): {result.files_scanned} file(s), "
        f"{result.commits_scanned} commit(s); {len(result.findings)} finding(s), "
        f"{len(result.allowed)} allowed, {len(result.env_failures)} .env failure(s)"
    ]
    lines += [f"  {f.kind}: {f.location} {f.detector} {f.preview} ({f.fingerprint})"
              for f in result.findings]  # fmt: skip
    lines += [f"  env: {c.path} {c.check}: {c.detail}" for c in result.env_failures]
    lines.append(f"verdict: {'pass' if result.clean else 'fail'}"
                 + (f" (report: {report})" if report else ""))  # fmt: skip
    return "\n".join(lines) + "\n"
