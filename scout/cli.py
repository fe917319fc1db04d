"""The `scout` command line: ingest, search, ask and the demo on the sample corpus."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import textwrap
from pathlib import Path

from scout.errors import ScoutError

logger = logging.getLogger("scout.cli")

DEFAULT_INDEX = "scout-index"

# Subpackages that add their own subcommands through `add_commands(subparsers)`.
PLUGIN_COMMANDS: list[str] = ["scout.train.cli", "scout.eval.cli", "scout.app.cli", "scout.graph.cli"]


def main(argv: list[str] | None = None) -> int:
    # Must be set before torch loads: spinning OpenMP threads slow torch about tenfold when other
    # processes share the cores. Library code leaves this to the application.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except ScoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scout", description="Retrieval-grounded search assistant on a small, cheap model.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="add, update and remove documents and search logs in an index")
    ingest.add_argument("paths", nargs="+", help="files or folders: .md .txt .html .jsonl documents, .jsonl/.csv search logs, .csv fact tables")
    _add_index(ingest)
    ingest.add_argument("--acl", action="append", metavar="GROUP", help="restrict this run's documents to readers in GROUP (repeatable)")
    ingest.add_argument("--qdrant-url", help="use a Qdrant server instead of embedded storage (new indexes only)")
    ingest.set_defaults(handler=cmd_ingest)

    search = commands.add_parser("search", help="hybrid search: print each hit with its fused and per-signal scores")
    search.add_argument("query")
    _add_index(search)
    search.add_argument("-k", type=int, default=10, help="number of hits (default 10)")
    search.add_argument("--fusion", choices=["rrf", "weighted"], help="fusion method (default: the index's configuration)")
    search.add_argument("--group", action="append", metavar="GROUP", help="ACL group of the reader (repeatable); public documents are always visible")
    search.add_argument("--json", action="store_true", help="print hits as JSON lines")
    search.add_argument("--related", action="store_true", help="also print similar queries from the search log")
    search.set_defaults(handler=cmd_search)

    ask = commands.add_parser("ask", help="answer a question with cited sources")
    ask.add_argument("question")
    _add_index(ask)
    ask.add_argument("--backend", choices=["local", "anthropic"], help="generator backend (default: the index's configuration, local)")
    ask.add_argument("--model", help="model reference: a hub id, a local folder or a packaged model name")
    ask.add_argument("-k", type=int, help="number of passages given to the model (default 4)")
    ask.add_argument("--group", action="append", metavar="GROUP", help="ACL group of the reader (repeatable)")
    ask.add_argument("--json", action="store_true", help="print the answer as one JSON object instead of streaming")
    ask.set_defaults(handler=cmd_ask)

    demo = commands.add_parser("demo", help="ingest the sample corpus and answer held-out questions with the local model")
    demo.add_argument("--corpus", default="sample_corpus", help="the sample corpus folder (default sample_corpus)")
    _add_index(demo)
    demo.add_argument("--questions", type=int, default=3, help="held-out questions to answer (default 3)")
    demo.set_defaults(handler=cmd_demo)

    for module_name in PLUGIN_COMMANDS:
        importlib.import_module(module_name).add_commands(commands)
    return parser


def _add_index(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", default=DEFAULT_INDEX, help=f"index directory (default {DEFAULT_INDEX})")


def _open(args, create: bool = False):
    from scout.api import Scout

    return Scout.open(args.index, create=create)


def cmd_ingest(args) -> int:
    from scout.api import Scout
    from scout.config import IndexConfig

    config = IndexConfig(qdrant_url=args.qdrant_url) if args.qdrant_url else None
    with Scout.open(args.index, create=True, config=config) as scout:
        report = scout.ingest(args.paths, acl=args.acl)
    for problem in report.problems:
        print(f"skipped {problem}", file=sys.stderr)
    print(report.summary())
    return 0


def cmd_search(args) -> int:
    with _open(args) as scout:
        hits = scout.search(args.query, k=args.k, fusion=args.fusion, groups=args.group)
        related = scout.related_queries(args.query, groups=args.group) if args.related else []
    if args.json:
        for hit in hits:
            print(json.dumps(hit.to_dict()))
        for query in related:
            print(json.dumps({"related_query": query.query, "similarity": query.similarity, "count": query.count}))
        return 0
    if not hits:
        print("no hits")
    for rank, hit in enumerate(hits, start=1):
        print(format_hit(rank, hit))
    if args.related:
        print("\nrelated searches:" if related else "\nrelated searches: none in the search log")
        for query in related:
            print(f"  {query.query}  (similarity {query.similarity:.2f}, searched {query.count}x)")
    return 0


def format_hit(rank: int, hit) -> str:
    signals = "  ".join(f"{name}={score:.4f} (#{hit.ranks[name]})" for name, score in hit.signals.items())
    preview = textwrap.shorten(" ".join(hit.text.split()), 200, placeholder=" ...")
    return f"{rank:2d}. {hit.score:.4f}  {hit.doc_id}  [{hit.title[:60]}]\n    {signals}\n    {preview}"


def cmd_ask(args) -> int:
    from scout.types import Answer

    with _open(args) as scout:
        if not args.json:
            seconds = scout.warm_up(args.backend, args.model)
            print(f"(models and indexes loaded in {seconds:.1f} s)", file=sys.stderr)
        answer = None
        for item in scout.stream(args.question, backend=args.backend, model=args.model, k=args.k, groups=args.group):
            if isinstance(item, Answer):
                answer = item
            elif not args.json:
                print(item, end="", flush=True)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2))
        return 0
    print()
    print_answer_footer(answer)
    return 0


def print_answer_footer(answer) -> None:
    if answer.text != answer.raw_text.strip():
        print(f"\nchecked answer: {answer.text}")
    if answer.abstained and answer.raw_text:
        print(f"(the model's text was not supported by the sources, support {answer.support:.2f}; Scout answered that it does not know)")
    print("\nsources:")
    cited = {c.number for c in answer.citations}
    for number, hit in enumerate(answer.sources, start=1):
        mark = "*" if number in cited else " "
        print(f"{mark}[{number}] {hit.doc_id} (chars {hit.start}-{hit.end}) {hit.title[:70]}")
    timings = ", ".join(f"{name.removesuffix('_ms')} {value:.0f} ms" for name, value in answer.timings.items())
    print(
        f"\n{answer.backend}:{answer.model}  tokens in {answer.usage.input_tokens}, out {answer.usage.output_tokens}  |  {timings}"
        f"  |  invalid citations removed: {answer.invalid_citations}, added by Scout: {answer.attributed_citations}"
    )


def cmd_demo(args) -> int:
    from scout.api import Scout
    from scout.types import Answer

    corpus = Path(args.corpus)
    documents, heldout = corpus / "corpus", corpus / "eval" / "heldout.jsonl"
    if not documents.is_dir() or not heldout.exists():
        print(f"error: sample corpus not found at {corpus} (expected {documents}/ and {heldout}); run from the repository root or pass --corpus", file=sys.stderr)
        return 2
    questions = [json.loads(line) for line in heldout.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [q for q in questions if q.get("answers")][: args.questions]
    with Scout.open(args.index, create=True) as scout:
        print(f"== ingest {documents} into {args.index}")
        report = scout.ingest([documents])
        for problem in report.problems:
            print(f"skipped {problem}", file=sys.stderr)
        print(report.summary())
        print(f"(models and indexes loaded in {scout.warm_up('local'):.1f} s)")
        for question in questions:
            print(f"\n== scout ask {question['question']!r}")
            answer = None
            for item in scout.stream(question["question"], backend="local"):
                if isinstance(item, Answer):
                    answer = item
                else:
                    print(item, end="", flush=True)
            print()
            print_answer_footer(answer)
            print(f"gold answer: {textwrap.shorten(question['answers'][0], 160)}  (gold documents: {', '.join(question['gold_doc_ids'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
