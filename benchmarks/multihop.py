"""Multi-hop retrieval on HotpotQA: BM25, dense, hybrid and hybrid + graph, with ranx.

Two question sets, each indexed by Scout as JSONL documents (one paragraph per document):
- `hotpotqa_train100`: 100 training questions over their 994-paragraph corpus; gold documents are
  the supporting paragraphs, named by title.
- `hotpotqa_dev150`: 150 dev questions whose 10 context paragraphs each form the corpus. The set
  has answers but no supporting-paragraph labels, so a paragraph counts as relevant when it
  contains the answer string (case-insensitive). Yes/no answers are left out.

A chunk ranking becomes a document ranking by keeping each document's best-ranked chunk. Each
signal runs once per question with `Scout.search(signals=[name])`. Fused systems combine those
rankings with the RRF function that `HybridRetriever` uses, so a weight sweep costs no searches.
The chosen weights then run through `Scout.search` itself, and the report counts the questions
whose top 10 differs between the two paths.

The graph weight is chosen on train100 among the weights that do not lower nDCG@10 on the sample
corpus (single-hop questions) below hybrid's. HotpotQA has no search log, so the click prior is
measured on the sample corpus: its log contains real dataset questions (sessions and timestamps
are synthetic) and its held-out questions name gold documents.

Run from the repository root:

    python benchmarks/multihop.py --train DIR --dev DIR [--work DIR] [--no-write]

`--work DIR` keeps the indexes (and their embedding caches) for the next run. The script prints
a Markdown report and replaces the text between the multihop markers in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ranx import Qrels, Run, evaluate

from scout import Scout
from scout.graph import KnowledgeGraph
from scout.graph.snapshot import read_snapshot
from scout.config import FUSION_METHODS, FusionConfig
from scout.retrieve.fusion import Ranking, reciprocal_rank_fusion, weighted_fusion

ROOT = Path(__file__).resolve().parents[1]
MARKER_START = "<!-- multihop:start -->"
MARKER_END = "<!-- multihop:end -->"
METRICS = ["recall@5", "recall@10", "ndcg@10", "mrr@10"]
SIGNALS = ("bm25", "dense", "graph", "click")
GRAPH_WEIGHTS = (0.5, 1.0, 1.5, 2.0, 3.0)
CLICK_WEIGHTS = (0.25, 0.5, 1.0, 1.5, 2.0)
CANDIDATES = 50
DEPTH = 10

# "Title. Text" paragraphs of the dev set split at the first ". " that does not end one of these.
ABBREVIATIONS = {"st", "mr", "mrs", "ms", "dr", "jr", "sr", "no", "u.s", "l.a", "co", "inc", "ltd", "vs", "mt", "ft", "w", "e", "n", "s", "c"}


@dataclass
class Dataset:
    """Documents to index, questions, and relevance judgements at document level."""

    name: str
    documents: list[dict]
    questions: dict[str, str]
    qrels: dict[str, dict[str, int]]
    notes: list[str] = field(default_factory=list)


# Loading the question sets


def load_train(folder: Path) -> Dataset:
    corpus = json.loads((folder / "hotpotqa_train_corpus.json").read_text(encoding="utf-8"))
    records = json.loads((folder / "hotpotqa_train.json").read_text(encoding="utf-8"))
    ids = {title: f"p{index:04d}" for index, title in enumerate(corpus)}
    documents = [{"id": ids[title], "title": title, "text": "".join(sentences)} for title, sentences in corpus.items()]
    questions, qrels = {}, {}
    for record in records:
        questions[record["_id"]] = record["question"]
        qrels[record["_id"]] = {ids[title]: 1 for title, _ in record["supporting_facts"]}
    return Dataset("hotpotqa_train100", documents, questions, qrels)


def load_dev(folder: Path) -> Dataset:
    records = json.loads((folder / "hotpotqa_dev150.json").read_text(encoding="utf-8"))
    paragraphs: dict[str, str] = {}
    for record in records:
        for paragraph in record["document"].split("\n\n"):
            paragraphs.setdefault(paragraph.strip(), f"p{len(paragraphs):04d}")
    documents = []
    for paragraph, doc_id in paragraphs.items():
        title, text = split_title(paragraph)
        documents.append({"id": doc_id, "title": title, "text": text})

    questions, qrels, yes_no = {}, {}, 0
    for record in records:
        answer = record["answers"][0].strip()
        if answer.lower() in ("yes", "no"):
            yes_no += 1
            continue
        relevant = {doc_id: 1 for paragraph, doc_id in paragraphs.items() if answer.lower() in paragraph.lower()}
        if relevant:
            questions[str(record["id"])] = record["question"]
            qrels[str(record["id"])] = relevant
    notes = [f"{yes_no} yes/no questions left out; {len(questions)} questions scored"]
    return Dataset("hotpotqa_dev150", documents, questions, qrels, notes)


def split_title(paragraph: str) -> tuple[str, str]:
    """Split "Title. Text" at the first ". " whose left part does not end in an abbreviation."""
    for match in re.finditer(r"\. ", paragraph):
        title = paragraph[: match.start()]
        if title.split(" ")[-1].lower() not in ABBREVIATIONS:
            return title, paragraph[match.end() :]
    return paragraph[:60], paragraph


def load_sample(corpus: Path) -> Dataset:
    questions, qrels = {}, {}
    for line in (corpus / "eval" / "heldout.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["gold_doc_ids"]:
            questions[record["id"]] = record["question"]
            qrels[record["id"]] = {doc_id: 1 for doc_id in record["gold_doc_ids"]}
    return Dataset("sample_corpus", [], questions, qrels)


# Indexing and searching


def open_index(dataset: Dataset, work: Path, source: Path | None = None) -> tuple[Scout, float | None]:
    """Ingest the dataset (or `source`) into `work/<name>`; return the Scout and the ingest seconds.

    The seconds are None when the index already held every chunk, because then nothing was embedded.
    """
    folder = work / dataset.name
    if source is None:
        source = folder / "docs"
        source.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(document, ensure_ascii=False) + "\n" for document in dataset.documents)
        (source / "corpus.jsonl").write_text(lines, encoding="utf-8")
    scout = Scout.open(folder / "index")
    started = time.perf_counter()
    report = scout.ingest([source], progress=False)
    print(f"{dataset.name}: {report.summary()}", file=sys.stderr)
    return scout, (time.perf_counter() - started) if report.chunks_embedded else None


def signal_rankings(scout: Scout, dataset: Dataset, signals: tuple[str, ...]) -> dict[str, dict[str, Ranking]]:
    """signal -> question id -> chunk ranking, as `Scout.search` returns for that signal alone."""
    rankings: dict[str, dict[str, Ranking]] = {name: {} for name in signals}
    for qid, question in dataset.questions.items():
        for name in signals:
            hits = scout.search(question, k=CANDIDATES, signals=[name])
            rankings[name][qid] = [(hit.chunk_id, hit.score) for hit in hits]
    return rankings


def chunk_documents(scout: Scout) -> dict[str, str]:
    return {chunk_id: chunk.doc_id for chunk_id, chunk in scout.store.catalog.chunks_by_id(scout.store.bm25.chunk_ids).items()}


def fuse(rankings: dict[str, dict[str, Ranking]], weights: dict[str, float], qid: str, config: FusionConfig) -> Ranking:
    """Fuse one question's signal rankings as `HybridRetriever` does with `config.method`."""
    selected = {name: rankings[name][qid] for name in weights}
    if len(selected) == 1:
        return next(iter(selected.values()))
    if config.method == "rrf":
        return reciprocal_rank_fusion(selected, k=config.rrf_k, weights=weights)
    return weighted_fusion(selected, weights)


