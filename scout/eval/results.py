"""Per-question results: scoring one outcome, and the append-only JSONL file that makes runs resumable."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from scout.eval.metrics import citation_precision, citation_recall, contains_answer, exact_match, strip_citations, token_f1
from scout.eval.suites import EvalQuestion
from scout.eval.systems import Outcome, SystemSpec

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"


def score(suite: str, spec: SystemSpec, question: EvalQuestion, outcome: Outcome, k: int, phase: str = "main") -> dict:
    """One result record: the question, what the system produced, and the per-question metrics.

    EM and F1 score an abstention as the empty answer, and `raw_f1` scores the generator's text
    before Scout's support check replaced it. Citation metrics and `answer_in_sources` are None
    for a system that reads no sources; citation metrics also for a question without gold documents.
    """
    prediction = "" if outcome.abstained else strip_citations(outcome.text)
    gold = set(question.gold_doc_ids)
    cited = set(outcome.cited_doc_ids)
    reads_sources = spec.reads_sources
    return {
        "suite": suite, "system": spec.name, "kind": spec.kind, "phase": phase,
        "question_id": question.id, "question": question.question, "question_kind": question.kind,
        "gold_answers": list(question.answers), "gold_doc_ids": list(question.gold_doc_ids), "answerable": question.answerable,
        "answer": outcome.text, "raw_answer": outcome.raw_text, "abstained": outcome.abstained,
        "em": exact_match(prediction, question.answers), "f1": token_f1(prediction, question.answers),
        "raw_f1": token_f1(strip_citations(outcome.raw_text), question.answers),
        "answer_in_sources": answer_in_sources(outcome.source_passages, question.answers) if reads_sources else None,
        "cited_doc_ids": outcome.cited_doc_ids, "source_doc_ids": outcome.source_doc_ids,
        "retrieved_doc_ids": outcome.retrieved_doc_ids,
        "citation_precision": citation_precision(cited, gold) if reads_sources and gold else None,
        "citation_recall": citation_recall(cited, gold) if reads_sources and question.answerable else None,
        "groundedness": outcome.support if reads_sources else None,
        "invalid_citations": outcome.invalid_citations,
        "input_tokens": outcome.usage.input_tokens, "output_tokens": outcome.usage.output_tokens,
        "latency_ms": outcome.latency_ms, "cpu_seconds": outcome.cpu_seconds,
        "backend": outcome.backend, "model": outcome.model, "k": k,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def answer_in_sources(passages: list[str], answers: tuple[str, ...]) -> bool | None:
    """Return whether a gold answer occurs, as whole normalised tokens, in the passages the generator read.

    None for an unanswerable question. An answer split across two chunks is not found.
    """
    if not answers:
        return None
    text = " ".join(passages)
    return any(contains_answer(text, answer) for answer in answers)


def error_record(suite: str, spec: SystemSpec, question: EvalQuestion, error: Exception, phase: str = "main") -> dict:
    """A record for a question the generator failed on; a re-run retries it."""
    return {
        "suite": suite, "system": spec.name, "kind": spec.kind, "phase": phase, "question_id": question.id,
        "question": question.question, "error": f"{type(error).__name__}: {error}",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def record_key(record: dict) -> tuple[str, str, str]:
    return (record["suite"], record["system"], record["question_id"])


class ResultStore:
    """Records appended to a JSONL file as each question finishes, and read back on a re-run.

    The last record wins for a key, so a retried question replaces its error record. A line left
    incomplete by an interrupted write is skipped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[tuple[str, str, str], dict] = {}
        if path.exists():
            self._load()
            self._end_with_newline()

    def _load(self) -> None:
        for line_number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("skipped incomplete line %d of %s; its question runs again", line_number, self.path)
                continue
            self.records[record_key(record)] = record

    def _end_with_newline(self) -> None:
        with self.path.open("rb+") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")

    def is_done(self, suite: str, system: str, question_id: str, k: int) -> bool:
        """Return whether the question has a result without error that was produced with `k` passages."""
        record = self.records.get((suite, system, question_id))
        return record is not None and "error" not in record and record.get("k") == k

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records[record_key(record)] = record

    def select(self, suite: str, systems: list[str], question_ids: list[str]) -> Iterator[dict]:
        """Yield the records of these systems and questions, system by system in the order given."""
        for system in systems:
            for question_id in question_ids:
                record = self.records.get((suite, system, question_id))
                if record is not None:
                    yield record
