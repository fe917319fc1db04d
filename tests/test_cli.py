"""The `scout` command line, run in-process on real files and a real index."""

from __future__ import annotations

import json

import pytest

import scout
from scout.cli import main
from scout.testing.anthropic_server import FakeAnthropicServer


@pytest.fixture
def built_index(tmp_path, tiny_corpus):
    index = tmp_path / "index"
    assert main(["ingest", str(tiny_corpus), "--index", str(index)]) == 0
    return index


def test_ingest_prints_summary_and_problems(tmp_path, tiny_corpus, capsys):
    (tiny_corpus / "broken.md").write_bytes(b"\x00\x00")

    assert main(["ingest", str(tiny_corpus), "--index", str(tmp_path / "index")]) == 0

    captured = capsys.readouterr()
    assert "5 added, 0 updated, 0 deleted" in captured.out
    assert "broken.md: binary file" in captured.err


def test_search_prints_scores_per_signal(built_index, capsys):
    capsys.readouterr()
    assert main(["search", "Brandenburg Gate", "--index", str(built_index), "-k", "2"]) == 0

    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[2] == "berlin"
    assert "bm25=" in out and "dense=" in out


def test_search_json_lines(built_index, capsys):
    capsys.readouterr()
    assert main(["search", "soap", "--index", str(built_index), "--json", "--fusion", "weighted"]) == 0

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["doc_id"] == "faq/handwashing"
    assert {"bm25", "dense"} <= set(rows[0]["signals"])


def test_search_missing_index_is_clear(tmp_path, capsys):
    assert main(["search", "anything", "--index", str(tmp_path / "nowhere")]) == 2

    err = capsys.readouterr().err
    assert "no Scout index at" in err
    assert "scout ingest PATH --index" in err


def test_ask_streams_with_anthropic_backend(built_index, capsys, monkeypatch):
    with FakeAnthropicServer(reply=lambda request: "The Colosseum held gladiator fights [1].") as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        capsys.readouterr()
        assert main(["ask", "What did the Colosseum hold?", "--index", str(built_index), "--backend", "anthropic"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("The Colosseum held gladiator fights [1].")
    assert "*[1] rome" in out
    assert "invalid citations removed: 0" in out


def test_ask_without_key_exits_with_message(built_index, capsys, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)

    assert main(["ask", "What did the Colosseum hold?", "--index", str(built_index), "--backend", "anthropic"]) == 2

    err = capsys.readouterr().err
    assert "ANTHROPIC_API_KEY" in err
    assert "Traceback" not in err


def test_public_api_is_pinned():
    assert scout.__all__ == ["Answer", "Citation", "Document", "Hit", "IndexConfig", "IngestReport", "Scout", "ScoutError", "Usage"]
