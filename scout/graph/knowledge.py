"""`KnowledgeGraph`: one catalog generation's graph, with entity linking and personalised PageRank."""

from __future__ import annotations

import difflib
import logging
import pickle
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from scout.config import BM25Config
from scout.graph import storage
from scout.graph.build import BUILD_VERSION, build_graph
from scout.graph.clicks import ClickPrior
from scout.graph.entities import EntityExtractor, MentionMatcher, entity_key
from scout.graph.snapshot import read_snapshot

logger = logging.getLogger(__name__)

Ranking = list[tuple[str, float]]


@dataclass(frozen=True)
class GraphStats:
    """Node counts by kind, the edge count and the seconds the last build or load took."""

    nodes: int
    edges: int
    entities: int
    documents: int
    chunks: int
    queries: int
    seconds: float = 0.0


class KnowledgeGraph:
    """The knowledge graph of one catalog generation.

    `link` finds the entities a text names; `personalized_pagerank` walks from them; `rank_chunks`
    turns the walk into a chunk ranking a reader may see.

    >>> from scout.graph.snapshot import CatalogSnapshot, ChunkRow, DocumentRow
    >>> snapshot = CatalogSnapshot("1", [DocumentRow("paris", "Paris", ("public",)), DocumentRow("louvre", "Louvre", ("public",))],
    ...                            [ChunkRow("paris#0", "paris", "Paris has the Louvre."), ChunkRow("louvre#0", "louvre", "A museum.")])
    >>> graph = KnowledgeGraph.from_snapshot(snapshot)
    >>> graph.link("what is in paris?")
    {'e:paris': 1.0}
    >>> [chunk for chunk, _ in graph.rank_chunks("what is in paris?", {"public"}, 2)]
    ['paris#0', 'louvre#0']
    """

    def __init__(self, graph: nx.Graph, seconds: float = 0.0) -> None:
        self.graph = graph
        self.generation: str = graph.graph["generation"]
        self.seconds = seconds
        self._matcher: MentionMatcher | None = None
        self._views: dict[frozenset[str], nx.Graph] = {}
        self._click_prior: ClickPrior | None = None

    # Build, save, load

    @classmethod
    def from_snapshot(cls, snapshot, extractor: EntityExtractor | None = None) -> KnowledgeGraph:
        started = time.perf_counter()
        graph = build_graph(snapshot, extractor)
        return cls(graph, time.perf_counter() - started)

    @classmethod
    def load_or_build(cls, catalog_path: Path, folder: Path, generation: str, extractor: EntityExtractor | None = None) -> KnowledgeGraph:
        """Load the saved graph when it is stamped `generation` and has this `BUILD_VERSION`; otherwise rebuild and save it."""
        if storage.stored_generation(folder) == generation:
            started = time.perf_counter()
            try:
                graph = storage.load(folder)
            except (OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:  # a removed folder or a damaged file
                logger.warning("could not load the graph from %s (%s); rebuilding it from the catalog", folder, exc)
            else:
                if graph.graph.get("build_version") == BUILD_VERSION:
                    return cls(graph, time.perf_counter() - started)
        logger.info("graph is behind the catalog (generation %s); rebuilding", generation)
        graph = cls.from_snapshot(read_snapshot(catalog_path), extractor)
        try:
            storage.save(graph.graph, folder)
        except OSError as exc:
            logger.warning("could not save the graph to %s (%s); it will be rebuilt on the next open", folder, exc)
        return graph

    def stats(self) -> GraphStats:
        kinds = [kind for _, kind in self.graph.nodes(data="kind")]
        return GraphStats(
            nodes=self.graph.number_of_nodes(), edges=self.graph.number_of_edges(),
            entities=kinds.count("entity"), documents=kinds.count("document"),
            chunks=kinds.count("chunk"), queries=kinds.count("query"), seconds=self.seconds,
        )

    # Entity lookup

    @property
    def matcher(self) -> MentionMatcher:
        """Every entity name and alias, matched case-insensitively in queries."""
        if self._matcher is None:
            names: dict[tuple[str, ...], str] = {}
            for node, data in self.graph.nodes(data=True):
                if data["kind"] != "entity":
                    continue
                names[tuple(node[2:].split(" "))] = node
                for alias in data["aliases"]:
                    names.setdefault(tuple(alias.split(" ")), node)
            self._matcher = MentionMatcher(names)
        return self._matcher

    def find_entity(self, name: str) -> str | None:
        """Return the node id of the entity named `name` (any case, accents or alias), or None."""
        return self.matcher.names.get(entity_key(name))

    def close_matches(self, name: str, limit: int = 5) -> list[str]:
        """Entity names that contain `name` or are spelled like it (or like a part of it), best first."""
        wanted = entity_key(name)
        if not wanted:
            return []
        scored: list[tuple[float, int, str]] = []
        for node, data in self.graph.nodes(data=True):
            if data["kind"] != "entity":
                continue
            similarity = _spelling_similarity(wanted, tuple(node[2:].split(" ")))
            if similarity >= 0.75:
                scored.append((-similarity, -data["chunks"], data["name"]))
        scored.sort()
        return [name for _, _, name in scored[:limit]]

    def link(self, text: str) -> dict[str, float]:
        """Find the entities named in `text`, each weighted by 1 / (chunks that mention it).

        A rarer name is a more specific cue. This is the node specificity of HippoRAG (Gutiérrez
        et al., arXiv:2405.14831). Weights sum to 1.
        """
        found = [node for node in self.matcher.find(text, case_sensitive=False) if node in self.graph]
        weights = {node: 1.0 / max(1, self.graph.nodes[node]["chunks"]) for node in found}
        total = sum(weights.values())
        return {node: weight / total for node, weight in weights.items()}

    # Access control

    def hidden_documents(self, groups: set[str]) -> frozenset[str]:
        """Node ids of the documents a reader in `groups` may not see."""
        return frozenset(
            node for node, data in self.graph.nodes(data=True)
            if data["kind"] == "document" and not groups.intersection(data["acl"])
        )

    def visible_documents(self, groups: set[str]) -> set[str] | None:
        """Ids of the documents a reader in `groups` may see, or None when they may see all."""
        hidden = self.hidden_documents(groups)
        if not hidden:
            return None
        return {node[2:] for node, kind in self.graph.nodes(data="kind") if kind == "document" and node not in hidden}

    def view(self, groups: set[str]) -> nx.Graph:
        """Return the subgraph a reader in `groups` may walk, without the documents they may not see.

        Their chunks go too, and so do entities named only there and queries that clicked only
        there. Entities from fact tables stay, because fact tables carry no ACL.
        """
        hidden = self.hidden_documents(groups)
        if not hidden:
            return self.graph
        if hidden not in self._views:
            self._views[hidden] = self.graph.subgraph(self._visible_nodes(hidden)).copy()
        return self._views[hidden]

    def _visible_nodes(self, hidden: frozenset[str]) -> Iterable[str]:
        graph = self.graph
        hidden_ids = {document[2:] for document in hidden}
        hidden_chunks = {node for node, doc in graph.nodes(data="doc") if doc in hidden_ids}
        gone = hidden | hidden_chunks
        for node, data in graph.nodes(data=True):
            if node in gone:
                continue
            if data["kind"] == "entity" and "fact" not in data["origins"]:
                sources = [n for n in graph[node] if graph.nodes[n]["kind"] in ("chunk", "document")]
                if sources and all(n in gone for n in sources):
                    continue
            if data["kind"] == "query":
                clicked = [n for n in graph[node] if graph.nodes[n]["kind"] == "document"]
                if clicked and all(n in gone for n in clicked):
                    continue
            yield node

    # Personalised PageRank

    def personalized_pagerank(self, seeds: dict[str, float], groups: set[str], alpha: float = 0.5) -> dict[str, float]:
        """PageRank restarting at `seeds` (node -> weight) on the reader's view of the graph.

        `alpha` is the damping factor: the chance of following an edge rather than jumping back
        to a seed. Returns {} when no seed is visible to the reader.
        """
        graph = self.view(groups)
        seeds = {node: weight for node, weight in seeds.items() if node in graph and weight > 0}
        if not seeds:
            return {}
        # Starting the power iteration at the seeds keeps nodes the walk never reaches at exactly 0.
        return nx.pagerank(graph, alpha=alpha, personalization=seeds, nstart=seeds, weight="weight", tol=1e-8)

    def rank_chunks(self, query: str, groups: set[str], limit: int, alpha: float = 0.5, passages: dict[str, float] | None = None) -> Ranking:
        """Rank chunks by personalised PageRank from the entities `query` names and from `passages`.

        `passages` (chunk id -> restart weight) adds chunks as seeds, as HippoRAG 2 seeds its walk
        with dense-retrieval passages (Gutiérrez et al., arXiv:2502.14802). A chunk scores its own
        PageRank plus its document's, because links from other chunks and titles reach the
        document node, not its chunks.
        """
        seeds = self.link(query)
        for chunk_id, weight in (passages or {}).items():
            seeds["c:" + chunk_id] = seeds.get("c:" + chunk_id, 0.0) + weight
        scores = self.personalized_pagerank(seeds, groups, alpha)
        chunks = []
        for node, score in scores.items():
            if node.startswith("c:"):
                total = score + scores.get("d:" + self.graph.nodes[node]["doc"], 0.0)
                if total > 0:
                    chunks.append((node[2:], total))
        chunks.sort(key=lambda pair: (-pair[1], pair[0]))
        return chunks[:limit]

    def click_prior(self, config: BM25Config) -> ClickPrior:
        """Return the click prior over this graph's logged queries, built on first use."""
        if self._click_prior is None:
            self._click_prior = ClickPrior(self.graph, config)
        return self._click_prior

    def document_chunks(self, doc_id: str) -> list[str]:
        """Chunk ids of a document, or [] when the graph has no such document."""
        node = "d:" + doc_id
        if node not in self.graph:
            return []
        # A document's neighbours also include chunks of other documents that mention it.
        return [other[2:] for other in self.graph[node] if self.graph.nodes[other].get("doc") == doc_id]

    def entity_documents(self, node: str) -> dict[str, int]:
        """Document id -> number of its chunks that name the entity (0 for a home document)."""
        graph = self.graph
        found: dict[str, int] = {home: 0 for home in graph.nodes[node]["homes"]}
        for neighbour in graph[node]:
            if graph.nodes[neighbour]["kind"] == "chunk":
                document = graph.nodes[neighbour]["doc"]
                found[document] = found.get(document, 0) + 1
        return found


def _spelling_similarity(wanted: tuple[str, ...], key: tuple[str, ...]) -> float:
    """Return the best difflib ratio of `wanted` to `key` or to any run of `key`'s words as long as `wanted`."""
    target = " ".join(wanted)
    size = min(len(wanted), len(key))
    windows = {" ".join(key)} | {" ".join(key[i : i + size]) for i in range(len(key) - size + 1)}
    best = 0.0
    for window in windows:
        matcher = difflib.SequenceMatcher(None, target, window)
        if matcher.real_quick_ratio() > best and matcher.quick_ratio() > best:
            best = max(best, matcher.ratio())
    return best
