"""Freshness: change a fact in one indexed document and see which systems give the new answer.

A retrieval system answers from the edited document as soon as it is re-ingested. A model that
answers from its weights keeps the old fact until it is trained again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scout.errors import ConfigError

if TYPE_CHECKING:
    from scout.eval.suites import EvalQuestion

@dataclass(frozen=True)
class FreshnessEdit:
    """Replace every standalone occurrence of `old` with `new` in document `doc_id`.

    `question` is answered by the edited fact, so a fresh system's answer contains `new`.
    """

    doc_id: str
    old: str
    new: str
    question: str

    def apply(self, text: str) -> str:
        """Return `text` with the edit made. Raises ConfigError when `old` does not occur in it."""
        pattern = _standalone(self.old)
        if not pattern.search(text):
            raise ConfigError(f"freshness edit: {self.old!r} does not occur in document {self.doc_id!r}; choose a value the document contains")
        return pattern.sub(self.new, text)

    def to_dict(self) -> dict:
        return asdict(self)


def _standalone(value: str) -> re.Pattern:
    """Match `value` when it is not part of a longer word or number."""
    return re.compile(rf"(?<![\w.,]){re.escape(value)}(?![\w]|[.,]\d)")


def numeric_freshness_edit(questions: Iterable[EvalQuestion], document_text: Callable[[str], str | None]) -> FreshnessEdit | None:
    """Pick an edit from the first question whose gold answer is a whole number stated once in its one gold document.

    The new value is the old one plus the smallest offset from 7 up that the document does not contain.
    """
    for question in questions:
        if len(question.gold_doc_ids) != 1 or len(question.answers) != 1:
            continue
        old = question.answers[0].strip()
        if not re.fullmatch(r"\d{1,6}", old):
            continue
        text = document_text(question.gold_doc_ids[0])
        if text is None or len(_standalone(old).findall(text)) != 1:
            continue
        new = _unused_number(int(old), text)
        return FreshnessEdit(doc_id=question.gold_doc_ids[0], old=old, new=new, question=question.question)
    return None


def _unused_number(old: int, text: str) -> str:
    offset = 7
    while _standalone(str(old + offset)).search(text):
        offset += 1
    return str(old + offset)


def write_edited_document(edit: FreshnessEdit, title: str, text: str, folder: Path) -> Path:
    """Write the edited document as a one-record JSONL file under `folder`; ingesting `folder` replaces it in the index."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {"id": edit.doc_id, "title": title, "text": edit.apply(text)}
    (folder / "edited.jsonl").write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder
