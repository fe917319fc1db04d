"""The click prior and related queries, from the search log's query nodes in the graph.

A new query is compared with every logged query by TF-IDF cosine similarity over BM25 tokens
(stemmed, without stop words). A document's click score is the sum, over the `max_neighbours`
most similar logged queries with similarity of at least `min_similarity`, of similarity times
the times that query's users clicked the document.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import networkx as nx

from scout.config import BM25Config
from scout.index.lexical import tokenize


@dataclass(frozen=True)
class RelatedQuery:
    """A logged query similar to the one asked: its text, cosine similarity and times logged."""

    query: str
    similarity: float
    count: int


class ClickPrior:
    """Documents clicked for logged queries similar to a new query.

    >>> graph = nx.Graph(generation="1")
    >>> graph.add_node("q:mask rules", kind="query", text="mask rules", count=2)
    >>> graph.add_node("d:faq/masks", kind="document", title="Masks", acl=["public"])
    >>> graph.add_edge("q:mask rules", "d:faq/masks", kinds={"click": 2}, weight=2.0)
    >>> prior = ClickPrior(graph, BM25Config())
    >>> {doc: round(score, 3) for doc, score in prior.document_scores("rules for masks", visible=None).items()}
    {'faq/masks': 2.0}
    """

    def __init__(self, graph: nx.Graph, config: BM25Config, min_similarity: float = 0.3, max_neighbours: int = 20) -> None:
        self.min_similarity = min_similarity
        self.max_neighbours = max_neighbours
        self._config = config
        self._queries: list[str] = []
        self._counts: list[int] = []
        self._clicks: list[dict[str, int]] = []
        for node, data in graph.nodes(data=True):
            if data["kind"] != "query":
                continue
            self._queries.append(data["text"])
            self._counts.append(data["count"])
            self._clicks.append({
                other[2:]: edge["kinds"]["click"] for other, edge in graph[node].items() if "click" in edge["kinds"]
            })
        self._index(tokenize(self._queries, config) if self._queries else [])

    def _index(self, tokenized: list[list[str]]) -> None:
        document_frequency = Counter(token for tokens in tokenized for token in set(tokens))
        total = len(tokenized)
        self._idf = {token: math.log((1 + total) / (1 + df)) + 1.0 for token, df in document_frequency.items()}
        self._postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for position, tokens in enumerate(tokenized):
            vector = self._vector(tokens)
            for token, value in vector.items():
                self._postings[token].append((position, value))

    def _vector(self, tokens: list[str]) -> dict[str, float]:
        """L2-normalised TF-IDF weights; tokens never logged get the largest IDF."""
        top = max(self._idf.values(), default=1.0)
        counts = Counter(tokens)
        vector = {token: count * self._idf.get(token, top) for token, count in counts.items()}
        norm = math.sqrt(sum(value * value for value in vector.values())) or 1.0
        return {token: value / norm for token, value in vector.items()}

    def similar(self, query: str) -> list[tuple[int, float]]:
        """(logged query position, cosine similarity), most similar first, above `min_similarity`."""
        tokens = tokenize([query], self._config)[0]
        scores: dict[int, float] = defaultdict(float)
        for token, weight in self._vector(tokens).items():
            for position, value in self._postings.get(token, ()):
                scores[position] += weight * value
        ranked = sorted(((p, s) for p, s in scores.items() if s >= self.min_similarity), key=lambda pair: (-pair[1], pair[0]))
        return ranked

    def document_scores(self, query: str, visible: set[str] | None) -> dict[str, float]:
        """Document id -> click score; `visible` (document ids) drops the others unless it is None."""
        scores: dict[str, float] = defaultdict(float)
        for position, similarity in self.similar(query)[: self.max_neighbours]:
            for document, clicks in self._clicks[position].items():
                if visible is None or document in visible:
                    scores[document] += similarity * clicks
        return dict(scores)

    def related(self, query: str, k: int, visible: set[str] | None) -> list[RelatedQuery]:
        """Up to `k` logged queries most similar to `query`, other than `query` itself.

        A logged query whose every click went to a document outside `visible` is left out, so the
        log does not reveal what a reader may not see. Queries with no click are kept.
        """
        asked = " ".join(query.lower().split())
        related: list[RelatedQuery] = []
        for position, similarity in self.similar(query):
            text = self._queries[position]
            clicks = self._clicks[position]
            if " ".join(text.lower().split()) == asked:
                continue
            if visible is not None and clicks and not set(clicks) & visible:
                continue
            related.append(RelatedQuery(text, round(similarity, 4), self._counts[position]))
            if len(related) == k:
                break
        return related
