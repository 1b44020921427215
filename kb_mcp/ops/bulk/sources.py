"""What `kb-mcp import` reads: markdown and text files, directories of them, JSONL records.

- A markdown (`.md`, `.markdown`) or text (`.txt`) file is one document: its title is the
  first `# heading` of a markdown file, else the file name without its suffix; its
  content the whole file. Its `external_id` is its path relative to the directory given
  (or its name, for a file given by itself), with `/` separators: importing the same tree
  again finds the same documents.
- A `.jsonl` file holds one JSON object a line: `title` and `content` (required), `tags`,
  `metadata`, `external_id`, `namespace`, and `id`, `created_at`, `updated_at` (optional);
  `kb-mcp export` writes this shape. A record's `id` and timestamps are kept by the
  document it creates when no stored document has that id (`kb_mcp.db.bulk`), so
  restoring an export into an empty knowledge base gives the same documents, ids and all.
  A record without `external_id` is imported without one (an identical one already
  stored is then a duplicate, not a copy).
- A directory is walked recursively for those suffixes, in name order; other files are
  skipped (and counted).

A file or line that cannot be read becomes a `BadRecord` naming where it is, and the
import goes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

__all__ = ["DOCUMENT_SUFFIXES", "BadRecord", "Record", "read_sources"]

DOCUMENT_SUFFIXES = frozenset({".md", ".markdown", ".txt"})
JSONL_SUFFIX = ".jsonl"


@dataclass(frozen=True, slots=True)
class Record:
    """One document to import, and where it came from (for messages)."""

    origin: str
    title: str
    content: str
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    namespace: str | None = None
    id: UUID | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BadRecord:
    origin: str
    reason: str


def _title_of(path: Path, text: str) -> str:
    if path.suffix.lower() in {".md", ".markdown"}:
        for line in text.splitlines():
            if line.startswith("# ") and line[2:].strip():
                return line[2:].strip()
            if line.strip():
                break
    return path.stem


def _file_record(path: Path, key: str) -> Record | BadRecord:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return BadRecord(key, f"cannot read: {type(exc).__name__}")
    return Record(origin=key, title=_title_of(path, text), content=text, external_id=key)


def _jsonl_records(path: Path, key: str) -> Iterator[Record | BadRecord]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        yield BadRecord(key, f"cannot read: {type(exc).__name__}")
        return
    with handle:
        for number, line in enumerate(handle, start=1):
            origin = f"{key}:{number}"
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                yield BadRecord(origin, "not a JSON object")
                continue
            yield _from_json(origin, data)


def _from_json(origin: str, data: object) -> Record | BadRecord:
    if not isinstance(data, dict):
        return BadRecord(origin, "not a JSON object")
    title, content = data.get("title"), data.get("content")
    if not isinstance(title, str) or not isinstance(content, str):
        return BadRecord(origin, "title and content must be strings")
    tags, metadata = data.get("tags") or [], data.get("metadata") or {}
    if not isinstance(tags, list) or not isinstance(metadata, dict):
        return BadRecord(origin, "tags must be a list and metadata an object")
    key, namespace = data.get("external_id"), data.get("namespace")
    if not isinstance(key, str | None) or not isinstance(namespace, str | None):
        return BadRecord(origin, "external_id and namespace must be strings")
    try:
        kept = _kept(data)
    except ValueError as exc:
        return BadRecord(origin, str(exc))
    return Record(origin, title, content, tags, metadata, key, namespace, *kept)


def _kept(data: dict[str, Any]) -> tuple[UUID | None, datetime | None, datetime | None]:
    """A record's `id` and ISO 8601 `created_at`/`updated_at` (a date-time without an
    offset is UTC), each None when absent."""
    raw_id = data.get("id")
    try:
        doc_id = None if raw_id is None else UUID(str(raw_id))
    except ValueError:
        raise ValueError("id must be a document id (a UUID)") from None
    stamps: list[datetime | None] = []
    for name in ("created_at", "updated_at"):
        value = data.get(name)
        if value is None:
            stamps.append(None)
            continue
        try:
            stamp = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"{name} must be an ISO 8601 date-time") from None
        stamps.append(stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC))
    return doc_id, stamps[0], stamps[1]


def _one(path: Path, key: str) -> Iterator[Record | BadRecord]:
    if path.suffix.lower() == JSONL_SUFFIX:
        yield from _jsonl_records(path, key)
    else:
        yield _file_record(path, key)


def read_sources(paths: Sequence[Path]) -> tuple[list[Record | BadRecord], int]:
    """Every record under `paths`, in order; and how many files were skipped (suffix)."""
    found: list[Record | BadRecord] = []
    skipped = 0
    for root in paths:
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                suffix = path.suffix.lower()
                if suffix not in DOCUMENT_SUFFIXES and suffix != JSONL_SUFFIX:
                    skipped += 1
                    continue
                found.extend(_one(path, path.relative_to(root).as_posix()))
        elif root.is_file():
            found.extend(_one(root, root.name))
        else:
            found.append(BadRecord(str(root), "no such file or directory"))
    return found, skipped
