"""Run an evaluation: index the suite, answer every question with every system, write the report.

>>> import tempfile, pathlib
>>> from scout.config import IndexConfig
>>> from scout.eval.suites import EvalQuestion, Suite
>>> from scout.testing.fakes import FakeEmbedder
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "docs").mkdir(), (folder / "docs" / "paris.md").write_text("# Paris\\n\\nParis is the capital of France.")
>>> suite = Suite("tiny", [EvalQuestion("q1", "What is the capital of France?", ("Paris",), ("paris",))], folder / "docs")
>>> config = EvalConfig(suite="tiny", systems="rag:fake", index=folder / "index", out=folder / "report")
>>> results = run_eval(config, suite=suite, index_config=IndexConfig.for_embedder("fake", 64), embedder=FakeEmbedder(64), progress=False)
>>> results["systems"]["rag:fake"]["recall@4"]
1.0
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from scout.api import Scout
from scout.config import IndexConfig
from scout.errors import ConfigError, GeneratorError
from scout.eval.freshness import FreshnessEdit, numeric_freshness_edit, write_edited_document
from scout.eval.metrics import contains_answer, mean, token_f1
from scout.eval.report import aggregate, load_prices, write_report
from scout.eval.results import RESULTS_FILE, ResultStore, error_record, score
from scout.eval.suites import EvalQuestion, Suite, load_suite
from scout.eval.systems import EvalSystem, GeneratorPool, SystemSpec, build_system, parse_systems, training_cost
from scout.generate.base import Generator

logger = logging.getLogger(__name__)

FRESHNESS_FILE = "freshness.json"
BEFORE, AFTER = "freshness-before", "freshness-after"


@dataclass
class EvalConfig:
    """One `scout eval` run. `k` is the number of passages a generator reads (None: the index's setting)."""

    suite: str
    systems: str
    index: Path
    out: Path
    limit: int | None = None
    k: int | None = None
    freshness: bool = False
    prices: Path | None = None
    datasets: Path | None = None
    corpus: Path | None = None
    command: str = ""
    notes: list[str] = field(default_factory=list)


def run_eval(
    config: EvalConfig,
    *,
    suite: Suite | None = None,
    index_config: IndexConfig | None = None,
    embedder=None,
    generators: dict[str, Generator] | None = None,
    progress: bool = True,
) -> dict:
    """Run the evaluation and write results.jsonl, results.json, report.md and charts to `config.out`.

    `suite` replaces the named suite (tests build one), `index_config` and `embedder` apply to a
    new index, and `generators` maps a system name to a generator object that replaces its own.
    Questions already in results.jsonl are not asked again. Returns the results.json content.
    """
    specs = parse_systems(config.systems)
    prices = load_prices(config.prices)
    config.out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(config.out / RESULTS_FILE)

    with Scout.open(config.index, create=True, config=index_config, embedder=embedder) as scout:
        suite = suite or load_suite(config.suite, Path(config.index) / "suite-documents", config.datasets, config.corpus)
        index_info = prepare_index(scout, suite, progress)
        questions = suite.select(config.limit)
        k = config.k or scout.config.generator.sources
        if k < 1:
            raise ConfigError(f"invalid k={k}; give at least 1 passage per answer")
        pool = GeneratorPool(scout, generators or {})
        systems = [build_system(spec, scout, pool, k) for spec in specs]

        answer_all(suite.name, systems, questions, store, k, progress)
        freshness = run_freshness(scout, suite, systems, store, k, config.out, progress) if config.freshness else None

        records = list(store.select(suite.name, [s.name for s in specs], [q.id for q in questions]))
        summary = aggregate(records, specs, k, prices, {spec.name: training_cost(spec.checkpoint) for spec in specs})
        results = {
            "suite": suite_info(suite, questions), "index": index_info, "k": k, "systems": summary,
            "freshness": freshness, "prices": {model: vars(p) for model, p in prices.items()},
            "records": records,
        }
        write_report(results, config, scout.config)
    return results


def prepare_index(scout: Scout, suite: Suite, progress: bool) -> dict:
    """Ingest the suite's documents incrementally, so an index that contains them already is reused as is.

    This also undoes a freshness edit left behind by an interrupted run.
    """
    report = scout.ingest([suite.documents], progress=progress)
    for problem in report.problems:
        logger.warning("ingest skipped %s", problem)
    stored = set(scout.store.catalog.documents())
    gold = {doc for q in suite.questions for doc in q.gold_doc_ids}
    missing = sorted(gold - stored)
    if missing:
        logger.warning("%d gold document(s) of suite %s are not in the index, e.g. %s; check the suite's document ids", len(missing), suite.name, missing[0])
    return {
        "path": str(scout.store.path), "documents": len(stored), "chunks": scout.stats()["chunks"],
        "ingest": report.summary(), "reused": not (report.added or report.updated or report.deleted),
        "missing_gold_documents": missing,
    }


def suite_info(suite: Suite, questions: list[EvalQuestion]) -> dict:
    kinds: dict[str, int] = {}
    for question in questions:
        kinds[question.kind] = kinds.get(question.kind, 0) + 1
    return {
        "name": suite.name, "description": suite.description, "documents": str(suite.documents),
        "gold_documents": suite.gold_documents, "questions_total": len(suite.questions),
        "questions_run": len(questions), "question_kinds": kinds,
        "answerable": sum(q.answerable for q in questions), "unanswerable": sum(not q.answerable for q in questions),
        # A floor for F1: generated sentences that restate the question score about this much.
        "question_echo_f1": mean(token_f1(q.question, q.answers) for q in questions if q.answerable),
    }


def answer_all(suite: str, systems: list[EvalSystem], questions: list[EvalQuestion], store: ResultStore, k: int, progress: bool, phase: str = "main") -> None:
    """Ask every pending (question, system) pair, question by question, appending each result as it finishes."""
    total = len(systems) * len(questions)
    pending = [(q, s) for q in questions for s in systems if not store.is_done(suite, s.name, q.id, k)]
    if total and not pending:
        logger.info("all %d answers of suite %s are already in %s", total, suite, store.path)
    with tqdm(total=total, initial=total - len(pending), desc=f"eval {suite}", unit="answer", disable=not progress or not pending) as bar:
        for question, system in pending:
            bar.set_postfix_str(system.name, refresh=False)
            store.append(answer_one(suite, system, question, k, phase))
            bar.update(1)


def answer_one(suite: str, system: EvalSystem, question: EvalQuestion, k: int, phase: str) -> dict:
    try:
        outcome = system.answer(question)
    except GeneratorError as exc:
        logger.warning("%s failed on question %s: %s; a re-run retries it", system.name, question.id, exc)
        return error_record(suite, system.spec, question, exc, phase)
    return score(suite, system.spec, question, outcome, k, phase)


def run_freshness(scout: Scout, suite: Suite, systems: list[EvalSystem], store: ResultStore, k: int, out: Path, progress: bool) -> dict:
    """Ask the freshness question before and after the edit, then restore the suite's documents.

    Returns the edit, the re-ingest time and, per system, whether each answer contains the old
    and the new value and whether the passages it read contain the expected one.
    """
    state_file = out / FRESHNESS_FILE
    state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.is_file() else {}
    edit = suite.freshness or numeric_freshness_edit(suite.questions, scout.store.catalog.document_text)
    if edit is None:
        return {"edit": None, "note": f"suite {suite.name} has no scripted edit and no question with a whole-number answer stated once in its gold document"}

    before = freshness_question(edit, BEFORE, edit.old)
    after = freshness_question(edit, AFTER, edit.new)
    answer_all(suite.name, systems, [before], store, k, progress, phase="freshness")
    if not all(store.is_done(suite.name, s.name, AFTER, k) for s in systems):
        state["reingest_seconds"] = apply_edit(scout, edit, scout.store.path / "freshness-edit", progress)
        try:
            answer_all(suite.name, systems, [after], store, k, progress, phase="freshness")
        finally:
            state["restore_seconds"] = restore(scout, suite, progress)
    state["edit"] = edit.to_dict()
    state_file.write_text(json.dumps(state, indent=2), encoding="utf-8")
    return freshness_summary(state, edit, suite.name, systems, store)


def freshness_question(edit: FreshnessEdit, question_id: str, answer: str) -> EvalQuestion:
    return EvalQuestion(id=question_id, question=edit.question, answers=(answer,), gold_doc_ids=(edit.doc_id,), kind="freshness")


def apply_edit(scout: Scout, edit: FreshnessEdit, folder: Path, progress: bool) -> float:
    """Write the edited document and ingest it; return the seconds the re-ingest took."""
    catalog = scout.store.catalog
    text = catalog.document_text(edit.doc_id)
    if text is None:
        raise ConfigError(f"freshness edit: document {edit.doc_id!r} is not in the index; choose a document of the suite")
    write_edited_document(edit, catalog.documents()[edit.doc_id].title, text, folder)
    started = time.perf_counter()
    scout.ingest([folder], progress=progress)
    return time.perf_counter() - started


def restore(scout: Scout, suite: Suite, progress: bool) -> float:
    started = time.perf_counter()
    scout.ingest([suite.documents], progress=progress)
    return time.perf_counter() - started


def freshness_summary(state: dict, edit: FreshnessEdit, suite: str, systems: list[EvalSystem], store: ResultStore) -> dict:
    rows = {}
    for system in systems:
        row = {}
        for phase in (BEFORE, AFTER):
            record = store.records.get((suite, system.name, phase))
            if record is None or "error" in record:
                row[phase] = None
                continue
            row[phase] = {
                "answer": record["answer"], "raw_answer": record["raw_answer"], "abstained": record["abstained"],
                "contains_old": contains_answer(record["answer"], edit.old),
                "contains_new": contains_answer(record["answer"], edit.new),
                "raw_contains_new": contains_answer(record["raw_answer"], edit.new),
                # Before the edit the expected value is the old one, afterwards the new one.
                "sources_contain_expected": record.get("answer_in_sources"),
            }
        rows[system.name] = row
    return {**state, "systems": rows}
