"""Event handlers of the chat app as plain methods, so tests call them without a browser.

Each handler turns every error into a readable message for the user and logs it with its
traceback. No exception reaches Gradio, because Gradio would show a generic error box instead.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from scout.app import render
from scout.app.service import ChatService
from scout.errors import ScoutError
from scout.types import Answer

logger = logging.getLogger(__name__)

STREAMING_CURSOR = " ▍"
SEARCHING = '<span class="scout-answer-meta">Searching the index…</span>'


@dataclass
class SessionState:
    """One browser session's answers: the sources of each logged answer and which message shows it.

    `sources` maps a query-log id to the source records of that answer, so a citation in any
    earlier answer still opens its own passage. `query_ids` maps a chat message's index to the
    query-log id of the answer it shows, for thumbs up and down.
    """

    sources: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    query_ids: dict[int, int] = field(default_factory=dict)


class ChatUpdate(NamedTuple):
    """New values for the components a question updates, in the order `ui.py` wires them."""

    question: str
    history: list[dict]
    sources: str
    related: str
    stats: str
    header: str
    state: SessionState


class UploadUpdate(NamedTuple):
    history: list[dict]
    status: str
    stats: str
    header: str
    files: None


class ChatHandlers:
    """Answers questions, opens citations, stores ratings and ingests uploads for the Gradio app."""

    def __init__(self, service: ChatService, index_name: str) -> None:
        self.service = service
        self.index_name = index_name

    # Panels that depend on the index's statistics

    def stats_panels(self) -> tuple[str, str]:
        """Render the statistics panel and the header from one `Scout.stats()` call."""
        try:
            stats = self.service.stats()
        except Exception:
            logger.exception("reading the statistics of index %s failed", self.index_name)
            stats = {}
        return render.stats_panel(stats), render.header(self.index_name, stats)

    # Questions

    def respond(self, question: str, history: list[dict] | None, backend: str, state: SessionState | None) -> Iterator[ChatUpdate]:
        """Stream the answer into the chat, then fill the sources, related and statistics panels."""
        history = list(history or [])
        state = state or SessionState()
        question = (question or "").strip()
        if not question:
            yield self._update("", history, state)
            return

        history += [{"role": "user", "content": html.escape(question, quote=False)}, {"role": "assistant", "content": SEARCHING}]
        state.query_ids.pop(len(history) - 1, None)
        yield self._update("", history, state)

        pieces: list[str] = []
        answer: Answer | None = None
        try:
            for item in self.service.stream(question, backend):
                if isinstance(item, Answer):
                    answer = item
                    continue
                pieces.append(item)
                history[-1] = {"role": "assistant", "content": render.message_text("".join(pieces)) + STREAMING_CURSOR}
                yield self._update("", history, state)
        except Exception as exc:
            history[-1] = {"role": "assistant", "content": self._partial_with_error(pieces, exc, question, backend)}
            yield self._update("", history, state, with_stats=True)
            return

        yield self._finish(question, answer, history, state)

    def _finish(self, question: str, answer: Answer, history: list[dict], state: SessionState) -> ChatUpdate:
        query_id = getattr(answer, "query_id", None)
        records = [render.source_record(hit) for hit in answer.sources]
        if query_id is not None:
            state.sources[query_id] = records
            state.query_ids[len(history) - 1] = query_id
        history[-1] = {"role": "assistant", "content": render.answer_message(answer, query_id)}

        cited = {citation.number for citation in answer.citations}
        related = self.service.related(question, "" if answer.abstained else answer.text)
        stats, header = self.stats_panels()
        return ChatUpdate(
            "", history, render.sources_panel(records, query_id, cited), render.related_panel(related.entities, related.queries), stats, header, state
        )

    def _partial_with_error(self, pieces: list[str], exc: Exception, question: str, backend: str) -> str:
        """Log a failed answer and render its chat message: any streamed text, then the reason."""
        if isinstance(exc, ScoutError):
            logger.exception("answering %r with backend %s failed", question, backend)
            reason = str(exc)
        else:
            logger.exception("answering %r with backend %s failed unexpectedly", question, backend)
            reason = f"an unexpected {type(exc).__name__} occurred; the server log has the details"
        partial = render.message_text("".join(pieces))
        return f"{partial}\n\n{render.error_message(reason)}" if partial else render.error_message(reason)

    def _update(self, question: str, history: list[dict], state: SessionState, with_stats: bool = False) -> ChatUpdate:
        """Build an update with a snapshot of the chat that leaves the side panels as they are (`None`)."""
        stats, header = self.stats_panels() if with_stats else (None, None)
        return ChatUpdate(question, list(history), None, None, stats, header, state)

    def clear(self) -> tuple[SessionState, str, str, str]:
        """Forget the cleared chat's answers: a new session state, and empty passage, sources and related panels."""
        return SessionState(), render.passage_panel(None), render.sources_panel([], None, set()), ""

    # Citations

    def open_citation(self, reference: str, state: SessionState | None) -> str:
        """Render the passage panel for a citation reference `<query id>-<source number>` from a link."""
        match = render.CITATION_REF.match(reference or "")
        records = (state or SessionState()).sources.get(int(match.group(1))) if match else None
        number = int(match.group(2)) if match else 0
        if not records or not 1 <= number <= len(records):
            logger.warning("citation %r names no source of this session", reference)
            return render.passage_panel(None)
        return render.passage_panel(records[number - 1], number)

    # Feedback

    def rate(self, message_index: int | list | tuple, liked: bool | str | None, state: SessionState | None) -> str:
        """Store thumbs up (liked True) or down (False) for the answer at `message_index`; return a notice."""
        if isinstance(message_index, (list, tuple)):
            message_index = message_index[0]
        query_id = (state or SessionState()).query_ids.get(int(message_index))
        if query_id is None:
            return "Only answers can be rated."
        if liked is not True and liked is not False:
            # NOTE: the feedback table keeps every rating and has no way to withdraw one, so undoing
            # a thumb leaves the earlier rating stored.
            return "Rating withdrawn in the chat; the earlier rating stays stored."
        try:
            self.service.add_feedback(query_id, 1 if liked else -1)
        except Exception:
            logger.exception("storing feedback for query %d failed", query_id)
            return "Could not store the rating; the server log has the details."
        return "Thanks, your rating is stored." if liked else "Thanks, your rating is stored. It helps improve answers."

    # Uploads

    def upload(self, files: list[str] | None, history: list[dict] | None, progress: bool = True) -> UploadUpdate:
        """Ingest uploaded files, report the result in the chat and the upload box, refresh the statistics."""
        history = list(history or [])
        paths = [Path(f) for f in files or []]
        if not paths:
            stats, header = self.stats_panels()
            return UploadUpdate(history, "", stats, header, None)
        try:
            result = self.service.add_files(paths, progress=progress)
            summary = render.upload_summary(result.indexed, result.rejected, result.report.summary() if result.report else None)
        except Exception as exc:
            names = ", ".join(p.name for p in paths)
            if isinstance(exc, ScoutError):
                logger.exception("ingesting uploaded files %s failed", names)
                summary = html.escape(f"Could not add {names}: {exc}", quote=False)
            else:
                logger.exception("ingesting uploaded files %s failed unexpectedly", names)
                summary = html.escape(f"Could not add {names}: an unexpected {type(exc).__name__} occurred; the server log has the details", quote=False)
        history.append({"role": "assistant", "content": summary, "metadata": {"title": "Upload"}})
        stats, header = self.stats_panels()
        return UploadUpdate(history, summary, stats, header, None)
