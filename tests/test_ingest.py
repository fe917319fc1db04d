"""Ingest on real files: a real Qdrant local store, a real SQLite catalog, the packaged embedder."""

from __future__ import annotations

import sqlite3

import pytest

from conftest import write_corpus
from scout import Scout
from scout.errors import ConfigError
from scout.ingest.pipeline import text_hash


def test_ingest_loads_every_format(scout_index, tiny_corpus):
    report = scout_index.ingest([tiny_corpus], progress=False)

    assert sorted(report.added) == ["berlin", "faq/handwashing", "faq/masks", "paris", "rome"]
    assert report.problems == []
    stats = scout_index.stats()
    assert stats["documents"] == 5
    assert stats["vectors"] == stats["chunks"]


def test_chunk_offsets_point_into_document(scout_index, tiny_corpus):
    scout_index.ingest([tiny_corpus], progress=False)

    for hit in scout_index.search("capital", k=10):
        text = scout_index.store.catalog.document_text(hit.doc_id)
        assert text[hit.start : hit.end] == hit.text


def test_html_script_is_not_indexed(scout_index, tiny_corpus):
    scout_index.ingest([tiny_corpus], progress=False)

    text = scout_index.store.catalog.document_text("rome")
    assert "Colosseum" in text
    assert "never indexed" not in text


def test_reingest_unchanged_embeds_nothing(scout_index, tiny_corpus):
    scout_index.ingest([tiny_corpus], progress=False)
    report = scout_index.ingest([tiny_corpus], progress=False)

    assert report.added == [] and report.updated == [] and report.deleted == []
    assert report.unchanged == 5
    assert report.chunks_embedded == 0


def test_reingest_after_edit_and_delete(scout_index, tiny_corpus):
    scout_index.ingest([tiny_corpus], progress=False)
    (tiny_corpus / "paris.md").write_text("# Paris\n\nParis hosted the 2024 Summer Olympics.\n", encoding="utf-8")
    (tiny_corpus / "berlin.txt").unlink()

    report = scout_index.ingest([tiny_corpus], progress=False)

    assert report.updated == ["paris"]
    assert report.deleted == ["berlin"]
    assert report.chunks_embedded == 1
    assert scout_index.stats()["vectors"] == scout_index.stats()["chunks"]
    doc_ids = {hit.doc_id for hit in scout_index.search("capital of Germany", k=10)}
    assert "berlin" not in doc_ids
    top = scout_index.search("Olympics", k=1)[0]
    assert top.doc_id == "paris"
    assert "Olympics" in top.text


def test_deleted_jsonl_record_is_removed(scout_index, tiny_corpus):
    scout_index.ingest([tiny_corpus], progress=False)
    (tiny_corpus / "faq.jsonl").write_text('{"id": "faq/masks", "title": "Masks", "text": "Wear a mask in crowded indoor places to reduce transmission."}\n')

    report = scout_index.ingest([tiny_corpus], progress=False)

    assert report.deleted == ["faq/handwashing"]
    assert report.unchanged == 4


def test_bad_files_are_reported_and_skipped(scout_index, tmp_path):
    folder = write_corpus(
        tmp_path / "bad",
        {
            "good.md": "# Good\n\nThis file is fine.",
            "empty.md": "   \n",
            "binary.txt": b"\x00\x01\x02 not text",
            "latin1.txt": "caf\u00e9".encode("latin-1"),
            "image.png": b"\x89PNG\r\n",
            "broken.jsonl": '{"id": "a", "text": "first record is fine"}\n{"id": "b", "text": \n[1, 2]\n{"id": "c"}\n',
            "unknown.csv": "name,age\nann,3\n",
        },
    )

    report = scout_index.ingest([folder], progress=False)

    reasons = {problem.path.rsplit("/", 1)[-1]: problem.reason for problem in report.problems}
    assert "empty file" in reasons["empty.md"]
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "unsupported file type '.png'" in reasons["image.png"]
    assert "invalid JSON" in reasons["broken.jsonl:2"]
    assert "JSON object" in reasons["broken.jsonl:3"]
    assert "no non-empty text field" in reasons["broken.jsonl:4"]
    assert "neither a search log" in reasons["unknown.csv"]
    assert sorted(report.added) == ["a", "good"]


