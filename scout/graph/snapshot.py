"""A consistent read of everything the graph is built from, taken from the catalog in one transaction."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from scout.index.store import GENERATION_KEY


@dataclass(frozen=True)
class DocumentRow:
    id: str
    title: str
    acl: tuple[str, ...]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChunkRow:
    id: str
    doc_id: str
    text: str


@dataclass(frozen=True)
class ClickRow:
    """One search-log event; `clicked_doc_id` and `session_id` may be missing."""

    query: str
    clicked_doc_id: str | None
    session_id: str | None


@dataclass
class CatalogSnapshot:
    """Documents, chunks, facts and search-log events as of one catalog generation."""

    generation: str
    documents: list[DocumentRow] = field(default_factory=list)
    chunks: list[ChunkRow] = field(default_factory=list)
    facts: list[tuple[str, str, str]] = field(default_factory=list)
    clicks: list[ClickRow] = field(default_factory=list)


def read_snapshot(catalog_path: Path) -> CatalogSnapshot:
    """Read the catalog through its own read-only connection inside one read transaction.

    In WAL mode a read transaction reads one committed state, so the generation read here
    always matches the rows read with it, even while another process ingests.
    """
    conn = sqlite3.connect(f"file:{catalog_path}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")
        row = conn.execute("SELECT value FROM state WHERE key = ?", (GENERATION_KEY,)).fetchone()
        snapshot = CatalogSnapshot(generation=row[0] if row else "0")
        for doc_id, title, acl, metadata in conn.execute("SELECT id, title, acl, metadata FROM documents ORDER BY id"):
            snapshot.documents.append(DocumentRow(doc_id, title, tuple(json.loads(acl)), _aliases(json.loads(metadata))))
        for chunk_id, doc_id, text in conn.execute("SELECT id, doc_id, text FROM chunks ORDER BY doc_id, idx"):
            snapshot.chunks.append(ChunkRow(chunk_id, doc_id, text))
        snapshot.facts = [tuple(row) for row in conn.execute("SELECT subject, relation, object FROM facts ORDER BY rowid")]
        for query, clicked, session in conn.execute("SELECT query, clicked_doc_id, session_id FROM search_log ORDER BY id"):
            snapshot.clicks.append(ClickRow(query, clicked, session))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return snapshot


def _aliases(metadata: dict) -> tuple[str, ...]:
    """Aliases a JSONL record gave in an `aliases` field: a list of names or one name."""
    value = metadata.get("aliases")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(name.strip() for name in value if isinstance(name, str) and name.strip())
