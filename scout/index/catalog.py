"""The SQLite catalog: documents, chunks, ingest runs, search log, query log and feedback.

The catalog is the source of truth. The vector store and the BM25 index are derived from it,
and a hit whose chunk the catalog does not list is dropped, so a crash between writing vectors
and committing the catalog leaves the previous state readable.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scout.types import PUBLIC, Chunk, Document, LogEntry

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    acl TEXT NOT NULL,
    metadata TEXT NOT NULL,
    text TEXT NOT NULL,
    run_id INTEGER,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    root TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    stats TEXT
);
CREATE TABLE IF NOT EXISTS embeddings (
    text_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (text_hash, model)
);
CREATE TABLE IF NOT EXISTS log_sources (
    source TEXT PRIMARY KEY,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS search_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    query TEXT NOT NULL,
    clicked_doc_id TEXT,
    timestamp TEXT,
    session_id TEXT
);
CREATE INDEX IF NOT EXISTS search_log_source ON search_log(source);
CREATE TABLE IF NOT EXISTS query_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    query TEXT NOT NULL,
    kind TEXT NOT NULL,
    backend TEXT,
    answer TEXT,
    hits TEXT NOT NULL,
    latency_ms REAL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    query_log_id INTEGER NOT NULL REFERENCES query_log(id),
    rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    comment TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS facts (
    source TEXT NOT NULL,
    subject TEXT NOT NULL,
    relation TEXT NOT NULL,
    object TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS facts_source ON facts(source);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StoredDocument:
    id: str
    source: str
    title: str
    hash: str
    version: int
    acl: tuple[str, ...]


@dataclass(frozen=True)
class StoredChunk:
    id: str
    doc_id: str
    index: int
    start: int
    end: int
    text: str
    title: str
    source: str
    acl: tuple[str, ...]


class Catalog:
    """One SQLite file per index. Writes go through `transaction()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # Documents and chunks

    def documents(self) -> dict[str, StoredDocument]:
        rows = self._conn.execute("SELECT id, source, title, hash, version, acl FROM documents")
        return {row[0]: StoredDocument(row[0], row[1], row[2], row[3], row[4], tuple(json.loads(row[5]))) for row in rows}

    def document_text(self, doc_id: str) -> str | None:
        row = self._conn.execute("SELECT text FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return row[0] if row else None

    def document_ids_under(self, source_prefix: str) -> set[str]:
        pattern = source_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._conn.execute("SELECT id FROM documents WHERE source = ? OR source LIKE ? ESCAPE '\\'", (source_prefix, pattern))
        return {row[0] for row in rows}

    def chunk_ids_of(self, doc_ids: Iterable[str]) -> set[str]:
        ids = list(doc_ids)
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            found.update(row[0] for row in self._conn.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", batch))
        return found

    def put_document(self, conn: sqlite3.Connection, document: Document, doc_hash: str, chunks: list[Chunk], run_id: int) -> None:
        """Insert or replace a document and its chunks inside the caller's transaction."""
        row = conn.execute("SELECT version FROM documents WHERE id = ?", (document.id,)).fetchone()
        version = row[0] + 1 if row else 1
        conn.execute("DELETE FROM chunks WHERE doc_id = ?", (document.id,))
        conn.execute(
            "INSERT OR REPLACE INTO documents (id, source, title, hash, version, acl, metadata, text, run_id, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (document.id, document.source, document.title, doc_hash, version, json.dumps(list(document.acl)),
             json.dumps(document.metadata, sort_keys=True, default=str), document.text, run_id, time.time()),
        )
        conn.executemany(
            "INSERT INTO chunks (id, doc_id, idx, start, end, text) VALUES (?, ?, ?, ?, ?, ?)",
            [(c.id, c.doc_id, c.index, c.start, c.end, c.text) for c in chunks],
        )

    def delete_documents(self, conn: sqlite3.Connection, doc_ids: Iterable[str]) -> None:
        for doc_id in doc_ids:
            conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
            conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))

    def all_chunks(self) -> list[tuple[str, str]]:
        """(chunk id, text) of every chunk, ordered by id so derived indexes are deterministic."""
        return list(self._conn.execute("SELECT id, text FROM chunks ORDER BY id"))

    def chunks_by_id(self, chunk_ids: Iterable[str]) -> dict[str, StoredChunk]:
        ids = list(chunk_ids)
        found: dict[str, StoredChunk] = {}
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            query = (
                "SELECT c.id, c.doc_id, c.idx, c.start, c.end, c.text, d.title, d.source, d.acl "
                f"FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})"
            )
            for row in self._conn.execute(query, batch):
                found[row[0]] = StoredChunk(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], tuple(json.loads(row[8])))
        return found

    def restricted_chunks(self) -> dict[str, tuple[str, ...]]:
        """Chunk id -> ACL groups for every chunk of a document that is not public."""
        rows = self._conn.execute("SELECT c.id, d.acl FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.acl != ?", (json.dumps([PUBLIC]),))
        return {row[0]: tuple(json.loads(row[1])) for row in rows}

    def counts(self) -> dict[str, int]:
        tables = ("documents", "chunks", "search_log", "query_log", "feedback", "runs")
        return {table: self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in tables}

    # Ingest runs

    def start_run(self, root: str) -> int:
        cursor = self._conn.execute("INSERT INTO runs (root, started_at, status) VALUES (?, ?, 'running')", (root, time.time()))
        return int(cursor.lastrowid)

    def finish_run(self, conn: sqlite3.Connection, run_id: int, status: str, stats: dict) -> None:
        conn.execute(
            "UPDATE runs SET finished_at = ?, status = ?, stats = ? WHERE id = ?",
            (time.time(), status, json.dumps(stats, sort_keys=True), run_id),
        )

    def mark_run_failed(self, run_id: int, reason: str) -> None:
        self._conn.execute(
            "UPDATE runs SET finished_at = ?, status = 'failed', stats = ? WHERE id = ?",
            (time.time(), json.dumps({"error": reason}), run_id),
        )

    # Embedding cache, keyed by the hash of the embedded text and the embedder's name

    def cached_embeddings(self, text_hashes: list[str], model: str) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(text_hashes), 500):
            batch = text_hashes[start : start + 500]
            marks = ",".join("?" * len(batch))
            rows = self._conn.execute(f"SELECT text_hash, vector FROM embeddings WHERE model = ? AND text_hash IN ({marks})", [model, *batch])
            for text_hash, blob in rows:
                found[text_hash] = np.frombuffer(blob, dtype=np.float32)
        return found

    def cache_embeddings(self, items: list[tuple[str, np.ndarray]], model: str) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings (text_hash, model, vector) VALUES (?, ?, ?)",
                [(text_hash, model, np.asarray(vector, dtype=np.float32).tobytes()) for text_hash, vector in items],
            )

    # Search log (historical, ingested from files)

    def log_source_hash(self, source: str) -> str | None:
        row = self._conn.execute("SELECT hash FROM log_sources WHERE source = ?", (source,)).fetchone()
        return row[0] if row else None

    def log_sources_under(self, source_prefix: str) -> set[str]:
        rows = self._conn.execute("SELECT source FROM log_sources")
        return {row[0] for row in rows if row[0] == source_prefix or row[0].startswith(source_prefix.rstrip("/") + "/")}

    def replace_log(self, conn: sqlite3.Connection, source: str, source_hash: str | None, entries: list[LogEntry]) -> None:
        """Replace the events of one log file; `source_hash=None` removes the file's events."""
        conn.execute("DELETE FROM search_log WHERE source = ?", (source,))
        conn.execute("DELETE FROM log_sources WHERE source = ?", (source,))
        if source_hash is None:
            return
        conn.execute("INSERT INTO log_sources (source, hash) VALUES (?, ?)", (source, source_hash))
        conn.executemany(
            "INSERT INTO search_log (source, query, clicked_doc_id, timestamp, session_id) VALUES (?, ?, ?, ?, ?)",
            [(source, e.query, e.clicked_doc_id, e.timestamp, e.session_id) for e in entries],
        )

    def replace_facts(self, conn: sqlite3.Connection, source: str, facts: list) -> None:
        """Replace the rows of one fact table; an empty list removes the file's facts."""
        conn.execute("DELETE FROM facts WHERE source = ?", (source,))
        conn.executemany(
            "INSERT INTO facts (source, subject, relation, object) VALUES (?, ?, ?, ?)",
            [(source, f.subject, f.relation, f.object) for f in facts],
        )

    def fact_sources(self) -> set[str]:
        return {row[0] for row in self._conn.execute("SELECT DISTINCT source FROM facts")}

    def facts(self) -> list[tuple[str, str, str]]:
        return list(self._conn.execute("SELECT subject, relation, object FROM facts ORDER BY rowid"))

    def search_log(self) -> list[LogEntry]:
        rows = self._conn.execute("SELECT query, clicked_doc_id, timestamp, session_id FROM search_log ORDER BY id")
        return [LogEntry(*row) for row in rows]

    # Live query log and feedback

    def log_query(self, query: str, kind: str, hits: list[dict], backend: str | None = None, answer: str | None = None, latency_ms: float | None = None) -> int:
        cursor = self._conn.execute(
            "INSERT INTO query_log (created_at, query, kind, backend, answer, hits, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), query, kind, backend, answer, json.dumps(hits), latency_ms),
        )
        return int(cursor.lastrowid)

    def add_feedback(self, query_log_id: int, rating: int, comment: str | None = None) -> int:
        cursor = self._conn.execute(
            "INSERT INTO feedback (query_log_id, rating, comment, created_at) VALUES (?, ?, ?, ?)",
            (query_log_id, rating, comment, time.time()),
        )
        return int(cursor.lastrowid)

    def feedback(self) -> list[tuple[int, int, int, str | None]]:
        return list(self._conn.execute("SELECT id, query_log_id, rating, comment FROM feedback ORDER BY id"))

    # Small key-value state (derived-index generations)

    def get_state(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))
