"""Aggregate per-question records into per-system metrics, and write results.json and report.md."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from scout.errors import ConfigError
from scout.eval.metrics import abstention_rates, mean, percentile, ranx_retrieval_scores, usd_per_1000_queries
from scout.eval.systems import RETRIEVAL_DEPTH, SystemSpec
from scout.generate.pricing import DEFAULT_PRICES, Prices, cost_usd, prices_for
from scout.types import Usage

if TYPE_CHECKING:
    from scout.config import IndexConfig
    from scout.eval.runner import EvalConfig

REPORT_FILE = "report.md"
RESULTS_JSON = "results.json"


# Prices


def load_prices(path: Path | None) -> dict[str, Prices]:
    """Return the default price table, updated from a TOML or JSON file that maps a model to `{input_per_mtok, output_per_mtok}`."""
    table = dict(DEFAULT_PRICES)
    if path is None:
        return table
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text) if str(path).endswith(".toml") else json.loads(text)
    except FileNotFoundError as exc:
        raise ConfigError(f"prices file not found: {path}") from exc
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"invalid prices file {path}: {exc}") from exc
    for model, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != {"input_per_mtok", "output_per_mtok"}:
            raise ConfigError(
                f"invalid prices for {model!r} in {path}: {entry!r}; expected {{input_per_mtok = N, output_per_mtok = N}} in US dollars per million tokens"
            )
        table[model] = Prices(float(entry["input_per_mtok"]), float(entry["output_per_mtok"]))
    return table


def record_cost_usd(record: dict, prices: dict[str, Prices]) -> float | None:
    """API cost of one answer: 0 for local and fake generators, None for a model without a price."""
    if record.get("backend") != "anthropic":
        return 0.0
    try:
        model_prices = prices_for(record["model"], prices)
    except ConfigError:
        return None
    return cost_usd(Usage(record["input_tokens"], record["output_tokens"]), model_prices)


# Aggregation


def aggregate(records: list[dict], specs: list[SystemSpec], k: int, prices: dict[str, Prices], training: dict[str, dict | None]) -> dict[str, dict]:
    """Per-system metrics over the main-phase records, in the order of `specs`."""
    summary = {}
    for spec in specs:
        own = [r for r in records if r["system"] == spec.name and r["phase"] == "main"]
        summary[spec.name] = aggregate_system(own, spec, k, prices, training.get(spec.name))
    return summary


def aggregate_system(records: list[dict], spec: SystemSpec, k: int, prices: dict[str, Prices], training: dict | None) -> dict:
    done = [r for r in records if "error" not in r]
    answerable = [r for r in done if r["answerable"]]
    answered = [r for r in done if not r["abstained"]]
    costs = [record_cost_usd(r, prices) for r in done]
    metrics = {
        "kind": spec.kind, "backend": spec.backend, "model": done[0]["model"] if done else spec.model,
        "questions": len(done), "errors": len(records) - len(done),
        "answerable": len(answerable), "unanswerable": len(done) - len(answerable),
        "em": mean(r["em"] for r in answerable), "f1": mean(r["f1"] for r in answerable),
        "raw_f1": mean(r["raw_f1"] for r in answerable),
        "answer_in_sources": mean(r["answer_in_sources"] for r in answerable),
        **retrieval_metrics(done, k, spec.retrieves),
        "citation_precision": mean(r["citation_precision"] for r in answered),
        "citation_recall": mean(r["citation_recall"] for r in done),
        "groundedness": mean(r["groundedness"] for r in answered),
        **abstention_rates([r["abstained"] for r in done], [r["answerable"] for r in done]),
        "latency_p50_ms": percentile([r["latency_ms"] for r in done], 50),
        "latency_p95_ms": percentile([r["latency_ms"] for r in done], 95),
        "input_tokens_mean": mean(r["input_tokens"] for r in done),
        "output_tokens_mean": mean(r["output_tokens"] for r in done),
        "cpu_seconds_per_query": mean(r["cpu_seconds"] for r in done),
        "usd_per_1000_queries": None if None in costs else usd_per_1000_queries(costs),
        "training": training,
        "training_cpu_minutes": (training or {}).get("cpu_minutes"),
        "by_question_kind": by_question_kind(answerable),
    }
    return metrics


def retrieval_metrics(records: list[dict], k: int, retrieves: bool) -> dict[str, float | None]:
    """Mean recall@k, nDCG@10 and MRR (ranx, over document ids) for questions with gold documents."""
    names = [f"recall@{k}", f"ndcg@{RETRIEVAL_DEPTH}", "mrr"]
    if not retrieves:
        return dict.fromkeys(names)
    qrels = {r["question_id"]: set(r["gold_doc_ids"]) for r in records if r["gold_doc_ids"]}
    runs = {r["question_id"]: r["retrieved_doc_ids"] or [] for r in records}
    per_query = ranx_retrieval_scores(qrels, runs, k)
    return {name: mean(scores[name] for scores in per_query.values()) for name in names}


def by_question_kind(answerable: list[dict]) -> dict[str, dict]:
    kinds: dict[str, list[dict]] = {}
    for record in answerable:
        kinds.setdefault(record["question_kind"], []).append(record)
    return {kind: {"questions": len(rs), "em": mean(r["em"] for r in rs), "f1": mean(r["f1"] for r in rs)} for kind, rs in kinds.items()}


# Environment


def hardware() -> dict:
    """CPU model, core count, memory and software versions of this machine."""
    info = {
        "cpu": _cpu_model(), "cpu_cores": os.cpu_count(), "memory_gb": _memory_gb(),
        "platform": platform.platform(), "python": sys.version.split()[0],
    }
    for package in ("scout-rag", "torch", "transformers", "sentence-transformers", "ranx"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


def code_version() -> dict:
    """The git commit of the Scout checkout writing the report, and whether `scout/` has uncommitted changes.

    Both are None outside a git checkout, for example when Scout is installed from a wheel. A
    resumed run may have answered its questions at earlier commits.
    """
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "scout"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "uncommitted_changes": None}
    return {"commit": commit.stdout.strip(), "uncommitted_changes": bool(status.stdout.strip())}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


# Output


def write_report(results: dict, config: EvalConfig, index_config: IndexConfig) -> None:
    """Write results.json, the charts and report.md into `config.out`."""
    from scout.eval.charts import write_charts
    from scout.eval.markdown import render_report

    results["config"] = {
        "command": config.command, "suite": config.suite, "systems": config.systems, "limit": config.limit,
        "freshness": config.freshness, "prices_file": str(config.prices) if config.prices else None,
        "index": index_config.to_dict(), "notes": config.notes,
    }
    results["hardware"] = hardware()
    results["code"] = code_version()
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = Path(config.out)
    (out / RESULTS_JSON).write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    charts = write_charts(results["systems"], results["k"], out)
    (out / REPORT_FILE).write_text(render_report(results, charts), encoding="utf-8")
