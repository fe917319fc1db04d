"""The `scout eval` subcommand."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from scout.eval.suites import DATASETS_ENV, SUITES
from scout.eval.systems import SYSTEM_KINDS


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="compare retrieval, oracle and closed-book systems on a question suite and write a report",
        description=(
            "Answer a suite's questions with each system and write results.jsonl, results.json, report.md and PNG charts "
            "to --out. A re-run with the same --out skips the answers already written."
        ),
    )
    parser.add_argument("--suite", required=True, help=f"{', '.join(SUITES)}, or a folder with questions.jsonl and documents/")
    parser.add_argument(
        "--systems", required=True,
        help=f"comma-separated KIND:GENERATOR list, KIND one of {', '.join(SYSTEM_KINDS)}; GENERATOR local, local=REF, "
        "anthropic, anthropic=MODEL or fake, or a checkpoint folder for closed-book and rag+finetuned",
    )
    parser.add_argument("--index", required=True, type=Path, help="index directory for the suite's documents (created, or reused when it contains them)")
    parser.add_argument("--out", required=True, type=Path, help="report directory")
    parser.add_argument("--limit", type=int, help="run only this many questions, shared among the question kinds and evenly spaced within each")
    parser.add_argument("-k", type=int, help="passages each generator reads (default: the index's setting, 4)")
    parser.add_argument("--prices", type=Path, help="TOML or JSON file: model = {input_per_mtok, output_per_mtok} in US dollars")
    parser.add_argument("--freshness", action="store_true", help="after the run, edit a fact in one document, re-ingest, and ask again")
    parser.add_argument("--datasets", type=Path, help=f"folder of the dataset suites (default: ${DATASETS_ENV} or the built-in path)")
    parser.add_argument("--corpus", type=Path, help="sample corpus folder for --suite sample (default: ./sample_corpus)")
    parser.add_argument("--note", action="append", default=[], help="a line for the report's Notes section (repeatable)")
    parser.set_defaults(handler=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from scout.eval.runner import EvalConfig, run_eval

    config = EvalConfig(
        suite=args.suite, systems=args.systems, index=args.index, out=args.out, limit=args.limit, k=args.k,
        freshness=args.freshness, prices=args.prices, datasets=args.datasets, corpus=args.corpus,
        command=command_line(args), notes=args.note,
    )
    results = run_eval(config)
    print_summary(results)
    print(f"\nreport: {args.out / 'report.md'}")
    return 0


def command_line(args: argparse.Namespace) -> str:
    """Rebuild, from the parsed options, the `scout eval` command that reproduces this run."""
    parts = ["scout", "eval", "--suite", args.suite, "--systems", args.systems, "--index", str(args.index), "--out", str(args.out)]
    for option, value in (("--limit", args.limit), ("-k", args.k), ("--prices", args.prices), ("--datasets", args.datasets), ("--corpus", args.corpus)):
        if value is not None:
            parts += [option, str(value)]
    if args.freshness:
        parts.append("--freshness")
    for note in args.note:
        parts += ["--note", note]
    return shlex.join(parts)


def print_summary(results: dict) -> None:
    k = results["k"]
    print(f"{'system':32} {'EM':>6} {'F1':>6} {f'R@{k}':>6} {'MRR':>6} {'p50 s':>7} {'CPU s/q':>8}")
    for name, m in results["systems"].items():
        cells = [m["em"], m["f1"], m[f"recall@{k}"], m["mrr"]]
        scores = " ".join(f"{v:6.3f}" if v is not None else f"{'n/a':>6}" for v in cells)
        latency = m["latency_p50_ms"] / 1000 if m["latency_p50_ms"] is not None else float("nan")
        cpu = m["cpu_seconds_per_query"] if m["cpu_seconds_per_query"] is not None else float("nan")
        print(f"{name:32} {scores} {latency:7.1f} {cpu:8.1f}")