def document_ranking(ranking: Ranking, doc_of: dict[str, str]) -> list[str]:
    """Document ids in order of their best chunk, at most DEPTH."""
    documents: list[str] = []
    for chunk_id, _score in ranking:
        doc_id = doc_of[chunk_id]
        if doc_id not in documents:
            documents.append(doc_id)
            if len(documents) == DEPTH:
                break
    return documents


# Scoring


def score(dataset: Dataset, runs: dict[str, list[str]]) -> dict[str, float]:
    """ranx metrics of document runs, plus `all@10`: the share of questions with every relevant document in the top 10."""
    qrels = Qrels(dataset.qrels)
    run = Run({qid: {doc_id: 1.0 / rank for rank, doc_id in enumerate(docs, start=1)} for qid, docs in runs.items() if docs})
    for qid in dataset.qrels:
        if qid not in run.run:
            run.add(qid, ["none"], [0.0])  # ranx needs every question in the run; an empty one scores 0
    results = {metric: float(value) for metric, value in evaluate(qrels, run, METRICS).items()}
    per_question = evaluate(qrels, run, "recall@10", return_mean=False)
    results["all@10"] = float((per_question == 1.0).mean())
    return results


def system_runs(rankings, weights, dataset, doc_of, config: FusionConfig) -> dict[str, list[str]]:
    return {qid: document_ranking(fuse(rankings, weights, qid, config), doc_of) for qid in dataset.questions}


