"""The chat app's service and handlers, called directly on a real tiny index without a browser."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from scout import IndexConfig, Scout
from scout.app import render
from scout.app.handlers import STREAMING_CURSOR, ChatHandlers, SessionState
from scout.app.service import ANTHROPIC, LOCAL, ChatService, available_backends
from scout.cli import main
from scout.errors import ModelNotFoundError, ScoutError
from scout.testing.anthropic_server import FakeAnthropicServer
from scout.testing.fakes import FakeEmbedder, FakeGenerator
from scout.types import Usage

QUESTION = "What is the capital of France?"


class FailingGenerator:
    """Streams two words, then raises the given exception, like a backend that dies mid-answer."""

    backend = "fake"
    model = "failing"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def stream(self, prompt, max_tokens):
        yield "Paris"
        yield " is"
        raise self.error


def open_fake_index(folder: Path) -> Scout:
    return Scout.open(folder, config=IndexConfig.for_embedder("fake", 64), embedder=FakeEmbedder(64))


@pytest.fixture
def scout(tmp_path, tiny_corpus):
    scout = open_fake_index(tmp_path / "index")
    scout.ingest([tiny_corpus], progress=False)
    yield scout
    scout.close()


@pytest.fixture
def handlers(scout):
    service = ChatService(scout, generator_factory=lambda backend: FakeGenerator(), backends=[LOCAL])
    return ChatHandlers(service, index_name="index")


def run_turn(handlers: ChatHandlers, question: str, backend: str = LOCAL, state: SessionState | None = None):
    updates = list(handlers.respond(question, [], backend, state or SessionState()))
    return updates, updates[-1]


def feedback_rows(scout: Scout) -> list[tuple[int, int]]:
    with sqlite3.connect(scout.store.catalog.path) as conn:
        return list(conn.execute("SELECT query_log_id, rating FROM feedback ORDER BY id"))


class TestRespond:
    def test_answer_streams_then_links_citations(self, handlers):
        updates, final = run_turn(handlers, QUESTION)

        streamed = [u.history[-1]["content"] for u in updates if u.history and u.history[-1]["content"].endswith(STREAMING_CURSOR)]
        assert len(streamed) >= 3
        assert all(len(a) < len(b) for a, b in zip(streamed, streamed[1:]))
        assert final.question == ""
        assert final.history[0] == {"role": "user", "content": QUESTION}
        answer = final.history[-1]["content"]
        assert "Paris is the capital of France." in answer
        query_id = final.state.query_ids[1]
        assert f'href="#cite-{query_id}-' in answer
        assert STREAMING_CURSOR not in answer

    def test_sources_panel_shows_signals(self, handlers):
        _, final = run_turn(handlers, QUESTION)

        assert "paris" in final.sources
        assert "bm25" in final.sources
        assert "dense" in final.sources
        assert "cited" in final.sources

    def test_answer_is_logged_with_its_sources(self, handlers, scout):
        _, final = run_turn(handlers, QUESTION)

        query_id = final.state.query_ids[1]
        with sqlite3.connect(scout.store.catalog.path) as conn:
            row = conn.execute("SELECT query, answer FROM query_log WHERE id = ?", (query_id,)).fetchone()
        assert row[0] == QUESTION
        assert "Paris is the capital of France." in row[1]
        assert len(final.state.sources[query_id]) == scout.config.generator.sources

    def test_question_is_escaped(self, handlers):
        _, final = run_turn(handlers, "<img src=x onerror=alert(1)> capital of France?")

        assert "<img" not in final.history[0]["content"]
        assert "&lt;img" in final.history[0]["content"]

    def test_blank_question_adds_nothing(self, handlers):
        updates, final = run_turn(handlers, "   ")

        assert len(updates) == 1
        assert final.history == []

    def test_stats_refresh_after_answer(self, handlers):
        _, final = run_turn(handlers, QUESTION)

        assert "questions asked" in final.stats
        assert ">1</span><span class=\"scout-stat-label\">questions asked" in final.stats


class TestCitations:
    def test_citation_opens_passage_with_offsets(self, handlers, scout):
        _, final = run_turn(handlers, QUESTION)
        query_id = final.state.query_ids[1]
        record = next(r for r in final.state.sources[query_id] if r["doc_id"] == "paris")
        number = final.state.sources[query_id].index(record) + 1

        panel = handlers.open_citation(f"{query_id}-{number}", final.state)

        assert '<code class="scout-doc-id">paris</code>' in panel
        assert f'{record["start"]}–{record["end"]}' in panel
        assert "Eiffel Tower stands on the Champ de Mars." in panel

    def test_earlier_answers_keep_their_passages(self, handlers):
        _, first = run_turn(handlers, QUESTION)
        _, second = run_turn(handlers, "Which landmark is in Berlin?", state=first.state)
        first_id = first.state.query_ids[1]

        panel = handlers.open_citation(f"{first_id}-1", second.state)

        assert first.state.sources[first_id][0]["doc_id"] in panel

    @pytest.mark.parametrize("reference", ["", "junk", "999-1", "1-0", "1-99"])
    def test_unknown_citation_shows_empty_panel(self, handlers, reference):
        _, final = run_turn(handlers, QUESTION)

        assert handlers.open_citation(reference, final.state) == render.passage_panel(None)


class TestFeedback:
    def test_thumbs_up_and_down_are_stored(self, handlers, scout):
        _, final = run_turn(handlers, QUESTION)
        query_id = final.state.query_ids[1]

        assert handlers.rate(1, True, final.state).startswith("Thanks")
        assert handlers.rate(1, False, final.state).startswith("Thanks")

        assert feedback_rows(scout) == [(query_id, 1), (query_id, -1)]

    def test_question_message_cannot_be_rated(self, handlers, scout):
        _, final = run_turn(handlers, QUESTION)

        assert handlers.rate(0, True, final.state) == "Only answers can be rated."
        assert feedback_rows(scout) == []

    def test_withdrawn_rating_stores_nothing(self, handlers, scout):
        _, final = run_turn(handlers, QUESTION)

        assert "withdrawn" in handlers.rate(1, "", final.state)
        assert feedback_rows(scout) == []

    def test_cleared_chat_forgets_answers(self, handlers, scout):
        run_turn(handlers, QUESTION)

        state, passage, sources, related = handlers.clear()

        assert handlers.rate(1, True, state) == "Only answers can be rated."
        assert passage == render.passage_panel(None)
        assert "appear here" in sources
        assert related == ""
        assert feedback_rows(scout) == []

    def test_invalid_rating_is_rejected(self, scout):
        with pytest.raises(ScoutError, match="invalid rating 0"):
            ChatService(scout).add_feedback(1, 0)


class TestErrors:
    def test_empty_index_message(self, tmp_path, caplog):
        scout = open_fake_index(tmp_path / "empty")
        handlers = ChatHandlers(ChatService(scout, generator_factory=lambda backend: FakeGenerator()), "empty")

        with caplog.at_level(logging.ERROR, logger="scout.app"):
            _, final = run_turn(handlers, QUESTION)
        scout.close()

        message = final.history[-1]["content"]
        assert "has no documents yet" in message
        assert "Traceback" not in message
        assert any(record.exc_info for record in caplog.records)

    def test_missing_model_message(self, scout, caplog):
        def missing(backend):
            raise ModelNotFoundError("generator model 'nowhere/model' could not be loaded")

        handlers = ChatHandlers(ChatService(scout, generator_factory=missing, backends=[LOCAL]), "index")
        with caplog.at_level(logging.ERROR, logger="scout.app"):
            _, final = run_turn(handlers, QUESTION)

        assert "could not be loaded" in final.history[-1]["content"]
        assert "Traceback" not in final.history[-1]["content"]
        assert "nowhere/model" in caplog.text

    def test_missing_api_key_message(self, scout, monkeypatch):
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        handlers = ChatHandlers(ChatService(scout, backends=[LOCAL, ANTHROPIC]), "index")

        _, final = run_turn(handlers, QUESTION, backend=ANTHROPIC)

        assert "ANTHROPIC_API_KEY is not set" in final.history[-1]["content"]

    def test_anthropic_answer_streams(self, scout, monkeypatch):
        with FakeAnthropicServer(reply=lambda request: "Paris is the capital of France. [1]") as server:
            monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
            monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
            handlers = ChatHandlers(ChatService(scout, backends=available_backends()), "index")

            _, final = run_turn(handlers, QUESTION, backend=ANTHROPIC)

        assert "Paris is the capital of France." in final.history[-1]["content"]
        assert "anthropic · claude-haiku-4-5" in final.history[-1]["content"]

    def test_anthropic_stream_error_message(self, scout, monkeypatch):
        with FakeAnthropicServer(reply=lambda request: "Paris is the capital of France. [1]", stream_error_after=2) as server:
            monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
            monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
            handlers = ChatHandlers(ChatService(scout, backends=available_backends()), "index")

            _, final = run_turn(handlers, QUESTION, backend=ANTHROPIC)

        message = final.history[-1]["content"]
        assert message.startswith("Paris is")
        assert "Could not answer." in message
        assert "claude-haiku-4-5" in message

    def test_unavailable_backend_message(self, handlers):
        _, final = run_turn(handlers, QUESTION, backend=ANTHROPIC)

        assert "backend 'anthropic' is not available" in final.history[-1]["content"]

    def test_crash_mid_answer_keeps_partial_text(self, scout, caplog):
        service = ChatService(scout, generator_factory=lambda backend: FailingGenerator(RuntimeError("CUDA exploded")), backends=[LOCAL])
        handlers = ChatHandlers(service, "index")

        with caplog.at_level(logging.ERROR, logger="scout.app"):
            _, final = run_turn(handlers, QUESTION)

        message = final.history[-1]["content"]
        assert message.startswith("Paris is")
        assert "unexpected RuntimeError" in message
        assert "CUDA exploded" not in message
        assert "CUDA exploded" in caplog.text


class TestUpload:
    def test_upload_is_searchable_without_restart(self, handlers, scout, tmp_path):
        upload = tmp_path / "incoming" / "lisbon.md"
        upload.parent.mkdir()
        upload.write_text("# Lisbon\n\nLisbon sits on the Tagus river.\n", encoding="utf-8")

        result = handlers.upload([str(upload)], [], progress=False)

        assert "Indexed 1 file(s): lisbon.md" in result.status
        assert result.history[-1]["role"] == "assistant"
        assert (scout.store.path / "uploads" / "lisbon.md").is_file()
        assert scout.search("Tagus river", k=1)[0].doc_id == "lisbon"
        _, final = run_turn(handlers, "Which river is Lisbon on?")
        assert "Tagus" in final.history[-1]["content"]

    def test_bad_files_are_rejected_with_reasons(self, handlers, scout, tmp_path):
        (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4")
        (tmp_path / "empty.md").write_text("  \n", encoding="utf-8")
        (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))

        result = handlers.upload([str(tmp_path / n) for n in ("report.pdf", "empty.md", "latin1.txt")], [], progress=False)

        assert "Could not add report.pdf: unsupported file type '.pdf'" in result.status
        assert "Could not add empty.md: empty file" in result.status
        assert "Could not add latin1.txt: not valid UTF-8" in result.status
        assert "Indexed" not in result.status
        assert scout.stats()["documents"] == 5

    def test_bad_reupload_keeps_earlier_document(self, handlers, scout, tmp_path):
        good = tmp_path / "first" / "notes.md"
        good.parent.mkdir()
        good.write_text("# Notes\n\nThe meeting is on Tuesday.\n", encoding="utf-8")
        handlers.upload([str(good)], [], progress=False)
        bad = tmp_path / "second" / "notes.md"
        bad.parent.mkdir()
        bad.write_bytes(b"\x00\x01binary")

        result = handlers.upload([str(bad)], [], progress=False)

        assert "Could not add notes.md: binary file" in result.status
        assert scout.search("meeting Tuesday", k=1)[0].doc_id == "notes"

    def test_no_files_changes_nothing(self, handlers):
        result = handlers.upload(None, [{"role": "user", "content": "hi"}], progress=False)

        assert result.history == [{"role": "user", "content": "hi"}]
        assert result.status == ""


class TestService:
    def test_backends_follow_api_key(self):
        assert available_backends({}) == [LOCAL]
        assert available_backends({"ANTHROPIC_API_KEY": "key"}) == [LOCAL, ANTHROPIC]

    def test_abandoned_stream_releases_lock(self, scout):
        service = ChatService(scout, generator_factory=lambda backend: FakeGenerator(), backends=[LOCAL])
        stream = service.stream(QUESTION, LOCAL)
        next(stream)
        stream.close()

        acquired = service.lock.acquire(timeout=10)

        assert acquired
        service.lock.release()

    def test_concurrent_questions_are_serialised(self, scout):
        active, overlaps = [0], []

        class CountingGenerator(FakeGenerator):
            def stream(self, prompt, max_tokens):
                active[0] += 1
                overlaps.append(active[0])
                yield from super().stream(prompt, max_tokens)
                active[0] -= 1

        service = ChatService(scout, generator_factory=lambda backend: CountingGenerator(), backends=[LOCAL])
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(list(service.stream(QUESTION, LOCAL))[-1])) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert len(answers) == 4
        assert max(overlaps) == 1
        assert len({answer.query_id for answer in answers}) == 4

    def test_related_is_empty_without_graph_features(self, scout):
        class PlainScout:
            store = scout.store

        related = ChatService(PlainScout()).related(QUESTION, "Paris is the capital of France.")

        assert related.entities == []
        assert related.queries == []

    def test_failing_related_feature_is_logged(self, scout, caplog):
        class BrokenScout:
            store = scout.store

            def related_queries(self, question, k):
                raise RuntimeError("log index missing")

        with caplog.at_level(logging.ERROR, logger="scout.app"):
            related = ChatService(BrokenScout()).related(QUESTION)

        assert related.queries == []
        assert "log index missing" in caplog.text


class TestRender:
    def test_answer_links_only_valid_citations(self):
        from scout.types import Answer, Hit

        hit = Hit(chunk_id="c1", doc_id="d1", title="T", text="x", start=0, end=1, score=1.0)
        answer = Answer(question="q", text="# Title <b>x</b> [1] [2]", raw_text="", citations=[], sources=[hit], usage=Usage(), timings={})

        message = render.answer_message(answer, 7)

        assert message.startswith("\\# Title &lt;b&gt;x&lt;/b&gt;")
        assert 'href="#cite-7-1"' in message
        assert "#cite-7-2" not in message

    def test_related_panel_is_empty_without_items(self):
        assert render.related_panel([], []) == ""


def test_build_app_wires_components(scout):
    from scout.app import build_app

    app = build_app(scout, generator_factory=lambda backend: FakeGenerator())

    ids = {block.elem_id for block in app.blocks.values() if getattr(block, "elem_id", None)}
    assert {"scout-chat", "scout-question", "scout-passage", "scout-sources", "scout-upload", "scout-stats"} <= ids


def test_chat_command_reports_missing_index(tmp_path, capsys):
    assert main(["chat", "--index", str(tmp_path / "missing")]) == 2

    assert "no Scout index at" in capsys.readouterr().err
