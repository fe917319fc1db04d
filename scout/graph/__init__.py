"""The knowledge graph: entities, documents, chunks and logged queries, built from the catalog.

`IndexStore.graph` rebuilds it whenever the catalog's generation moved, like the BM25 index.
`GraphSignal` and `ClickSignal` are the `graph` and `click` retrieval signals; `describe_entity`
returns an entity's neighbourhood. A named-entity recogniser plugs in as an `EntityExtractor`.
"""

from scout.graph.clicks import ClickPrior, RelatedQuery
from scout.graph.entities import EntityExtractor, KeyPhraseExtractor, normalise
from scout.graph.knowledge import GraphStats, KnowledgeGraph
from scout.graph.neighbourhood import (
    EntityDocument,
    EntityNeighbourhood,
    EntityNotFoundError,
    EntityQuery,
    LinkedEntity,
    describe_entity,
)
from scout.graph.signals import ClickSignal, GraphSignal

__all__ = [
    "ClickPrior",
    "ClickSignal",
    "EntityDocument",
    "EntityExtractor",
    "EntityNeighbourhood",
    "EntityNotFoundError",
    "EntityQuery",
    "GraphSignal",
    "GraphStats",
    "KeyPhraseExtractor",
    "KnowledgeGraph",
    "LinkedEntity",
    "RelatedQuery",
    "describe_entity",
    "normalise",
]