@dataclass
class Prepared:
    """An ingested dataset with every signal's ranking for every question."""

    dataset: Dataset
    scout: Scout
    rankings: dict[str, dict[str, Ranking]]
    doc_of: dict[str, str]
    graph: dict[str, float]
    ingest_seconds: float | None

    def evaluate(self, weights: dict[str, float]) -> dict[str, float]:
        return score(self.dataset, system_runs(self.rankings, weights, self.dataset, self.doc_of, self.scout.config.fusion))


def prepare(dataset: Dataset, work: Path, signals: tuple[str, ...], method: str, source: Path | None = None) -> Prepared:
    scout, ingest_seconds = open_index(dataset, work, source)
    scout.config.fusion.method = method
    graph = measure_graph(scout)
    rankings = signal_rankings(scout, dataset, signals)
    return Prepared(dataset, scout, rankings, chunk_documents(scout), graph, ingest_seconds)


HYBRID = {"bm25": 1.0, "dense": 1.0}
BASELINES = {"BM25": {"bm25": 1.0}, "dense": {"dense": 1.0}, "graph alone": {"graph": 1.0}, "hybrid (BM25 + dense)": HYBRID}


def graph_sweep(prepared: Prepared) -> dict[float, dict[str, float]]:
    return {weight: prepared.evaluate({**HYBRID, "graph": weight}) for weight in GRAPH_WEIGHTS}


def choose_graph_weight(train: dict[float, dict[str, float]], sample: dict[float, dict[str, float]], sample_hybrid: dict[str, float]) -> float:
    """Pick the weight with the best train100 all@10 (then recall@10) among those that keep the
    sample corpus's nDCG@10 at least at hybrid's, so multi-hop gains do not cost single-hop quality."""
    safe = [w for w in GRAPH_WEIGHTS if sample[w]["ndcg@10"] >= sample_hybrid["ndcg@10"]] or list(GRAPH_WEIGHTS)
    return max(safe, key=lambda w: (train[w]["all@10"], train[w]["recall@10"], -w))


def measure_graph(scout: Scout) -> dict[str, float]:
    """Time a full rebuild from the catalog and a load from disk; count nodes and edges."""
    scout.store.graph  # rebuilds and saves when graph/ is stale
    started = time.perf_counter()
    snapshot = read_snapshot(scout.store.catalog.path)
    built = KnowledgeGraph.from_snapshot(snapshot)
    build_seconds = time.perf_counter() - started
    scout.store._graph = None  # force the next access to load graph/ from disk
    started = time.perf_counter()
    loaded = scout.store.graph
    load_seconds = time.perf_counter() - started
    stats = built.stats()
    assert loaded.graph.number_of_edges() == stats.edges
    return {"build_s": build_seconds, "load_s": load_seconds, "nodes": stats.nodes, "edges": stats.edges, "entities": stats.entities}


def check_online(prepared: Prepared, weights: dict[str, float]) -> int:
    """Run the fused system through Scout.search with these weights; count questions whose ranking differs."""
    scout = prepared.scout
    saved = dict(scout.config.fusion.weights)
    scout.config.fusion.weights.update(weights)
    mismatches = 0
    for qid, question in prepared.dataset.questions.items():
        hits = scout.search(question, k=CANDIDATES, signals=list(weights))
        online = document_ranking([(hit.chunk_id, hit.score) for hit in hits], prepared.doc_of)
        offline = document_ranking(fuse(prepared.rankings, weights, qid, scout.config.fusion), prepared.doc_of)
        # Scout.search hydrates at most CANDIDATES chunks, which may span fewer than DEPTH documents.
        mismatches += online != offline[: len(online)]
    scout.config.fusion.weights.clear()
    scout.config.fusion.weights.update(saved)
    return mismatches


@dataclass
class Results:
    train: Prepared
    dev: Prepared
    sample: Prepared
    graph_weight: float
    click_weight: float
    systems: dict[str, dict[str, dict[str, float]]]
    sweeps: dict[str, dict[float, dict[str, float]]]
    mismatches: dict[str, int]


