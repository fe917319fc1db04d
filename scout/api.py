"""The public entry point: `Scout`, one index directory with ingest, search and answers."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from scout.config import BACKENDS, IndexConfig
from scout.errors import ConfigError
from scout.generate.answer import stream_answer
from scout.generate.base import Generator
from scout.graph import ClickSignal, EntityNeighbourhood, GraphSignal, RelatedQuery, describe_entity
from scout.index.store import IndexStore
from scout.ingest.pipeline import IngestReport, ingest
from scout.retrieve.hybrid import HybridRetriever, reader_groups
from scout.types import Answer, Hit

logger = logging.getLogger(__name__)


class Scout:
    """A Scout index: ingest documents and logs, search them, answer with citations.

    >>> from scout.testing.fakes import FakeEmbedder, FakeGenerator
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "docs").mkdir(), (folder / "docs" / "paris.md").write_text("# Paris\\n\\nParis is the capital of France.")
    >>> scout = Scout.open(folder / "index", config=IndexConfig.for_embedder("fake", 64), embedder=FakeEmbedder(64))
    >>> scout.ingest([folder / "docs"], progress=False).summary().split(";")[0]
    'run 1: 1 added, 0 updated, 0 deleted, 0 unchanged'
    >>> scout.search("capital of France", k=1)[0].doc_id
    'paris'
    >>> scout.ask("What is the capital of France?", generator=FakeGenerator()).text
    '# Paris Paris is the capital of France. [1]'
    >>> scout.close()
    """

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self.retriever = HybridRetriever(store)
        self.retriever.add_signal("graph", GraphSignal(store))
        self.retriever.add_signal("click", ClickSignal(store))
        self._generators: dict[tuple[str, str], Generator] = {}

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, config: IndexConfig | None = None, embedder=None) -> Scout:
        """Open the index at `path`, creating it (with `config` or the defaults) when `create` is true.

        `embedder` replaces the configured sentence-transformers model (tests pass a fake).
        """
        return cls(IndexStore.open(Path(path), create=create, config=config, embedder=embedder))

    @property
    def config(self) -> IndexConfig:
        return self.store.config

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Scout:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def ingest(self, paths: Iterable[str | Path] | str | Path, *, acl: Iterable[str] | None = None, progress: bool = True) -> IngestReport:
        """Add, update and remove documents so the index matches the files under `paths`.

        `acl` restricts every document of this run (except JSONL records that name their own
        groups) to readers in those groups.
        """
        if isinstance(paths, (str, Path)):
            paths = [paths]
        return ingest(self.store, paths, acl=tuple(acl) if acl else None, progress=progress)

    def search(self, query: str, k: int = 10, *, fusion: str | None = None, groups: Iterable[str] | None = None, signals: Iterable[str] | None = None) -> list[Hit]:
        """Return up to `k` hits a reader in `groups` (plus `public`) may see, best first."""
        return self.retriever.search(query, k=k, fusion=fusion, groups=groups, signals=signals)

    def related_queries(self, query: str, k: int = 5, *, groups: Iterable[str] | None = None) -> list[RelatedQuery]:
        """Up to `k` logged searches most similar to `query`, leaving out those that only led to documents hidden from `groups`."""
        graph = self.store.graph
        allowed = reader_groups(groups)
        return graph.click_prior(self.config.bm25).related(query, k, graph.visible_documents(allowed))

    def entity(self, name: str, *, groups: Iterable[str] | None = None, limit: int = 10) -> EntityNeighbourhood:
        """Describe an entity: its documents, linked entities and the logged queries that led to it.

        Raises `scout.graph.EntityNotFoundError`, which lists close matches, for an unknown name.
        """
        return describe_entity(self.store.graph, name, reader_groups(groups), limit)

    def ask(self, question: str, **options) -> Answer:
        """Answer a question with citations; takes the same options as `stream`."""
        answer = None
        for item in self.stream(question, **options):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def stream(
        self,
        question: str,
        *,
        backend: str | None = None,
        model: str | None = None,
        k: int | None = None,
        groups: Iterable[str] | None = None,
        generator: Generator | None = None,
        log: bool = True,
    ) -> Iterator[str | Answer]:
        """Yield the answer's text pieces as they are generated, then the checked `Answer`.

        `backend` is `local` or `anthropic`; `model` overrides that backend's configured model;
        `generator` replaces both (any object with the Generator protocol). With `log`, the answer
        is stored in the query log and `answer.query_id` is its row id, for `catalog.add_feedback`.
        """
        started = time.perf_counter()
        generator = generator or self.generator(backend, model)
        hits = self.search(question, k=k or self.config.generator.sources, groups=groups)
        timings = {"retrieve_ms": (time.perf_counter() - started) * 1000}
        answer = None
        for item in stream_answer(question, hits, generator, self.config.generator, timings):
            if isinstance(item, Answer):
                answer = item
                timings["total_ms"] = (time.perf_counter() - started) * 1000
                if log:
                    answer.query_id = self.store.catalog.log_query(
                        question, "ask", [h.chunk_id for h in hits], backend=generator.backend, answer=answer.text, latency_ms=timings["total_ms"]
                    )
            yield item

    def generator(self, backend: str | None = None, model: str | None = None) -> Generator:
        """The generator for a backend, created once per (backend, model) and reused."""
        settings = self.config.generator
        backend = backend or settings.backend
        if backend not in BACKENDS:
            raise ConfigError(f"invalid backend {backend!r}; expected one of {BACKENDS}")
        model = model or (settings.local_model if backend == "local" else settings.anthropic_model)
        key = (backend, model)
        if key not in self._generators:
            self._generators[key] = _make_generator(backend, model, settings)
        return self._generators[key]

    def warm_up(self, backend: str | None = None, model: str | None = None) -> float:
        """Load the embedder, the derived indexes and the generator now; return the seconds it took.

        Without it they load on first use, and the first answer's timings include the loading.
        """
        started = time.perf_counter()
        self.store.embed_queries(["warm up"])
        self.store.bm25
        self.store.graph
        generator = self.generator(backend, model)
        if hasattr(generator, "warm_up"):
            generator.warm_up()
        return time.perf_counter() - started

    def stats(self) -> dict:
        """Counts of documents, chunks, log events, queries and feedback, and the vector count."""
        counts = self.store.catalog.counts()
        counts["vectors"] = self.store.vectors.count()
        return counts


def _make_generator(backend: str, model: str, settings) -> Generator:
    if backend == "anthropic":
        from scout.generate.anthropic import AnthropicGenerator

        return AnthropicGenerator(model=model, timeout_s=settings.timeout_s, max_retries=settings.max_retries)
    from scout.generate.local import LocalGenerator

    return LocalGenerator(model=model)
