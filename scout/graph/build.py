"""Build the knowledge graph from a catalog snapshot.

Nodes (the id prefix gives the kind):
- `e:<normalised name>` entity: a document title or alias, a key phrase, a fact's subject or object;
- `d:<doc id>` document, `c:<chunk id>` chunk;
- `q:<normalised query>` a query from the search log.

Edges are undirected. Each carries `kinds`, a count per relation, and `weight`, the sum of
the counts scaled by `EDGE_WEIGHTS`, which personalised PageRank walks by:
- `contains` document-chunk; `home` entity-document for a title or alias;
- `mentions` chunk-entity for each name found in the chunk, and chunk-document when the named
  entity's home is another document (a hyperlink in all but name);
- `cooccurs` entity-entity for names found in the same chunk;
- `fact` subject-object for each fact row, with the relation names in `relations`;
- `click` query-document, `asks` query-entity, `session` document-document for documents
  clicked in the same session.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import networkx as nx

from scout.graph.entities import (
    EntityExtractor,
    Key,
    KeyPhraseExtractor,
    MentionMatcher,
    Token,
    entity_key,
    is_nameable,
    title_aliases,
    tokens_of,
)
from scout.graph.snapshot import CatalogSnapshot

logger = logging.getLogger(__name__)

# Bumped whenever the build changes, so a graph saved by an older Scout is rebuilt.
BUILD_VERSION = 1

EDGE_WEIGHTS = {
    "contains": 1.0,
    "home": 2.0,
    "mentions": 1.0,
    "cooccurs": 0.5,
    "fact": 2.0,
    "click": 1.0,
    "asks": 1.0,
    "session": 0.5,
}

# Co-occurrence edges grow with the square of the names per chunk. So only a chunk's rarest names,
# those found in the fewest chunks, get them.
MAX_COOCCURRING_NAMES = 12


def entity_node(key: Key) -> str:
    return "e:" + " ".join(key)


def document_node(doc_id: str) -> str:
    return "d:" + doc_id


def chunk_node(chunk_id: str) -> str:
    return "c:" + chunk_id


def query_node(key: Key) -> str:
    return "q:" + " ".join(key)


@dataclass
class _Vocabulary:
    """Entity names found so far: display name, homes, where each came from."""

    names: dict[Key, str] = field(default_factory=dict)
    aliases: dict[Key, Key] = field(default_factory=dict)
    homes: dict[Key, list[str]] = field(default_factory=lambda: defaultdict(list))
    origins: dict[Key, set[str]] = field(default_factory=lambda: defaultdict(set))
    proper: set[Key] = field(default_factory=set)

    def add(self, surface: str, origin: str, home: str | None = None, canonical: Key | None = None) -> Key | None:
        """Register a name; an alias points at its `canonical` entity. Returns the entity's key."""
        key = entity_key(surface)
        if not is_nameable(key):
            return None
        target = canonical or self.aliases.get(key, key)
        self.aliases.setdefault(key, target)
        target = self.aliases[key]
        self.names.setdefault(target, surface.strip())
        self.origins[target].add(origin)
        if home is not None and home not in self.homes[target]:
            self.homes[target].append(home)
        if any(ch.isupper() for ch in surface):
            self.proper.add(key)
        return target


def build_graph(snapshot: CatalogSnapshot, extractor: EntityExtractor | None = None) -> nx.Graph:
    """Build the graph of one catalog snapshot; the same snapshot always gives the same graph."""
    graph = nx.Graph(generation=snapshot.generation, build_version=BUILD_VERSION)
    tokens = [tokens_of(chunk.text) for chunk in snapshot.chunks]
    vocabulary = _collect_names(snapshot, tokens, extractor or KeyPhraseExtractor())
    _add_documents(graph, snapshot)
    mentions = _add_mentions(graph, snapshot, tokens, vocabulary)
    _add_entities(graph, vocabulary, mentions)
    _add_facts(graph, snapshot, vocabulary)
    _add_search_log(graph, snapshot, vocabulary)
    logger.info("graph for generation %s: %d nodes, %d edges", snapshot.generation, graph.number_of_nodes(), graph.number_of_edges())
    return graph


def _collect_names(snapshot: CatalogSnapshot, tokens: list[list[Token]], extractor: EntityExtractor) -> _Vocabulary:
    vocabulary = _Vocabulary()
    for document in snapshot.documents:
        if _is_title_a_name(document.title, document.id):
            names = title_aliases(document.title)
            canonical = vocabulary.add(names[0], "title", home=document.id)
            for alias in names[1:]:
                vocabulary.add(alias, "title", home=document.id, canonical=canonical)
        else:
            canonical = None
        for alias in document.aliases:
            added = vocabulary.add(alias, "alias", home=document.id, canonical=canonical)
            canonical = canonical or added
    for subject, _relation, obj in snapshot.facts:
        vocabulary.add(subject, "fact")
        vocabulary.add(obj, "fact")
    for phrase in extractor.extract([chunk.text for chunk in snapshot.chunks], tokens):
        vocabulary.add(phrase, "phrase")
    return vocabulary


def _is_title_a_name(title: str, doc_id: str) -> bool:
    """Short titles name things; questions ("What is ...?") and fallback ids ("faq/masks") do not."""
    title = title.strip()
    if not title or title.endswith("?") or (title == doc_id and ("/" in title or "#" in title)):
        return False
    return len(entity_key(title)) <= 8


