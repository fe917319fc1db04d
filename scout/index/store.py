"""An index directory: configuration, catalog, vector store, BM25 index and the embedder.

```
my-index/
  scout.toml   how the index was built
  catalog.db   SQLite catalog
  qdrant/      embedded Qdrant storage (absent with a server URL)
  bm25/        lexical index
  graph/       knowledge graph (scout.graph)
```
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from scout.config import IndexConfig
from scout.errors import ConfigError, EmbedderMismatchError, IndexNotFoundError
from scout.index.catalog import Catalog
from scout.index.lexical import BM25Index
from scout.index.vectors import QdrantVectorStore

logger = logging.getLogger(__name__)

CONFIG_FILE = "scout.toml"
GENERATION_KEY = "generation"
GENERATION_FILE = "generation.txt"


def embedding_dimension(embedder) -> int:
    """Return the embedder's output size. sentence-transformers 6 renamed the method, and fakes keep the old name."""
    method = getattr(embedder, "get_embedding_dimension", None) or embedder.get_sentence_embedding_dimension
    return int(method())


class IndexStore:
    """Opens the parts of an index directory lazily; the catalog opens at once."""

    def __init__(self, path: Path, config: IndexConfig, embedder=None) -> None:
        self.path = path
        self.config = config
        self.catalog = Catalog(path / "catalog.db")
        qdrant_path = None if config.qdrant_url else path / "qdrant"
        self.vectors = QdrantVectorStore(config.collection, config.embedder.dimension, path=qdrant_path, url=config.qdrant_url)
        self._embedder = embedder
        self._bm25: BM25Index | None = None
        self._bm25_generation: str | None = None
        self._restricted: dict[str, tuple[str, ...]] | None = None
        self._graph = None

    @classmethod
    def open(cls, path: Path, create: bool, config: IndexConfig | None = None, embedder=None) -> IndexStore:
        path = Path(path).expanduser()
        config_path = path / CONFIG_FILE
        if config_path.exists():
            stored = IndexConfig.load(config_path)
            if config is not None and config.embedder != stored.embedder:
                raise EmbedderMismatchError(
                    f"index {path} was built with embedder {stored.embedder.model!r} ({stored.embedder.dimension} dims), "
                    f"not {config.embedder.model!r}; use the same embedder or ingest into a new index directory"
                )
            return cls(path, stored, embedder)
        if not create:
            raise IndexNotFoundError(f"no Scout index at {path} ({CONFIG_FILE} not found); build one with: scout ingest PATH --index {path}")
        if path.exists() and not path.is_dir():
            raise ConfigError(f"index path {path} is a file; give a directory")
        path.mkdir(parents=True, exist_ok=True)
        config = config or IndexConfig()
        config.validate()
        config.save(config_path)
        return cls(path, config, embedder)

    def close(self) -> None:
        self.vectors.close()
        self.catalog.close()

    # Embedder

    @property
    def embedder(self):
        if self._embedder is None:
            from scout.models import load_embedder

            self._embedder = load_embedder(self.config.embedder.model)
            dimension = embedding_dimension(self._embedder)
            if dimension != self.config.embedder.dimension:
                raise EmbedderMismatchError(
                    f"embedder {self.config.embedder.model!r} makes {dimension}-dimensional vectors but the index "
                    f"records {self.config.embedder.dimension}; fix [embedder] dimension in {self.path / CONFIG_FILE}"
                )
        return self._embedder

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder.encode(texts, batch_size=32, show_progress_bar=False, normalize_embeddings=True), dtype=np.float32)

    # BM25, rebuilt from the catalog whenever its generation is behind

    @property
    def bm25(self) -> BM25Index:
        generation = self.catalog.get_state(GENERATION_KEY) or "0"
        if self._bm25 is not None and self._bm25_generation == generation:
            return self._bm25
        folder = self.path / "bm25"
        stamp = folder / GENERATION_FILE
        if stamp.exists() and stamp.read_text().strip() == generation:
            self._bm25 = BM25Index.load(folder, self.config.bm25)
        else:
            logger.info("BM25 index is behind the catalog (generation %s); rebuilding", generation)
            self._bm25 = self.rebuild_bm25(generation)
        self._bm25_generation = generation
        self._restricted = None
        return self._bm25

    @property
    def graph(self):
        """The knowledge graph (`scout.graph.KnowledgeGraph`), rebuilt when the catalog's generation moved."""
        generation = self.catalog.get_state(GENERATION_KEY) or "0"
        if self._graph is None or self._graph.generation != generation:
            from scout.graph import KnowledgeGraph

            self._graph = KnowledgeGraph.load_or_build(self.catalog.path, self.path / "graph", generation)
        return self._graph

    def visible_chunks(self, groups: set[str]) -> set[str] | None:
        """Chunk ids a reader in `groups` may see, or None when every chunk is visible to them."""
        self.bm25  # refreshes the cache below when the generation moved
        if self._restricted is None:
            self._restricted = self.catalog.restricted_chunks()
        if not self._restricted or all(groups.intersection(acl) for acl in self._restricted.values()):
            return None
        hidden = {chunk_id for chunk_id, acl in self._restricted.items() if not groups.intersection(acl)}
        return set(self.bm25.chunk_ids) - hidden

    def rebuild_bm25(self, generation: str) -> BM25Index:
        rows = self.catalog.all_chunks()
        index = BM25Index.build([r[0] for r in rows], [r[1] for r in rows], self.config.bm25)
        folder = self.path / "bm25"
        index.save(folder)
        (folder / GENERATION_FILE).write_text(generation)
        self._bm25, self._bm25_generation = index, generation
        return index
