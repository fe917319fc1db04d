"""Incremental ingest: load, diff against the catalog, chunk, embed, write, clean up.

Order of writes, chosen so a crash at any step leaves the previous state readable and a re-run
finishes the job:
1. embeddings go to the catalog's cache as each batch finishes (a re-run does not re-embed);
2. vectors of new chunk versions are upserted (old versions stay; the catalog ignores new ones);
3. one catalog transaction swaps documents, chunks, log events and facts, and bumps the generation;
4. stale vectors are deleted and the BM25 index and the graph are rebuilt for the new generation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from scout.errors import ConfigError
from scout.index.store import GENERATION_KEY, IndexStore
from scout.ingest.chunking import chunk_document, document_hash
from scout.ingest.loaders import LoadedFile, Problem, SkipFile, load_file, scan
from scout.types import PUBLIC, Chunk, Document

logger = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """Counts and problems of one ingest run."""

    run_id: int
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_from_cache: int = 0
    log_events: int = 0
    facts: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"run {self.run_id}: {len(self.added)} added, {len(self.updated)} updated, {len(self.deleted)} deleted, "
            f"{self.unchanged} unchanged; {self.chunks_embedded} chunks embedded, {self.chunks_from_cache} from cache; "
            f"{self.log_events} log events, {self.facts} facts; {len(self.problems)} problems; {self.seconds:.1f} s"
        )

    def stats(self) -> dict:
        return {
            "added": len(self.added), "updated": len(self.updated), "deleted": len(self.deleted),
            "unchanged": self.unchanged, "chunks_embedded": self.chunks_embedded,
            "chunks_from_cache": self.chunks_from_cache, "log_events": self.log_events, "facts": self.facts,
            "problems": [str(p) for p in self.problems],
        }


@dataclass
class _Plan:
    """The diff between what the files hold and what the catalog holds."""

    documents: dict[str, tuple[Document, str]]
    changed: list[str]
    deleted: set[str]
    logs: list[LoadedFile]
    removed_logs: set[str]
    fact_files: list[LoadedFile]
    removed_fact_files: set[str]


def ingest(store: IndexStore, paths: Iterable[str | Path], acl: tuple[str, ...] | None = None, progress: bool = True) -> IngestReport:
    """Bring the index in line with the files under `paths`: add, update and remove documents."""
    started = time.perf_counter()
    roots = _check_roots(paths)
    run_id = store.catalog.start_run(os.pathsep.join(str(r) for r in roots))
    report = IngestReport(run_id=run_id)
    try:
        loaded = _load_all(roots, acl or (PUBLIC,), report, progress)
        plan = _plan(store, roots, loaded, report)
        chunks = _chunk(store, plan, progress)
        vectors = _embed(store, chunks, report, progress)
        _upsert(store, plan, chunks, vectors)
        _commit(store, plan, chunks, report)
        _clean_up(store, plan, chunks)
    except BaseException as exc:
        store.catalog.mark_run_failed(run_id, repr(exc))
        raise
    report.seconds = time.perf_counter() - started
    logger.info("ingest %s", report.summary())
    return report


def _check_roots(paths: Iterable[str | Path]) -> list[Path]:
    roots = [Path(p).expanduser().resolve() for p in paths]
    if not roots:
        raise ConfigError("nothing to ingest: give at least one file or folder")
    for root in roots:
        if not root.exists():
            raise ConfigError(f"path not found: {root}; give an existing file or folder")
    return roots


def _load_all(roots: list[Path], acl: tuple[str, ...], report: IngestReport, progress: bool) -> list[LoadedFile]:
    files = [(root, path) for root in roots for path in scan(root)]
    loaded: list[LoadedFile] = []
    for root, path in tqdm(files, desc="reading", unit="file", disable=not progress):
        try:
            result = load_file(path, root, acl)
        except SkipFile as exc:
            report.problems.append(Problem(str(path), str(exc)))
            logger.info("skipped %s: %s", path, exc)
            continue
        report.problems.extend(result.problems)
        loaded.append(result)
    return loaded


def _plan(store: IndexStore, roots: list[Path], loaded: list[LoadedFile], report: IngestReport) -> _Plan:
    documents: dict[str, tuple[Document, str]] = {}
    for result in loaded:
        for document in result.documents:
            if document.id in documents:
                report.problems.append(Problem(document.source, f"document id {document.id!r} already comes from {documents[document.id][0].source}; skipped"))
                continue
            documents[document.id] = (document, document_hash(document))

    existing = store.catalog.documents()
    changed = [doc_id for doc_id, (_, doc_hash) in documents.items() if doc_id not in existing or existing[doc_id].hash != doc_hash]
    report.added = [doc_id for doc_id in changed if doc_id not in existing]
    report.updated = [doc_id for doc_id in changed if doc_id in existing]
    report.unchanged = len(documents) - len(changed)

    under_roots: set[str] = set()
    seen_logs = {str(r.path) for r in loaded if r.kind == "log"}
    seen_facts = {str(r.path) for r in loaded if r.kind == "facts"}
    removed_logs: set[str] = set()
    removed_facts: set[str] = set()
    fact_sources = store.catalog.fact_sources()
    for root in roots:
        prefix = str(root) if root.is_file() else str(root) + os.sep
        under_roots |= store.catalog.document_ids_under(prefix)
        removed_logs |= store.catalog.log_sources_under(prefix) - seen_logs
        removed_facts |= {s for s in fact_sources if s.startswith(prefix)} - seen_facts
    report.deleted = sorted(under_roots - set(documents))

    logs = [r for r in loaded if r.kind == "log" and store.catalog.log_source_hash(str(r.path)) != r.content_hash]
    facts = [r for r in loaded if r.kind == "facts" and store.catalog.get_state(f"facts:{r.path}") != r.content_hash]
    return _Plan(documents, changed, set(report.deleted), logs, removed_logs, facts, removed_facts)


def _chunk(store: IndexStore, plan: _Plan, progress: bool) -> dict[str, list[Chunk]]:
    chunks: dict[str, list[Chunk]] = {}
    for doc_id in tqdm(plan.changed, desc="chunking", unit="doc", disable=not progress or not plan.changed):
        document, doc_hash = plan.documents[doc_id]
        chunks[doc_id] = chunk_document(document, store.config.chunking, doc_hash)
    return chunks


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _embed(store: IndexStore, chunks: dict[str, list[Chunk]], report: IngestReport, progress: bool) -> dict[str, np.ndarray]:
    """Embed every chunk, reusing vectors cached by text hash; returns chunk id -> vector."""
    all_chunks = [c for doc_chunks in chunks.values() for c in doc_chunks]
    model = store.config.embedder.model
    hashes = {c.id: text_hash(c.text) for c in all_chunks}
    cached = store.catalog.cached_embeddings(sorted(set(hashes.values())), model)
    missing: dict[str, str] = {}
    for chunk in all_chunks:
        if hashes[chunk.id] not in cached:
            missing.setdefault(hashes[chunk.id], chunk.text)
    report.chunks_from_cache = sum(1 for c in all_chunks if hashes[c.id] in cached)
    report.chunks_embedded = len(all_chunks) - report.chunks_from_cache

    batch_size = store.config.embedder.batch_size
    pending = list(missing.items())
    with tqdm(total=len(pending), desc="embedding", unit="chunk", disable=not progress or not pending) as bar:
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            vectors = store.embedder.encode([text for _, text in batch], batch_size=batch_size, show_progress_bar=False, normalize_embeddings=True)
            items = [(h, np.asarray(v, dtype=np.float32)) for (h, _), v in zip(batch, vectors)]
            store.catalog.cache_embeddings(items, model)
            cached.update(items)
            bar.update(len(batch))
    return {chunk.id: cached[hashes[chunk.id]] for chunk in all_chunks}


def _upsert(store: IndexStore, plan: _Plan, chunks: dict[str, list[Chunk]], vectors: dict[str, np.ndarray]) -> None:
    ids, payloads = [], []
    for doc_id, doc_chunks in chunks.items():
        document, _ = plan.documents[doc_id]
        for chunk in doc_chunks:
            ids.append(chunk.id)
            payloads.append({"chunk_id": chunk.id, "doc_id": doc_id, "acl": list(document.acl)})
    if ids:
        store.vectors.upsert(ids, np.stack([vectors[i] for i in ids]), payloads)


def _commit(store: IndexStore, plan: _Plan, chunks: dict[str, list[Chunk]], report: IngestReport) -> None:
    catalog = store.catalog
    with catalog.transaction() as conn:
        for doc_id in plan.changed:
            document, doc_hash = plan.documents[doc_id]
            catalog.put_document(conn, document, doc_hash, chunks[doc_id], report.run_id)
        catalog.delete_documents(conn, plan.deleted)
        for result in plan.logs:
            catalog.replace_log(conn, str(result.path), result.content_hash, result.log_entries)
            report.log_events += len(result.log_entries)
        for source in plan.removed_logs:
            catalog.replace_log(conn, source, None, [])
        for result in plan.fact_files:
            catalog.replace_facts(conn, str(result.path), result.facts)
            catalog.set_state(conn, f"facts:{result.path}", result.content_hash)
            report.facts += len(result.facts)
        for source in plan.removed_fact_files:
            catalog.replace_facts(conn, source, [])
            catalog.set_state(conn, f"facts:{source}", "")
        if plan.changed or plan.deleted or plan.logs or plan.removed_logs or plan.fact_files or plan.removed_fact_files:
            catalog.set_state(conn, GENERATION_KEY, str(report.run_id))
        catalog.finish_run(conn, report.run_id, "completed", report.stats())


def _clean_up(store: IndexStore, plan: _Plan, chunks: dict[str, list[Chunk]]) -> None:
    touched = set(plan.changed) | plan.deleted
    if touched:
        keep = {c.id for doc_chunks in chunks.values() for c in doc_chunks}
        removed = store.vectors.delete_documents_except(touched, keep)
        logger.info("deleted %d stale vectors", removed)
    store.bm25  # rebuilds when the generation moved
    store.graph  # likewise