def _add_documents(graph: nx.Graph, snapshot: CatalogSnapshot) -> None:
    for document in snapshot.documents:
        graph.add_node(document_node(document.id), kind="document", title=document.title, acl=list(document.acl))
    for chunk in snapshot.chunks:
        node = chunk_node(chunk.id)
        graph.add_node(node, kind="chunk", doc=chunk.doc_id)
        _link(graph, document_node(chunk.doc_id), node, "contains")


def _add_mentions(graph: nx.Graph, snapshot: CatalogSnapshot, tokens: list[list[Token]], vocabulary: _Vocabulary) -> dict[Key, set[str]]:
    """Link chunks to the names they contain; return entity key -> ids of the mentioning chunks."""
    matcher = MentionMatcher({alias: " ".join(key) for alias, key in vocabulary.aliases.items()}, vocabulary.proper)
    by_chunk: dict[str, list[Key]] = {}
    mentions: dict[Key, set[str]] = defaultdict(set)
    for chunk, chunk_tokens in zip(snapshot.chunks, tokens):
        keys = [tuple(found.split(" ")) for found in matcher.find_in_tokens(chunk_tokens)]
        by_chunk[chunk.id] = keys
        for key in keys:
            mentions[key].add(chunk.id)

    doc_of = {chunk.id: chunk.doc_id for chunk in snapshot.chunks}
    for chunk_id, keys in by_chunk.items():
        node = chunk_node(chunk_id)
        for key in keys:
            _link(graph, node, entity_node(key), "mentions")
            for home in vocabulary.homes.get(key, ()):
                if home != doc_of[chunk_id]:
                    _link(graph, node, document_node(home), "mentions")
        specific = sorted(keys, key=lambda k: (len(mentions[k]), k))[:MAX_COOCCURRING_NAMES]
        for first, second in itertools.combinations(sorted(specific), 2):
            _link(graph, entity_node(first), entity_node(second), "cooccurs")
    return mentions


def _add_entities(graph: nx.Graph, vocabulary: _Vocabulary, mentions: dict[Key, set[str]]) -> None:
    aliases: dict[Key, list[str]] = defaultdict(list)
    for alias, key in vocabulary.aliases.items():
        if alias != key:
            aliases[key].append(" ".join(alias))
    for key, name in vocabulary.names.items():
        homes = vocabulary.homes.get(key, [])
        if not homes and not mentions.get(key) and "fact" not in vocabulary.origins[key]:
            continue  # a phrase that no chunk contains after longest-match, e.g. inside a longer name
        node = entity_node(key)
        graph.add_node(
            node, kind="entity", name=name, aliases=sorted(aliases[key]), homes=list(homes),
            origins=sorted(vocabulary.origins[key]), chunks=len(mentions.get(key, ())),
        )
        for home in homes:
            if document_node(home) in graph:
                _link(graph, node, document_node(home), "home")


def _add_facts(graph: nx.Graph, snapshot: CatalogSnapshot, vocabulary: _Vocabulary) -> None:
    for subject, relation, obj in snapshot.facts:
        first = vocabulary.aliases.get(entity_key(subject))
        second = vocabulary.aliases.get(entity_key(obj))
        if first is None or second is None or first == second:
            continue
        edge = _link(graph, entity_node(first), entity_node(second), "fact")
        relations = edge.setdefault("relations", [])
        label = f"{vocabulary.names[first]} {relation} {vocabulary.names[second]}"
        if label not in relations:
            relations.append(label)


def _add_search_log(graph: nx.Graph, snapshot: CatalogSnapshot, vocabulary: _Vocabulary) -> None:
    documents = {node for node, kind in graph.nodes(data="kind") if kind == "document"}
    matcher = MentionMatcher({alias: " ".join(key) for alias, key in vocabulary.aliases.items()}, vocabulary.proper)
    sessions: dict[str, set[str]] = defaultdict(set)
    counts: Counter[Key] = Counter()
    for event in snapshot.clicks:
        key = entity_key(event.query)
        if not key:
            continue
        node = query_node(key)
        counts[key] += 1
        if node not in graph:
            graph.add_node(node, kind="query", text=event.query, count=0)
            for found in matcher.find(event.query, case_sensitive=False):
                if entity_node(tuple(found.split(" "))) in graph:
                    _link(graph, node, entity_node(tuple(found.split(" "))), "asks")
        clicked = document_node(event.clicked_doc_id) if event.clicked_doc_id else None
        if clicked in documents:
            _link(graph, node, clicked, "click")
            if event.session_id:
                sessions[event.session_id].add(clicked)
    for key, count in counts.items():
        graph.nodes[query_node(key)]["count"] = count
    for clicked in sessions.values():
        for first, second in itertools.combinations(sorted(clicked), 2):
            _link(graph, first, second, "session")


def _link(graph: nx.Graph, first: str, second: str, kind: str) -> dict:
    """Add one `kind` relation between two nodes and return the edge's attributes."""
    if graph.has_edge(first, second):
        edge = graph.edges[first, second]
    else:
        graph.add_edge(first, second, kinds={}, weight=0.0)
        edge = graph.edges[first, second]
    edge["kinds"][kind] = edge["kinds"].get(kind, 0) + 1
    edge["weight"] += EDGE_WEIGHTS[kind]
    return edge
