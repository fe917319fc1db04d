"""An entity's neighbourhood in the graph: its documents, linked entities, facts and queries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from scout.errors import ScoutError
from scout.graph.knowledge import KnowledgeGraph


class EntityNotFoundError(ScoutError):
    """No entity has the requested name; `close_matches` lists names spelled like it."""

    def __init__(self, name: str, close_matches: list[str]) -> None:
        self.name = name
        self.close_matches = close_matches
        hint = f"; close matches: {', '.join(repr(m) for m in close_matches)}" if close_matches else "; no entity has a similar name"
        super().__init__(f"entity {name!r} not found in the graph{hint}")


@dataclass(frozen=True)
class EntityDocument:
    """A document about the entity (`home`: its title or alias names it) or naming it `mentions` times."""

    doc_id: str
    title: str
    home: bool
    mentions: int


@dataclass(frozen=True)
class LinkedEntity:
    """An entity sharing an edge with this one: `relations` counts co-occurrences and facts."""

    name: str
    relations: dict[str, int]
    weight: float
    facts: tuple[str, ...] = ()


@dataclass(frozen=True)
class EntityQuery:
    """A logged query that named the entity (`asks`) or clicked one of its home documents (`click`)."""

    query: str
    count: int
    via: str


@dataclass
class EntityNeighbourhood:
    """An entity's documents, linked entities and queries, as a reader in some ACL groups may see them."""

    name: str
    aliases: list[str]
    origins: list[str]
    chunks: int
    documents: list[EntityDocument] = field(default_factory=list)
    entities: list[LinkedEntity] = field(default_factory=list)
    queries: list[EntityQuery] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_entity(knowledge: KnowledgeGraph, name: str, groups: set[str], limit: int = 10) -> EntityNeighbourhood:
    """Collect the neighbourhood of the entity `name`, at most `limit` items per list, best first.

    Raises `EntityNotFoundError` with close matches when no visible entity has that name.
    """
    graph = knowledge.view(groups)
    node = knowledge.find_entity(name)
    if node is None or node not in graph:
        visible = [match for match in knowledge.close_matches(name, limit=20) if knowledge.find_entity(match) in graph]
        raise EntityNotFoundError(name, visible[:5])
    data = graph.nodes[node]
    return EntityNeighbourhood(
        name=data["name"], aliases=list(data["aliases"]), origins=list(data["origins"]), chunks=data["chunks"],
        documents=_documents(knowledge, graph, node)[:limit],
        entities=_linked_entities(graph, node)[:limit],
        queries=_queries(graph, node)[:limit],
    )


def _documents(knowledge: KnowledgeGraph, graph, node: str) -> list[EntityDocument]:
    homes = set(graph.nodes[node]["homes"])
    found = []
    for doc_id, mentions in knowledge.entity_documents(node).items():
        document = "d:" + doc_id
        if document in graph:
            found.append(EntityDocument(doc_id, graph.nodes[document]["title"], doc_id in homes, mentions))
    found.sort(key=lambda d: (not d.home, -d.mentions, d.doc_id))
    return found


def _linked_entities(graph, node: str) -> list[LinkedEntity]:
    linked = []
    for other, edge in graph[node].items():
        if graph.nodes[other]["kind"] != "entity":
            continue
        linked.append(LinkedEntity(graph.nodes[other]["name"], dict(edge["kinds"]), edge["weight"], tuple(edge.get("relations", ()))))
    linked.sort(key=lambda e: (-e.weight, e.name))
    return linked


def _queries(graph, node: str) -> list[EntityQuery]:
    found: dict[str, EntityQuery] = {}
    for other in graph[node]:
        if graph.nodes[other]["kind"] == "query":
            found[other] = EntityQuery(graph.nodes[other]["text"], graph.nodes[other]["count"], "asks")
    for home in graph.nodes[node]["homes"]:
        document = "d:" + home
        if document not in graph:
            continue
        for other in graph[document]:
            if graph.nodes[other]["kind"] == "query" and other not in found:
                found[other] = EntityQuery(graph.nodes[other]["text"], graph.nodes[other]["count"], "click")
    return sorted(found.values(), key=lambda q: (-q.count, q.query))
