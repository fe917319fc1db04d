"""Evaluation suites: questions with gold answers and gold documents, plus the documents to index.

Built-in suites:

- `sample`: the held-out questions of the sample corpus over `sample_corpus/corpus`.
- `covid_qa`: COVID-QA (deepset, 2020) questions over its 98 articles. A fixed fifth of the
  questions is held out (`is_held_out`), so training on the other four fifths stays fair.
- `xquad_en`: the English XQuAD questions (from SQuAD v1.1 dev), one document per paragraph.
- `hotpotqa_dev150`: 150 HotpotQA dev questions (distractor setting), one document per paragraph.

A folder with `questions.jsonl` and `documents/` is a custom suite (see `load_folder_suite`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scout.errors import ConfigError
from scout.eval.freshness import FreshnessEdit
from scout.eval.metrics import normalize_answer

SUITES = ("sample", "covid_qa", "xquad_en", "hotpotqa_dev150")
DEFAULT_DATASETS_DIR = "/work/shared/datasets"
DATASETS_ENV = "SCOUT_DATASETS_DIR"

# The sample suite's freshness probe. "1257" occurs twice in the article, both times as the number
# of survey respondents, so the question has that number as its only answer.
SAMPLE_FRESHNESS = FreshnessEdit(
    doc_id="articles/pmc7090843",
    old="1257",
    new="1311",
    question="How many health care workers completed the mental health survey in 34 hospitals in China?",
)


@dataclass(frozen=True)
class EvalQuestion:
    """One question with its gold answers and gold documents.

    No `answers` means the corpus cannot answer it and the right response is to abstain.
    `gold_doc_ids` are the documents that answer it (empty when unknown or unanswerable);
    `oracle_doc_ids` are the documents the oracle system reads, `gold_doc_ids` when empty.
    """

    id: str
    question: str
    answers: tuple[str, ...] = ()
    gold_doc_ids: tuple[str, ...] = ()
    oracle_doc_ids: tuple[str, ...] = ()
    kind: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    @property
    def oracle_documents(self) -> tuple[str, ...]:
        return self.oracle_doc_ids or self.gold_doc_ids

    def to_dict(self) -> dict:
        return {
            "id": self.id, "question": self.question, "answers": list(self.answers),
            "gold_doc_ids": list(self.gold_doc_ids), "oracle_doc_ids": list(self.oracle_doc_ids), "kind": self.kind,
        }


@dataclass
class Suite:
    """Questions, the folder of documents to index for them, and where the gold labels come from.

    `gold_documents` says how the gold document ids were made, for the report.
    `freshness` is the scripted document edit of `--freshness`, or None to pick one from the
    questions (`numeric_freshness_edit`).
    """

    name: str
    questions: list[EvalQuestion]
    documents: Path
    description: str = ""
    gold_documents: str = "annotated"
    freshness: FreshnessEdit | None = None
    metadata: dict = field(default_factory=dict)

    def select(self, limit: int | None) -> list[EvalQuestion]:
        """Return `limit` questions spread over the suite, all of them when `limit` is None.

        Each question kind gets a share in turn, so a short run covers every kind. Within a kind the
        questions are evenly spaced through the suite's order, so they spread over its documents.
        """
        if limit is None or limit >= len(self.questions):
            return list(self.questions)
        if limit < 1:
            raise ConfigError(f"invalid limit {limit!r}; expected a positive number of questions")
        by_kind: dict[str, list[EvalQuestion]] = {}
        for question in self.questions:
            by_kind.setdefault(question.kind, []).append(question)
        quotas = _shares_in_turn([len(group) for group in by_kind.values()], limit)
        picked = [_evenly_spaced(group, quota) for group, quota in zip(by_kind.values(), quotas)]
        return list(_interleave(picked))


def _shares_in_turn(sizes: list[int], total: int) -> list[int]:
    """Hand out `total` places one at a time to each group in turn, skipping groups that are full."""
    shares = [0] * len(sizes)
    while total > 0:
        for i, size in enumerate(sizes):
            if total > 0 and shares[i] < size:
                shares[i] += 1
                total -= 1
    return shares


def _evenly_spaced(items: list[EvalQuestion], count: int) -> list[EvalQuestion]:
    return [items[i * len(items) // count] for i in range(count)]


def _interleave(groups: list[list[EvalQuestion]]) -> Iterator[EvalQuestion]:
    for position in range(max((len(g) for g in groups), default=0)):
        for group in groups:
            if position < len(group):
                yield group[position]


def load_suite(name: str, work_dir: Path, datasets_dir: str | Path | None = None, corpus_dir: str | Path | None = None) -> Suite:
    """Load a built-in suite by name, or a custom suite from a folder.

    Dataset suites write their documents as JSONL under `work_dir` (normally inside the index
    folder), so re-ingesting them is incremental.
    """
    if name not in SUITES:
        folder = Path(name).expanduser()
        if folder.is_dir():
            return load_folder_suite(folder)
        raise ConfigError(f"unknown suite {name!r}; expected one of {', '.join(SUITES)} or a folder with questions.jsonl and documents/")
    if name == "sample":
        return load_sample_suite(_sample_corpus(corpus_dir))
    datasets = Path(datasets_dir or os.environ.get(DATASETS_ENV) or DEFAULT_DATASETS_DIR).expanduser()
    loader = {"covid_qa": load_covid_qa_suite, "xquad_en": load_xquad_suite, "hotpotqa_dev150": load_hotpot_suite}[name]
    return loader(datasets, work_dir / name)


def _sample_corpus(corpus_dir: str | Path | None) -> Path:
    if corpus_dir is not None:
        return Path(corpus_dir).expanduser()
    in_working_directory = Path("sample_corpus")
    if in_working_directory.is_dir():
        return in_working_directory
    return Path(__file__).resolve().parents[2] / "sample_corpus"


def read_jsonl(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise ConfigError(f"suite file not found: {path}") from exc
    return [json.loads(line) for line in lines if line.strip()]


def _read_json(path: Path):
    if not path.is_file():
        raise ConfigError(f"dataset file not found: {path}; pass --datasets DIR or set {DATASETS_ENV}")
    return json.loads(path.read_text(encoding="utf-8"))


def question_from_record(record: dict, kind: str = "") -> EvalQuestion:
    return EvalQuestion(
        id=str(record["id"]),
        question=record["question"],
        answers=tuple(record.get("answers") or ()),
        gold_doc_ids=tuple(record.get("gold_doc_ids") or ()),
        oracle_doc_ids=tuple(record.get("oracle_doc_ids") or ()),
        kind=record.get("kind") or record.get("source") or kind,
    )


def load_sample_suite(corpus: Path) -> Suite:
    heldout = corpus / "eval" / "heldout.jsonl"
    documents = corpus / "corpus"
    if not documents.is_dir() or not heldout.is_file():
        raise ConfigError(f"sample corpus not found at {corpus} (expected {documents}/ and {heldout}); run from the repository root or pass --corpus")
    questions = [question_from_record(record) for record in read_jsonl(heldout)]
    return Suite(
        name="sample", questions=questions, documents=documents, freshness=SAMPLE_FRESHNESS,
        description="held-out questions of the sample corpus (COVID-QA articles, public-health FAQ, unanswerable questions)",
    )


def load_folder_suite(folder: Path) -> Suite:
    """A custom suite: `questions.jsonl` records `{id, question, answers, gold_doc_ids}` and a `documents/` folder.

    An optional `freshness.json` contains a `FreshnessEdit` as `{doc_id, old, new, question}`.
    """
    documents = folder / "documents"
    if not documents.is_dir():
        raise ConfigError(f"suite folder {folder} has no documents/ folder to index")
    questions = [question_from_record(record) for record in read_jsonl(folder / "questions.jsonl")]
    freshness_file = folder / "freshness.json"
    freshness = FreshnessEdit(**json.loads(freshness_file.read_text(encoding="utf-8"))) if freshness_file.is_file() else None
    return Suite(name=folder.name, questions=questions, documents=documents, freshness=freshness, description=f"custom suite in {folder}")


def write_documents(folder: Path, documents: Iterable[dict]) -> Path:
    """Write `{id, title, text}` records to `folder/documents.jsonl`, leaving an identical file untouched."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "documents.jsonl"
    content = "".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in documents)
    if not path.is_file() or path.read_text(encoding="utf-8") != content:
        path.write_text(content, encoding="utf-8")
    return folder