def test_unreadable_file_is_skipped(scout_index, tmp_path):
    folder = write_corpus(tmp_path / "docs", {"ok.md": "# Ok\n\nReadable.", "secret.md": "# Secret\n\nUnreadable."})
    (folder / "secret.md").chmod(0)
    try:
        with open(folder / "secret.md", "rb"):
            pytest.skip("running as a user who can read mode-000 files")
    except PermissionError:
        pass

    report = scout_index.ingest([folder], progress=False)

    assert report.added == ["ok"]
    assert "unreadable" in report.problems[0].reason


def test_missing_path_is_a_clear_error(scout_index, tmp_path):
    with pytest.raises(ConfigError, match="path not found: .*nowhere"):
        scout_index.ingest([tmp_path / "nowhere"], progress=False)


def test_search_log_is_replaced_on_edit(scout_index, tmp_path):
    folder = write_corpus(
        tmp_path / "docs",
        {
            "a.md": "# A\n\nAlpha text.",
            "log.jsonl": '{"query": "alpha", "clicked_doc_id": "a", "session_id": "s1", "timestamp": "2020-03-01T10:00:00Z"}\n',
        },
    )
    scout_index.ingest([folder], progress=False)
    (folder / "log.jsonl").write_text('{"query": "alpha two", "clicked_doc_id": "a"}\n{"query": "beta"}\n')

    report = scout_index.ingest([folder], progress=False)

    assert report.log_events == 2
    assert [entry.query for entry in scout_index.store.catalog.search_log()] == ["alpha two", "beta"]


def test_embedding_cache_survives_interrupted_run(tmp_path, real_embedder, tiny_corpus, monkeypatch):
    """A crash after embedding but before the catalog commit loses no embeddings and no data."""
    from scout.ingest import pipeline

    scout = Scout.open(tmp_path / "index", embedder=real_embedder)
    scout.ingest([write_corpus(tmp_path / "first", {"keep.md": "# Keep\n\nKeep this document."})], progress=False)

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash before commit")

    monkeypatch.setattr(pipeline, "_commit", crash)
    with pytest.raises(RuntimeError):
        scout.ingest([tiny_corpus], progress=False)
    monkeypatch.undo()

    assert [hit.doc_id for hit in scout.search("Keep this document", k=1)] == ["keep"]
    assert all(hit.doc_id == "keep" for hit in scout.search("capital", k=10))
    report = scout.ingest([tiny_corpus], progress=False)
    assert report.chunks_embedded == 0
    assert report.chunks_from_cache == 5
    runs = sqlite3.connect(tmp_path / "index" / "catalog.db").execute("SELECT status FROM runs ORDER BY id").fetchall()
    assert [r[0] for r in runs] == ["completed", "failed", "completed"]
    scout.close()


def test_index_reopens_from_disk(tmp_path, real_embedder, tiny_corpus):
    with Scout.open(tmp_path / "index", embedder=real_embedder) as scout:
        scout.ingest([tiny_corpus], progress=False)

    with Scout.open(tmp_path / "index", create=False, embedder=real_embedder) as scout:
        assert scout.search("Brandenburg Gate", k=1)[0].doc_id == "berlin"


def test_text_hash_is_stable():
    assert text_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_second_open_gets_busy_error(tmp_path, real_embedder, tiny_corpus):
    """Qdrant's local mode locks its folder; a second client gets IndexBusyError, not a bare RuntimeError."""
    from scout.errors import IndexBusyError

    first = Scout.open(tmp_path / "index", embedder=real_embedder)
    first.ingest([tiny_corpus], progress=False)
    second = Scout.open(tmp_path / "index", embedder=real_embedder)
    try:
        with pytest.raises(IndexBusyError, match="open in another process"):
            second.search("capital", k=1)
    finally:
        second.store.catalog.close()
        first.close()
