"""`scout graph ENTITY`: print an entity's neighbourhood in an index's knowledge graph."""

from __future__ import annotations

import argparse
import json

from scout.graph.neighbourhood import EntityNeighbourhood


def add_commands(commands) -> None:
    graph = commands.add_parser("graph", help="show an entity's documents, linked entities and the queries that led to it")
    graph.add_argument("entity", help="entity name or alias; case and accents are ignored")
    graph.add_argument("--index", default="scout-index", help="index directory (default scout-index)")
    graph.add_argument("--group", action="append", metavar="GROUP", help="ACL group of the reader (repeatable); public documents are always visible")
    graph.add_argument("-n", "--limit", type=int, default=10, help="items per list (default 10)")
    graph.add_argument("--json", action="store_true", help="print the neighbourhood as one JSON object")
    graph.set_defaults(handler=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    from scout.api import Scout

    with Scout.open(args.index, create=False) as scout:
        neighbourhood = scout.entity(args.entity, groups=args.group, limit=args.limit)
    if args.json:
        print(json.dumps(neighbourhood.to_dict(), indent=2))
    else:
        print(format_neighbourhood(neighbourhood))
    return 0


def format_neighbourhood(entity: EntityNeighbourhood) -> str:
    aliases = f"  (also: {', '.join(entity.aliases)})" if entity.aliases else ""
    lines = [f"{entity.name}{aliases}", f"  from: {', '.join(entity.origins)}; named in {entity.chunks} chunks"]

    lines += ["", "documents:"]
    for document in entity.documents:
        role = "home" if document.home else f"{document.mentions} mention{'' if document.mentions == 1 else 's'}"
        lines.append(f"  {document.doc_id}  [{document.title[:60]}]  {role}")

    lines += ["", "linked entities:"]
    for linked in entity.entities:
        relations = ", ".join(f"{kind} x{count}" for kind, count in sorted(linked.relations.items()))
        lines.append(f"  {linked.name}  ({relations})")
        lines += [f"    fact: {fact}" for fact in linked.facts]

    lines += ["", "queries that led here:"]
    for query in entity.queries:
        lines.append(f"  {query.query}  ({query.via}, {query.count}x)")
    return "\n".join(_mark_empty_sections(lines))


def _mark_empty_sections(lines: list[str]) -> list[str]:
    """Put "  (none)" under each section heading that has no items."""
    marked: list[str] = []
    for index, line in enumerate(lines):
        marked.append(line)
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if line.endswith(":") and not line.startswith(" ") and not following.startswith("  "):
            marked.append("  (none)")
    return marked
