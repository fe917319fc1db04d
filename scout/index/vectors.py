"""The dense index: chunk vectors in Qdrant, embedded local mode by default or a server by URL.

Point ids are UUIDv5 of the chunk id, so writing the same chunk twice (a re-run after a crash)
overwrites instead of duplicating. The payload carries the document id, chunk id and ACL groups,
and searches filter on the groups inside Qdrant.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from scout.errors import ConfigError, EmbedderMismatchError, IndexBusyError

logger = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("8f0c2b7e-3f59-4c61-9a64-5d0e0c6b9a11")


def point_id(chunk_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, chunk_id))


class QdrantVectorStore:
    """Cosine-similarity search over chunk vectors in one Qdrant collection.

    NOTE: Qdrant's local mode takes an exclusive lock on its folder, so one process at a time
    can open an embedded index; run a Qdrant server (`qdrant_url`) to share an index.
    """

    def __init__(self, collection: str, dimension: int, path: Path | None = None, url: str | None = None) -> None:
        if path is None and url is None:
            raise ConfigError("QdrantVectorStore needs a local folder (path) or a server URL (url)")
        self.collection = collection
        self.dimension = dimension
        self._path = path
        self._url = url
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from qdrant_client import QdrantClient

            self._client = QdrantClient(url=self._url) if self._url else self._open_local(QdrantClient)
            self._ensure_collection()
        return self._client

    def _open_local(self, client_class):
        try:
            return client_class(path=str(self._path))
        except RuntimeError as exc:
            if "already accessed" not in str(exc):
                raise
            raise IndexBusyError(
                f"the embedded Qdrant store {self._path} is open in another process (a running `scout chat` or "
                "another command); stop that process, or set qdrant_url to share the index through a Qdrant server"
            ) from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _ensure_collection(self) -> None:
        from qdrant_client import models

        client = self._client
        if not client.collection_exists(self.collection):
            client.create_collection(self.collection, vectors_config=models.VectorParams(size=self.dimension, distance=models.Distance.COSINE))
            if self._url:
                # A Qdrant server filters through payload indexes; local mode has none and ignores this.
                client.create_payload_index(self.collection, "acl", models.PayloadSchemaType.KEYWORD)
                client.create_payload_index(self.collection, "doc_id", models.PayloadSchemaType.KEYWORD)
            return
        size = client.get_collection(self.collection).config.params.vectors.size
        if size != self.dimension:
            raise EmbedderMismatchError(
                f"Qdrant collection {self.collection!r} stores {size}-dimensional vectors but the embedder makes "
                f"{self.dimension}; query with the embedder that built the index, or ingest into a new index"
            )

    def upsert(self, chunk_ids: list[str], vectors: np.ndarray, payloads: list[dict], batch_size: int = 256) -> None:
        from qdrant_client import models

        for start in range(0, len(chunk_ids), batch_size):
            points = [
                models.PointStruct(id=point_id(chunk_id), vector=vector.tolist(), payload=payload)
                for chunk_id, vector, payload in zip(
                    chunk_ids[start : start + batch_size], vectors[start : start + batch_size], payloads[start : start + batch_size]
                )
            ]
            self.client.upsert(self.collection, points=points, wait=True)

    def delete_chunks(self, chunk_ids: Iterable[str], batch_size: int = 512) -> None:
        from qdrant_client import models

        ids = [point_id(chunk_id) for chunk_id in chunk_ids]
        for start in range(0, len(ids), batch_size):
            self.client.delete(self.collection, points_selector=models.PointIdsList(points=ids[start : start + batch_size]), wait=True)

    def delete_documents_except(self, doc_ids: Iterable[str], keep_chunk_ids: set[str]) -> int:
        """Delete every point of these documents whose chunk id is not in `keep_chunk_ids`."""
        from qdrant_client import models

        stale: list[str] = []
        doc_list = list(doc_ids)
        for start in range(0, len(doc_list), 256):
            condition = models.FieldCondition(key="doc_id", match=models.MatchAny(any=doc_list[start : start + 256]))
            offset = None
            while True:
                points, offset = self.client.scroll(
                    self.collection, scroll_filter=models.Filter(must=[condition]), limit=1024, offset=offset, with_payload=["chunk_id"]
                )
                stale.extend(p.payload["chunk_id"] for p in points if p.payload["chunk_id"] not in keep_chunk_ids)
                if offset is None:
                    break
        self.delete_chunks(stale)
        return len(stale)

    def search(self, vector: np.ndarray, k: int, groups: Iterable[str] | None = None) -> list[tuple[str, float]]:
        from qdrant_client import models

        query_filter = None
        if groups is not None:
            query_filter = models.Filter(must=[models.FieldCondition(key="acl", match=models.MatchAny(any=sorted(groups)))])
        response = self.client.query_points(self.collection, query=vector.tolist(), limit=k, query_filter=query_filter, with_payload=["chunk_id"])
        return [(point.payload["chunk_id"], float(point.score)) for point in response.points]

    def count(self) -> int:
        return self.client.count(self.collection, exact=True).count
