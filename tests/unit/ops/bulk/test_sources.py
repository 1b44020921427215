"""What `kb-mcp import` reads from a JSONL record: an export's id and timestamps."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from kb_mcp.ops.bulk.sources import BadRecord, Record, read_sources


def _records(tmp_path: Path, lines: list[dict[str, object]]) -> list[Record | BadRecord]:
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return read_sources([source])[0]


def test_a_record_keeps_its_id_and_timestamps(tmp_path: Path) -> None:
    """id, created_at and updated_at are read; a date-time without an offset is UTC."""
    (record,) = _records(
        tmp_path,
        [
            {
                "title": "t",
                "content": "c",
                "id": "0b0e6e4e-5b59-4c53-9d1e-6f0a2d9c8a11",
                "created_at": "2024-01-02T03:04:05.123456+02:00",
                "updated_at": "2024-05-06T07:08:09",
            }
        ],
    )
    assert isinstance(record, Record)
    assert record.id == UUID("0b0e6e4e-5b59-4c53-9d1e-6f0a2d9c8a11")
    assert record.created_at is not None
    assert record.updated_at is not None
    assert record.created_at.isoformat() == "2024-01-02T03:04:05.123456+02:00"
    assert record.updated_at.isoformat() == "2024-05-06T07:08:09+00:00"


def test_a_malformed_id_or_date_fails_that_record_naming_it(tmp_path: Path) -> None:
    """A bad id or timestamp makes that record a failure saying which; the next is read."""
    records = _records(
        tmp_path,
        [
            {"title": "t", "content": "c", "id": "nope"},
            {"title": "t", "content": "c", "created_at": "yesterday"},
            {"title": "t", "content": "c"},
        ],
    )
    assert [r.reason for r in records if isinstance(r, BadRecord)] == [
        "id must be a document id (a UUID)",
        "created_at must be an ISO 8601 date-time",
    ]
    assert isinstance(records[2], Record)
    assert records[2].id is None
