"""The chat app's access to one Scout index: serialised calls, streamed answers, feedback and uploads.

Nothing here imports Gradio, so the logic is tested without a browser or a server.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scout.api import Scout
from scout.errors import ScoutError
from scout.generate.base import Generator
from scout.ingest.loaders import SUPPORTED_SUFFIXES, SkipFile, load_file
from scout.ingest.pipeline import IngestReport
from scout.types import Answer

logger = logging.getLogger(__name__)

LOCAL, ANTHROPIC = "local", "anthropic"
UPLOADS_FOLDER = "uploads"
"""Folder inside the index directory that keeps uploaded files, so a re-upload updates its document."""

GeneratorFactory = Callable[[str], Generator]
"""Backend name -> the generator that answers for it (tests pass one returning a fake)."""


class EmptyIndexError(ScoutError):
    """The index has no documents, so there is nothing to answer from."""


class UnknownBackendError(ScoutError):
    """The requested backend is not one the app offers."""


def available_backends(environ: dict[str, str] | None = None) -> list[str]:
    """`local` always; `anthropic` only when ANTHROPIC_API_KEY is set."""
    environ = os.environ if environ is None else environ
    return [LOCAL, ANTHROPIC] if environ.get("ANTHROPIC_API_KEY") else [LOCAL]


@dataclass
class UploadResult:
    """The outcome of one upload: the files indexed, the files rejected with reasons, and the ingest report."""

    indexed: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    report: IngestReport | None = None


@dataclass(frozen=True)
class RelatedEntity:
    """An entity the question or answer names, and the names of entities linked to it in the graph."""

    name: str
    linked: list[str]


@dataclass
class Related:
    """Entities from the knowledge graph and earlier queries from the log that relate to a question."""

    entities: list[RelatedEntity] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)


class ChatService:
    """One Scout index shared by every browser session, used by one thread at a time.

    Qdrant's local mode locks its folder per process, and the SQLite connection, the BM25 index
    and a local model are shared objects, so the app opens a single `Scout` and holds `lock`
    around each use of it.

    >>> import pathlib, tempfile
    >>> from scout import IndexConfig
    >>> from scout.testing.fakes import FakeEmbedder, FakeGenerator
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "paris.md").write_text("# Paris\\n\\nParis is the capital of France.")
    >>> scout = Scout.open(folder / "index", config=IndexConfig.for_embedder("fake", 64), embedder=FakeEmbedder(64))
    >>> service = ChatService(scout, generator_factory=lambda backend: FakeGenerator())
    >>> service.add_files([folder / "paris.md"], progress=False).indexed
    ['paris.md']
    >>> answer = [item for item in service.stream("What is the capital of France?", "local")][-1]
    >>> answer.text, answer.query_id
    ('# Paris Paris is the capital of France. [1]', 1)
    >>> service.add_feedback(answer.query_id, 1)
    1
    >>> scout.close()
    """

    def __init__(self, scout: Scout, generator_factory: GeneratorFactory | None = None, backends: list[str] | None = None) -> None:
        self.scout = scout
        self.generator_factory = generator_factory
        self.backends = backends or available_backends()
        self.lock = threading.Lock()

    @property
    def uploads_dir(self) -> Path:
        return self.scout.store.path / UPLOADS_FOLDER

    def stats(self) -> dict[str, int]:
        with self.lock:
            return self.scout.stats()

    # Answers

    def stream(self, question: str, backend: str) -> Iterator[str | Answer]:
        """Yield the answer's text pieces, then the `Answer`; raise ScoutError for a user's mistake.

        The answer is computed in a worker thread that holds the lock until it finishes, so a
        browser that disconnects mid-answer cannot leave the index locked.
        """
        question = question.strip()
        if not question:
            raise ScoutError("the question is empty; type a question first")
        if backend not in self.backends:
            raise UnknownBackendError(f"backend {backend!r} is not available; choose one of {self.backends}")

        events: queue.Queue = queue.Queue()
        worker = threading.Thread(target=self._answer, args=(question, backend, events), name="scout-answer", daemon=True)
        worker.start()
        while True:
            item = events.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _answer(self, question: str, backend: str, events: queue.Queue) -> None:
        try:
            with self.lock:
                if self.scout.stats()["documents"] == 0:
                    raise EmptyIndexError(
                        f"the index at {self.scout.store.path} has no documents yet; add files in the Index tab "
                        f"or run `scout ingest PATH --index {self.scout.store.path}`"
                    )
                generator = self.generator_factory(backend) if self.generator_factory else self.scout.generator(backend)
                for item in self.scout.stream(question, generator=generator):
                    events.put(item)
        except BaseException as exc:  # re-raised in the thread that reads the events
            events.put(exc)
        finally:
            events.put(_DONE)

    def add_feedback(self, query_id: int, rating: int) -> int:
        """Store a rating (+1 or -1) of the answer logged as `query_id`; returns the feedback row id."""
        if rating not in (1, -1):
            raise ScoutError(f"invalid rating {rating!r}; expected 1 (thumbs up) or -1 (thumbs down)")
        with self.lock:
            feedback_id = self.scout.store.catalog.add_feedback(query_id, rating)
        logger.info("feedback %d on query %d stored as row %d", rating, query_id, feedback_id)
        return feedback_id

    # Uploads

    def add_files(self, paths: list[Path], progress: bool = True) -> UploadResult:
        """Copy supported, readable files into the index's uploads folder and ingest them.

        A file is checked with the same loader that ingest uses before it is copied, so a bad
        upload never replaces an earlier good upload with the same name.
        """
        result = UploadResult()
        accepted: dict[str, Path] = {}
        for path in paths:
            name = Path(path).name
            reason = _rejection_reason(Path(path), name, accepted)
            if reason:
                result.rejected.append((name, reason))
                logger.warning("upload %s rejected: %s", name, reason)
            else:
                accepted[name] = Path(path)
        if not accepted:
            return result

        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        copies = [shutil.copyfile(source, self.uploads_dir / name) for name, source in accepted.items()]
        with self.lock:
            result.report = self.scout.ingest(copies, progress=progress)
        skipped = {Path(problem.path).name for problem in result.report.problems}
        result.indexed = [name for name in accepted if name not in skipped]
        return result

    # Related entities and queries (present when the graph and the log support them)

    def related(self, question: str, answer_text: str = "", limit: int = 5) -> Related:
        """Entities named in the question or answer with their linked entities, and similar logged queries.

        Each part stays empty when this Scout lacks the feature (`Scout.entity`,
        `Scout.related_queries`) or the feature fails; a failure is logged, not shown.
        """
        related = Related()
        with self.lock:
            if hasattr(self.scout, "entity"):
                related.entities = _optional(self._entities, f"{question}\n{answer_text}", limit) or []
            if hasattr(self.scout, "related_queries"):
                found = _optional(self.scout.related_queries, question, limit) or []
                related.queries = [item.query for item in found if getattr(item, "query", "") != question][:limit]
        return related

    def _entities(self, text: str, limit: int) -> list[RelatedEntity]:
        # NOTE: Scout has no public call for "entities named in this text", so this uses the
        # graph's `link` and its node names, the same lookup the graph retrieval signal makes.
        knowledge = self.scout.store.graph
        linked = knowledge.link(text)
        entities = []
        for node in sorted(linked, key=linked.get, reverse=True)[:limit]:
            neighbourhood = self.scout.entity(knowledge.graph.nodes[node]["name"], limit=limit)
            entities.append(RelatedEntity(neighbourhood.name, [linked_entity.name for linked_entity in neighbourhood.entities]))
        return entities


_DONE = object()


def _rejection_reason(path: Path, name: str, accepted: dict[str, Path]) -> str | None:
    if name in accepted:
        return "another file in this upload has the same name"
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        return f"unsupported file type {path.suffix or '(none)'!r}; Scout reads {', '.join(SUPPORTED_SUFFIXES)}"
    try:
        load_file(path, path)
    except SkipFile as exc:
        return str(exc)
    return None


def _optional(method: Callable, *args):
    """Call an optional Scout feature; a failure is logged and treated as no results."""
    try:
        return method(*args)
    except Exception:
        logger.exception("%s failed for %r", getattr(method, "__name__", method), args[0])
        return None