def run_all(train: Prepared, dev: Prepared, sample: Prepared) -> Results:
    sweeps = {"train": graph_sweep(train), "dev": graph_sweep(dev), "sample": graph_sweep(sample)}
    graph_weight = choose_graph_weight(sweeps["train"], sweeps["sample"], sample.evaluate(HYBRID))
    with_graph = {**HYBRID, "graph": graph_weight}
    sweeps["click"] = {weight: sample.evaluate({**with_graph, "click": weight}) for weight in CLICK_WEIGHTS}
    click_weight = max(CLICK_WEIGHTS, key=lambda w: (sweeps["click"][w]["ndcg@10"], sweeps["click"][w]["recall@10"], -w))
    with_click = {**with_graph, "click": click_weight}

    systems: dict[str, dict[str, dict[str, float]]] = {}
    for name, prepared in (("train", train), ("dev", dev)):
        systems[name] = {label: prepared.evaluate(weights) for label, weights in BASELINES.items()}
        systems[name][f"hybrid + graph (weight {graph_weight:g})"] = prepared.evaluate(with_graph)
    systems["sample"] = {label: sample.evaluate(weights) for label, weights in BASELINES.items()}
    systems["sample"]["click alone"] = sample.evaluate({"click": 1.0})
    systems["sample"][f"hybrid + click (weight {click_weight:g})"] = sample.evaluate({**HYBRID, "click": click_weight})
    systems["sample"][f"hybrid + graph (weight {graph_weight:g})"] = sample.evaluate(with_graph)
    systems["sample"][f"hybrid + graph + click (weight {click_weight:g})"] = sample.evaluate(with_click)

    mismatches = {"train": check_online(train, with_graph), "dev": check_online(dev, with_graph), "sample": check_online(sample, with_click)}
    return Results(train, dev, sample, graph_weight, click_weight, systems, sweeps, mismatches)


# Report


def table(systems: dict[str, dict[str, float]], columns: list[str]) -> list[str]:
    lines = ["| system | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, values in systems.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[c]:.3f}" for c in columns) + " |")
    return lines


def sweep_row(label: str, sweep: dict[float, dict[str, float]], first: str, second: str) -> str:
    return f"| {label} | " + " | ".join(f"{sweep[w][first]:.3f} / {sweep[w][second]:.3f}" for w in sorted(sweep)) + " |"


