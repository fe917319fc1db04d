"""Invariants of the committed sample corpus that sample_corpus/build.py writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "sample_corpus"
CORPUS = SAMPLE / "corpus"
ARTICLES = CORPUS / "articles"
FAQ = CORPUS / "faq.jsonl"
SEARCH_LOG = CORPUS / "search_log.jsonl"
HELDOUT = SAMPLE / "eval" / "heldout.jsonl"
JSONL_FILES = [FAQ, SEARCH_LOG, HELDOUT]


def read_jsonl(path: Path) -> list[dict]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        record = json.loads(line)
        assert isinstance(record, dict), f"{path.name}:{number} is not a JSON object"
        records.append(record)
    return records


def case_whitespace_key(text: str) -> str:
    return " ".join(text.casefold().split())


def punctuation_free_key(text: str) -> str:
    """Match build.normalize_question, which also ignores punctuation."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


@pytest.fixture(scope="module")
def document_ids() -> set[str]:
    article_ids = {f"articles/{path.stem}" for path in ARTICLES.glob("*.md")}
    faq_ids = [record["id"] for record in read_jsonl(FAQ)]
    assert len(faq_ids) == len(set(faq_ids)), "faq.jsonl repeats an id"
    return article_ids | set(faq_ids)


@pytest.mark.parametrize("path", sorted(ARTICLES.glob("*.md")) + JSONL_FILES, ids=lambda p: p.name)
def test_file_is_utf8(path):
    path.read_bytes().decode("utf-8")


@pytest.mark.parametrize("path", JSONL_FILES, ids=lambda p: p.name)
def test_jsonl_parses(path):
    assert read_jsonl(path), f"{path.name} is empty"


def test_articles_exist():
    assert list(ARTICLES.glob("*.md")), f"no articles in {ARTICLES}"


def test_faq_record_fields():
    for record in read_jsonl(FAQ):
        assert set(record) == {"id", "title", "text", "url", "source"}, record.get("id")
        assert record["id"].startswith("faq/"), record["id"]
        assert record["text"].startswith(record["title"] + "\n\n"), record["id"]


def test_clicked_ids_exist(document_ids):
    for event in read_jsonl(SEARCH_LOG):
        assert set(event) == {"query", "clicked_doc_id", "timestamp", "session_id"}, event
        clicked = event["clicked_doc_id"]
        assert clicked is None or clicked in document_ids, f"unknown clicked_doc_id {clicked!r}"


def test_gold_ids_exist(document_ids):
    for record in read_jsonl(HELDOUT):
        for doc_id in record["gold_doc_ids"]:
            assert doc_id in document_ids, f"{record['id']}: unknown gold_doc_id {doc_id!r}"


def test_unanswerable_have_no_gold():
    for record in read_jsonl(HELDOUT):
        if record["source"] == "unanswerable":
            assert record["answers"] == [], record["id"]
            assert record["gold_doc_ids"] == [], record["id"]
        else:
            assert record["answers"], f"{record['id']} has no gold answer"
            assert record["gold_doc_ids"], f"{record['id']} has no gold document"


@pytest.mark.parametrize("normalize", [case_whitespace_key, punctuation_free_key])
def test_heldout_not_in_log(normalize):
    logged = {normalize(event["query"]) for event in read_jsonl(SEARCH_LOG)}
    leaked = [record["question"] for record in read_jsonl(HELDOUT) if normalize(record["question"]) in logged]
    assert leaked == []
