"""The `graph` and `click` retrieval signals, in the form `HybridRetriever.add_signal` takes."""

from __future__ import annotations

from scout.index.store import IndexStore

Ranking = list[tuple[str, float]]

# Personalised PageRank damping: the chance of following an edge rather than restarting.
DEFAULT_ALPHA = 0.5

# The top BM25 chunks also seed the walk: the best at PASSAGE_WEIGHT, the others in proportion
# to their BM25 score, next to the query's entities, whose weights sum to 1. Without them, a
# question naming only common entities walks off topic (measured in benchmarks/multihop.py).
PASSAGE_SEEDS = 5
PASSAGE_WEIGHT = 0.2


class GraphSignal:
    """Chunks ranked by personalised PageRank from the entities the query names and its top BM25 chunks.

    Returns nothing when the query names no known entity and matches no chunk. Only chunks the
    reader may see are returned.
    """

    def __init__(self, store: IndexStore, alpha: float = DEFAULT_ALPHA, passage_weight: float = PASSAGE_WEIGHT) -> None:
        self.store = store
        self.alpha = alpha
        self.passage_weight = passage_weight

    def __call__(self, query: str, candidates: int, groups: set[str]) -> Ranking:
        visible = self.store.visible_chunks(groups)
        ranking = self.store.graph.rank_chunks(query, groups, candidates, self.alpha, self._passages(query, visible))
        if visible is None:
            return ranking
        return [(chunk, score) for chunk, score in ranking if chunk in visible]

    def _passages(self, query: str, visible: set[str] | None) -> dict[str, float]:
        """Return seed weights of the top BM25 chunks: `passage_weight` times score / best score."""
        hits = self.store.bm25.search(query, PASSAGE_SEEDS, allowed=visible) if self.passage_weight else []
        if not hits:
            return {}
        best = hits[0][1]
        return {chunk: self.passage_weight * score / best for chunk, score in hits}


class ClickSignal:
    """Chunks of documents that users clicked for similar logged queries.

    A clicked document's score is spread over its chunks by their BM25 score for the query:
    chunk score = document score * (0.5 + 0.5 * BM25 / the document's best BM25), so the
    chunk that matches the query best leads and the others keep half the prior.
    """

    def __init__(self, store: IndexStore) -> None:
        self.store = store

    def __call__(self, query: str, candidates: int, groups: set[str]) -> Ranking:
        graph = self.store.graph
        prior = graph.click_prior(self.store.config.bm25)
        documents = prior.document_scores(query, graph.visible_documents(groups))
        if not documents:
            return []
        chunks_of = {doc_id: graph.document_chunks(doc_id) for doc_id in documents}
        allowed = {chunk for chunks in chunks_of.values() for chunk in chunks}
        visible = self.store.visible_chunks(groups)
        if visible is not None:
            allowed &= visible
        lexical = dict(self.store.bm25.search(query, max(1, len(allowed)), allowed=allowed))
        ranking: Ranking = []
        for doc_id, score in documents.items():
            chunks = [chunk for chunk in chunks_of[doc_id] if chunk in allowed]
            best = max((lexical.get(chunk, 0.0) for chunk in chunks), default=0.0) or 1.0
            ranking += [(chunk, score * (0.5 + 0.5 * lexical.get(chunk, 0.0) / best)) for chunk in chunks]
        ranking.sort(key=lambda pair: (-pair[1], pair[0]))
        return ranking[:candidates]
