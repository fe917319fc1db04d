"""Data types shared by every part of Scout: documents, chunks, hits and answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PUBLIC = "public"
"""ACL group that every reader belongs to; documents without groups get it."""


@dataclass(frozen=True)
class Document:
    """A source document as loaded, before chunking.

    `id` is stable across re-ingests (derived from the path, or given by a JSONL record),
    so that an edited file replaces its old version instead of adding a new document.
    """

    id: str
    text: str
    title: str = ""
    source: str = ""
    acl: tuple[str, ...] = (PUBLIC,)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A span of a document: `text == document.text[start:end]`."""

    id: str
    doc_id: str
    index: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class LogEntry:
    """One search-log event: a query and the document the user clicked, if any."""

    query: str
    clicked_doc_id: str | None = None
    timestamp: str | None = None
    session_id: str | None = None


@dataclass
class Hit:
    """A retrieved chunk with its fused score and the score of every signal.

    `signals` maps a signal name (`bm25`, `dense`, `graph`, `click`) to that signal's raw score,
    and `ranks` maps it to the 1-based rank. A signal that did not return the chunk is absent.
    """

    chunk_id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    score: float
    signals: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Usage:
    """Tokens a generator read and wrote for one answer."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)


@dataclass(frozen=True)
class Citation:
    """A `[n]` marker in an answer and the source passage it names."""

    number: int
    chunk_id: str
    doc_id: str


@dataclass
class Answer:
    """A generated answer with its checked citations.

    `text` is what the user should see: when the sources do not support the generated text,
    `text` is the abstention message and `raw_text` keeps what the model wrote.
    `invalid_citations` counts markers removed because they named no given source.
    `attributed_citations` counts citations Scout added to an answer the model left uncited.
    `support` is the share of the answer's content words found in the cited passages.
    `query_id` is the answer's row in the index's query log, for feedback.
    """

    question: str
    text: str
    raw_text: str
    citations: list[Citation]
    sources: list[Hit]
    usage: Usage
    timings: dict[str, float]
    invalid_citations: int = 0
    attributed_citations: int = 0
    support: float = 0.0
    abstained: bool = False
    backend: str = ""
    model: str = ""
    query_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