# COVID-QA


def is_held_out(dataset: str, question_id: str, share: int = 5) -> bool:
    """Return whether a question belongs to the evaluation split, where a stable hash puts 1 in `share`.

    Training code should skip these questions so a closed-book model is not tested on what it saw.
    """
    digest = hashlib.sha256(f"{dataset}:{question_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % share == 0


def load_covid_qa_suite(datasets: Path, work_dir: Path) -> Suite:
    data = _read_json(datasets / "covid_qa" / "200423_covidQA.json")
    documents, questions = [], []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            doc_id = f"covid_qa/{paragraph['document_id']}"
            context = paragraph["context"]
            documents.append({"id": doc_id, "title": context.split("\n", 1)[0].strip(), "text": context})
            for qa in paragraph["qas"]:
                if not is_held_out("covid_qa", str(qa["id"])):
                    continue
                answers = tuple(dict.fromkeys(a["text"].strip() for a in qa["answers"] if a["text"].strip()))
                questions.append(EvalQuestion(id=f"covidqa-{qa['id']}", question=qa["question"], answers=answers, gold_doc_ids=(doc_id,), kind="covid_qa"))
    return Suite(
        name="covid_qa", questions=questions, documents=write_documents(work_dir, documents),
        description="COVID-QA (deepset, 2020, release 200423): held-out fifth of the questions over all 98 articles",
    )


# XQuAD


def load_xquad_suite(datasets: Path, work_dir: Path) -> Suite:
    data = _read_json(datasets / "xquad_en" / "xquad.en.json")
    documents, questions = [], []
    for article in data["data"]:
        title = article["title"].replace("_", " ")
        for number, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"xquad/{article['title']}/{number}"
            documents.append({"id": doc_id, "title": title, "text": paragraph["context"]})
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                questions.append(EvalQuestion(id=qa["id"], question=qa["question"], answers=answers, gold_doc_ids=(doc_id,), kind="xquad"))
    return Suite(
        name="xquad_en", questions=questions, documents=write_documents(work_dir, documents),
        description="XQuAD English (SQuAD v1.1 dev subset): 1,190 questions over 240 paragraphs",
    )


# HotpotQA


def load_hotpot_suite(datasets: Path, work_dir: Path) -> Suite:
    """HotpotQA dev questions over the union of their context paragraphs.

    NOTE: the dataset copy has no supporting-fact labels. A question's gold documents are therefore
    a proxy: the paragraphs of its own context that contain the answer. Yes/no questions get none.
    The oracle reads all ten context paragraphs of a question that has no proxy gold document.
    """
    items = _read_json(datasets / "hotpotqa_dev150" / "hotpotqa_dev150.json")
    documents: dict[str, dict] = {}
    questions = []
    for item in items:
        context_ids = []
        for paragraph in item["document"].split("\n\n"):
            if not paragraph.strip():
                continue
            doc_id = hotpot_doc_id(paragraph)
            documents.setdefault(doc_id, {"id": doc_id, "title": hotpot_title(paragraph), "text": paragraph})
            context_ids.append(doc_id)
        answers = tuple(item["answers"])
        gold = tuple(doc_id for doc_id in context_ids if _contains_any(documents[doc_id]["text"], answers))
        questions.append(
            EvalQuestion(
                id=f"hotpot-{item['id']}", question=item["question"], answers=answers, gold_doc_ids=gold,
                oracle_doc_ids=() if gold else tuple(context_ids), kind="hotpotqa",
            )
        )
    return Suite(
        name="hotpotqa_dev150", questions=questions, documents=write_documents(work_dir, documents.values()),
        description="HotpotQA dev, distractor setting: 150 multi-hop questions over their 1,491 distinct context paragraphs",
        gold_documents="proxy: context paragraphs that contain the answer (no supporting-fact labels in this copy)",
    )


def hotpot_title(paragraph: str) -> str:
    """Return the title of a "Title. Text" paragraph: the text before the first ". " that the title's first word follows.

    Falls back to the text before the first ". ", which is wrong for titles such as "St. Andre".
    """
    first_word = re.sub(r"\W", "", paragraph.split(" ", 1)[0])
    for match in re.finditer(r"\. ", paragraph):
        rest = paragraph[match.end() :]
        if first_word and rest.startswith(first_word):
            return paragraph[: match.start()]
    return paragraph.split(". ", 1)[0]


def hotpot_doc_id(paragraph: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", hotpot_title(paragraph).lower()).strip("-")[:60]
    return f"hotpot/{slug}-{hashlib.sha1(paragraph.encode('utf-8')).hexdigest()[:8]}"


def _contains_any(text: str, answers: Iterable[str]) -> bool:
    normalized = f" {normalize_answer(text)} "
    for answer in answers:
        needle = normalize_answer(answer)
        if needle and needle not in ("yes", "no") and f" {needle} " in normalized:
            return True
    return False