def report(results: Results, command: str) -> str:
    train, dev, sample = results.train, results.dev, results.sample
    graph_label = f"hybrid + graph (weight {results.graph_weight:g})"
    hybrid = results.systems["train"]["hybrid (BM25 + dense)"]["all@10"]
    graph = results.systems["train"][graph_label]["all@10"]
    ratio = f"{graph / hybrid:.3f}" if hybrid else "n/a"
    hotpot_columns = ["recall@5", "recall@10", "all@10", "ndcg@10", "mrr@10"]
    weights = " | ".join(f"{w:g}" for w in GRAPH_WEIGHTS)
    lines = [
        "## Multi-hop retrieval (HotpotQA)",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {hardware()}, one run, with:",
        "",
        f"    {command}",
        "",
        f"Documents are ranked by their best chunk. Embeddings: all-MiniLM-L6-v2. Fusion: {fusion_name(train)}.",
        "`all@10` is the share of questions with every relevant paragraph in the top 10; for train100",
        "that is both supporting paragraphs. MRR is cut at rank 10. The graph signal seeds its",
        "PageRank walk with the question's entities and its top 5 BM25 chunks, so \"graph alone\"",
        "is BM25 expanded through the graph, not a graph without text matching.",
        "",
        f"### hotpotqa_train100: {len(train.dataset.questions)} questions, {len(train.dataset.documents)} paragraphs, gold = supporting paragraphs",
        "",
        *table(results.systems["train"], hotpot_columns),
        "",
        f"Both supporting paragraphs within 10, hybrid + graph / hybrid: {graph:.3f} / {hybrid:.3f} = **{ratio}**.",
        "",
        f"### hotpotqa_dev150: {len(dev.dataset.questions)} questions, {len(dev.dataset.documents)} paragraphs, relevant = contains the answer",
        "",
        *[note + "." for note in dev.dataset.notes],
        "",
        *table(results.systems["dev"], hotpot_columns),
        "",
        "### Choosing the graph weight",
        "",
        "The graph weight is the one with the best train100 all@10 (then recall@10) among the weights",
        "that keep the sample corpus's nDCG@10 at least at hybrid's, so multi-hop gains do not cost",
        "single-hop quality. A tie goes to the smaller weight. dev150 was not used to choose it.",
        "",
        f"| hybrid + graph, weight | {weights} |",
        "|---|" + "---:|" * len(GRAPH_WEIGHTS),
        sweep_row("train100 all@10 / recall@10", results.sweeps["train"], "all@10", "recall@10"),
        sweep_row("dev150 all@10 / recall@10", results.sweeps["dev"], "all@10", "recall@10"),
        sweep_row("sample corpus nDCG@10 / recall@10", results.sweeps["sample"], "ndcg@10", "recall@10"),
        "",
        "### Graph size and timings",
        "",
        "| corpus | nodes | edges | entities | full build (s) | load (s) | ingest with embedding (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {p.dataset.name} | {p.graph['nodes']} | {p.graph['edges']} | {p.graph['entities']} | {p.graph['build_s']:.2f} | {p.graph['load_s']:.3f} | {ingest_cell(p.ingest_seconds)} |"
            for p in (train, dev, sample)
        ),
        "",
        "An index reused from `--work` embeds nothing, so its ingest time is not shown.",
        "",
        "### Click prior (sample corpus)",
        "",
        "HotpotQA has no search log, and no synthetic log was made for it. The click prior is measured",
        f"on the sample corpus: {len(sample.dataset.questions)} held-out questions with gold documents, and a search log",
        "of real dataset questions with synthetic sessions. No held-out question is in the log, but",
        "other rewordings of the same FAQ question and other questions about the same article are.",
        "",
        *table(results.systems["sample"], ["recall@5", "recall@10", "ndcg@10", "mrr@10"]),
        "",
        f"The click weight is the one with the best nDCG@10 on top of hybrid + graph (weight {results.graph_weight:g}):",
        "",
        "| click weight | " + " | ".join(f"{w:g}" for w in CLICK_WEIGHTS) + " |",
        "|---|" + "---:|" * len(CLICK_WEIGHTS),
        sweep_row("nDCG@10 / recall@10", results.sweeps["click"], "ndcg@10", "recall@10"),
        "",
        "Offline fusion and `Scout.search` with the chosen weights gave different top-10 lists for "
        + ", ".join(f"{count} questions of {name}" for name, count in results.mismatches.items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def results_dict(results: Results) -> dict:
    prepared = {"train": results.train, "dev": results.dev, "sample": results.sample}
    return {
        "graph_weight": results.graph_weight,
        "click_weight": results.click_weight,
        "systems": results.systems,
        "sweeps": {name: {str(w): values for w, values in sweep.items()} for name, sweep in results.sweeps.items()},
        "graph": {name: p.graph for name, p in prepared.items()},
        "ingest_seconds": {name: p.ingest_seconds for name, p in prepared.items()},
        "mismatches": results.mismatches,
    }


def fusion_name(prepared: Prepared) -> str:
    config = prepared.scout.config.fusion
    if config.method == "rrf":
        return f"RRF, k = {config.rrf_k}"
    return "min-max normalised weighted sum"


def ingest_cell(seconds: float | None) -> str:
    return "reused" if seconds is None else f"{seconds:.0f}"


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        cpu = model
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, no GPU"


def write_section(path: Path, text: str) -> None:
    """Replace the text between the multihop markers in `path`, or append a marked section."""
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    section = f"{MARKER_START}\n{text}{MARKER_END}"
    if MARKER_START in current and MARKER_END in current:
        before, rest = current.split(MARKER_START, 1)
        after = rest.split(MARKER_END, 1)[1]
        current = before + section + after
    else:
        current = current.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(current, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True, help="folder with hotpotqa_train.json and hotpotqa_train_corpus.json")
    parser.add_argument("--dev", type=Path, required=True, help="folder with hotpotqa_dev150.json")
    parser.add_argument("--sample", type=Path, default=ROOT / "sample_corpus", help="the sample corpus, for the click prior (default sample_corpus)")
    parser.add_argument("--work", type=Path, help="folder for the indexes, kept for the next run (default: a temporary folder)")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md", help="Markdown file to update (default docs/benchmarks.md)")
    parser.add_argument("--no-write", action="store_true", help="print the report without updating --docs")
    parser.add_argument("--json", type=Path, help="also write every number to this JSON file")
    parser.add_argument("--fusion", choices=FUSION_METHODS, default=FusionConfig().method, help=f"fusion method (default {FusionConfig().method}, Scout's default)")
    args = parser.parse_args(argv)
    command = "python benchmarks/multihop.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))

    with tempfile.TemporaryDirectory(prefix="scout-multihop-") as temporary:
        work = args.work or Path(temporary)
        train = prepare(load_train(args.train), work, ("bm25", "dense", "graph"), args.fusion)
        dev = prepare(load_dev(args.dev), work, ("bm25", "dense", "graph"), args.fusion)
        sample = prepare(load_sample(args.sample), work, SIGNALS, args.fusion, source=args.sample / "corpus")
        results = run_all(train, dev, sample)
        for prepared in (train, dev, sample):
            prepared.scout.close()

    text = report(results, command)
    if args.json:
        args.json.write_text(json.dumps(results_dict(results), indent=2), encoding="utf-8")
    print(text)
    if not args.no_write:
        write_section(args.docs, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
