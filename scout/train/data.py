"""Training data from an index: questions from its search log and chunks, and training examples.

Only public documents are used. A model trained on a restricted document would repeat it to
any reader, because weights have no access control.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from scout.generate.base import Prompt
from scout.generate.citations import is_abstention
from scout.generate.prompt import build_prompt
from scout.index.catalog import StoredChunk
from scout.train.examples import TrainingExample, closed_book_prompt, strip_citations, trim_to_sentence
from scout.train.questions import (
    cloze,
    extract_answer,
    inverse_document_frequencies,
    key_sentences,
    paraphrase_question,
    templated_question,
)
from scout.train.teacher import CachedTeacher
from scout.types import PUBLIC, Hit

logger = logging.getLogger(__name__)

QUESTION_SOURCES = ("template", "teacher")

QUESTION_WRITER_PROMPT = (
    "Write one short question that the passage answers. The question must make sense without the passage. "
    "Reply with the question only."
)

CLOZE_INSTRUCTION = "Complete this statement from the documents:"


@dataclass(frozen=True)
class TrainingQuestion:
    """A question to train on, where it came from, and a corpus sentence answering it, if known.

    `origin` is `log` (the index's search log), `faq` (an FAQ entry's title), `template` (a
    templated question over a key sentence) or `teacher` (written by the teacher model).
    """

    question: str
    origin: str
    doc_id: str | None = None
    chunk_id: str | None = None
    answer: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Corpus:
    """The public chunks, documents and search log of an open index, read once."""

    def __init__(self, scout) -> None:
        catalog = scout.store.catalog
        stored = catalog.chunks_by_id(chunk_id for chunk_id, _ in catalog.all_chunks())
        self.chunks: dict[str, StoredChunk] = {i: c for i, c in sorted(stored.items()) if c.acl == (PUBLIC,)}
        self.restricted_chunks = len(stored) - len(self.chunks)
        self.documents = {c.doc_id for c in self.chunks.values()}
        self.log = catalog.search_log()
        self.idf = inverse_document_frequencies(c.text for c in self.chunks.values())
        self._catalog = catalog

    def document_text(self, doc_id: str) -> str | None:
        if doc_id not in self.documents:
            return None
        return self._catalog.document_text(doc_id)

    def chunk_of(self, doc_id: str, sentence: str) -> StoredChunk | None:
        """Return the first chunk of a document that contains `sentence`, or its first chunk."""
        candidates = [c for c in self.chunks.values() if c.doc_id == doc_id]
        for chunk in candidates:
            if sentence in " ".join(chunk.text.split()):
                return chunk
        return candidates[0] if candidates else None


def as_hit(chunk: StoredChunk) -> Hit:
    return Hit(chunk.id, chunk.doc_id, chunk.title, chunk.text, chunk.start, chunk.end, score=0.0, source=chunk.source)


# Questions


def log_questions(corpus: Corpus, with_answers: bool) -> list[TrainingQuestion]:
    """Return the distinct questions of the search log, in log order.

    With `with_answers`, only questions with a clicked public document are kept, and each gets
    the sentence of that document that best matches it as its answer.
    """
    seen: set[str] = set()
    questions = []
    for entry in corpus.log:
        key = _normalise(entry.query)
        if not key or key in seen:
            continue
        clicked = entry.clicked_doc_id if entry.clicked_doc_id in corpus.documents else None
        answer = None
        if with_answers:
            text = corpus.document_text(clicked) if clicked else None
            answer = extract_answer(entry.query, text, corpus.idf) if text else None
            if answer is None:
                continue
        seen.add(key)
        questions.append(TrainingQuestion(" ".join(entry.query.split()), "log", clicked, None, answer))
    return questions


def chunk_questions(corpus: Corpus, count: int, seed: int, teacher: CachedTeacher | None = None) -> list[TrainingQuestion]:
    """Write one question for each of `count` chunks drawn at random (seeded) from the corpus.

    An FAQ chunk, whose document title is a question, is asked by that title. Any other chunk is
    asked about its key sentence: by a template, or by `teacher` when one is given.
    """
    chunk_ids = list(corpus.chunks)
    random.Random(seed).shuffle(chunk_ids)
    questions = []
    for chunk_id in chunk_ids:
        if len(questions) >= count:
            break
        question = _question_for_chunk(corpus, corpus.chunks[chunk_id], teacher)
        if question is not None:
            questions.append(question)
    return questions


def _question_for_chunk(corpus: Corpus, chunk: StoredChunk, teacher: CachedTeacher | None) -> TrainingQuestion | None:
    if chunk.title.rstrip().endswith("?"):
        answer = extract_answer(chunk.title, chunk.text, corpus.idf)
        if answer is None:
            return None
        return TrainingQuestion(" ".join(chunk.title.split()), "faq", chunk.doc_id, chunk.id, answer)

    sentences = key_sentences(chunk.text, corpus.idf, 1)
    if not sentences:
        return None
    if teacher is None:
        return TrainingQuestion(templated_question(sentences[0], corpus.idf), "template", chunk.doc_id, chunk.id, sentences[0])
    written = _first_question(teacher.complete(Prompt(QUESTION_WRITER_PROMPT, f"Passage: {sentences[0]}"), max_tokens=48))
    if written is None:
        return None
    return TrainingQuestion(written, "teacher", chunk.doc_id, chunk.id, sentences[0])


def _first_question(text: str) -> str | None:
    """Return the first line of a model's output that ends in "?", without a "Question:" label."""
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:Question\s*:|Q\s*:|\d+[.)])\s*", "", line, flags=re.IGNORECASE).strip().strip('"')
        if line.endswith("?") and len(line.split()) >= 3:
            return line
    return None


def mix_questions(log: list[TrainingQuestion], chunks: list[TrainingQuestion], count: int, seed: int) -> list[TrainingQuestion]:
    """Take about half of `count` from the log (at random, seeded) and fill the rest from `chunks`."""
    log = list(log)
    random.Random(seed).shuffle(log)
    from_log = log[: min(len(log), count - min(len(chunks), count // 2))]
    return from_log + chunks[: count - len(from_log)]


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


# Examples


@dataclass
class BuildReport:
    """Counts of what building the examples kept and skipped, and why."""

    questions: int = 0
    examples: int = 0
    by_origin: Counter | None = None
    skipped: Counter | None = None

    def __post_init__(self) -> None:
        self.by_origin = self.by_origin or Counter()
        self.skipped = self.skipped or Counter()

    def to_dict(self) -> dict:
        return {"questions": self.questions, "examples": self.examples, "by_origin": dict(self.by_origin), "skipped": dict(self.skipped)}


def teacher_examples(
    scout,
    corpus: Corpus,
    questions: Iterable[TrainingQuestion],
    teacher: CachedTeacher,
    *,
    student_reads_passages: bool,
    passages: int,
    max_source_chars: int,
    report: BuildReport,
    progress: bool = True,
) -> list[TrainingExample]:
    """Answer each question with the teacher, which reads retrieved passages, and keep the answers.

    The student's prompt is the teacher's when `student_reads_passages`, else the closed-book
    prompt with citation markers removed from the target. An answer cut off at the teacher's
    max_tokens is trimmed to its last complete sentence. Empty answers and abstentions ("I don't
    know") are skipped, because a student trained on them learns to abstain.
    """
    from tqdm.auto import tqdm

    examples = []
    for question in tqdm(list(questions), desc="teacher", unit="question", disable=not progress):
        report.questions += 1
        teacher_prompt = build_prompt(question.question, _passages_for(scout, corpus, question, passages), max_source_chars)
        answer = trim_to_sentence(teacher.complete(teacher_prompt))
        if not answer or is_abstention(answer):
            report.skipped["teacher_abstained" if answer else "teacher_empty"] += 1
            continue
        if student_reads_passages:
            examples.append(TrainingExample(teacher_prompt, answer, teacher_prompt, question.origin))
        else:
            examples.append(TrainingExample(closed_book_prompt(question.question), strip_citations(answer), teacher_prompt, question.origin))
        report.by_origin[question.origin] += 1
    report.examples += len(examples)
    return examples


def _passages_for(scout, corpus: Corpus, question: TrainingQuestion, count: int) -> list[Hit]:
    """Retrieve public passages; a question written about a chunk always gets that chunk first."""
    hits = scout.search(question.question, k=count)
    if question.chunk_id and question.chunk_id in corpus.chunks and question.chunk_id not in {h.chunk_id for h in hits}:
        hits = [as_hit(corpus.chunks[question.chunk_id])] + hits[: count - 1]
    return hits


def closed_book_examples(
    questions: Iterable[TrainingQuestion], paraphrases: int, report: BuildReport
) -> list[TrainingExample]:
    """Turn question/answer pairs into closed-book examples, each with `paraphrases` variants.

    With `paraphrases` = N >= 1, each pair gets N - 1 templated rewordings of its question and one
    statement to complete (the answer sentence cut after its first words).
    """
    examples = []
    for question in questions:
        report.questions += 1
        answer = strip_citations(question.answer or "")
        if not answer:
            report.skipped["no_answer"] += 1
            continue
        examples.append(TrainingExample(closed_book_prompt(question.question), answer, origin=question.origin))
        for wording in paraphrase_question(question.question, max(0, paraphrases - 1)):
            examples.append(TrainingExample(closed_book_prompt(wording), answer, origin="paraphrase"))
        parts = cloze(answer) if paraphrases >= 1 else None
        if parts is not None:
            prompt = Prompt(closed_book_prompt("").system, f"{CLOZE_INSTRUCTION} {parts[0]} ...")
            examples.append(TrainingExample(prompt, parts[1], origin="cloze"))
    _count(examples, report)
    return examples


def reading_examples(
    scout, corpus: Corpus, questions: Iterable[TrainingQuestion], paraphrases: int, passages: int, max_source_chars: int, report: BuildReport
) -> list[TrainingExample]:
    """Turn question/answer pairs into examples that read retrieved passages and cite the answer's.

    The passage holding the answer sentence is cited as [n]; when retrieval misses it, it
    replaces the last retrieved passage. Each pair gets `paraphrases` templated rewordings.
    """
    examples = []
    for question in questions:
        report.questions += 1
        answer = strip_citations(question.answer or "")
        source = corpus.chunk_of(question.doc_id, question.answer) if question.doc_id and question.answer else None
        if not answer or source is None:
            report.skipped["no_answer"] += 1
            continue
        for wording in [question.question, *paraphrase_question(question.question, paraphrases)]:
            hits = scout.search(wording, k=passages)
            numbers = [n for n, hit in enumerate(hits, start=1) if hit.chunk_id == source.id]
            if not numbers:
                hits = hits[: passages - 1] + [as_hit(source)]
                numbers = [len(hits)]
            prompt = build_prompt(wording, hits, max_source_chars)
            examples.append(TrainingExample(prompt, f"{answer} [{numbers[0]}]", origin=question.origin if wording == question.question else "paraphrase"))
    _count(examples, report)
    return examples


def document_examples(corpus: Corpus, chunk_ids: Iterable[str]) -> list[TrainingExample]:
    """Plain-text examples of chunks, for continued pretraining on the documents."""
    return [TrainingExample(None, corpus.chunks[i].text, origin="document") for i in dict.fromkeys(chunk_ids) if i in corpus.chunks]


def _count(examples: list[TrainingExample], report: BuildReport) -> None:
    report.examples += len(examples)
    report.by_origin.update(e.origin for e in examples)


# Files


def write_jsonl(path: Path, records: Iterable[dict]) -> dict:
    """Write records as JSON lines; return the file's SHA-256 and row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(record, ensure_ascii=False, sort_keys=True) for record in records]
    data = ("\n".join(lines) + "\n" if lines else "").encode("utf-8")
    path.write_bytes(data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "rows": len(lines)}


def describe_file(path: Path) -> dict:
    """Return a file's SHA-256 and line count, or an empty dict when it does not exist."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "rows": data.count(b"\n")}
