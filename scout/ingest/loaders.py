"""Loaders for documents (Markdown, text, HTML, JSONL), search logs (JSONL, CSV) and fact tables (CSV).

A file that cannot be used is reported as a `Problem` with its path and the reason, and skipped;
one malformed line of a JSONL file skips that record only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from scout.types import PUBLIC, Document, LogEntry

TEXT_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text", ".html": "html", ".htm": "html"}
RECORD_SUFFIXES = {".jsonl", ".csv"}
SUPPORTED_SUFFIXES = sorted(set(TEXT_SUFFIXES) | RECORD_SUFFIXES)

TEXT_FIELDS = ("text", "content", "body")
CLICK_FIELDS = ("clicked_doc_id", "clicked", "doc_id")
SESSION_FIELDS = ("session_id", "session")
FACT_FIELDS = ("subject", "relation", "object")


@dataclass(frozen=True)
class Problem:
    """A file (or one line of it) that was skipped, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str
    object: str


@dataclass
class LoadedFile:
    """The documents, log events or facts of one file, plus its per-line problems."""

    path: Path
    kind: str
    content_hash: str
    documents: list[Document] = field(default_factory=list)
    log_entries: list[LogEntry] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class SkipFile(Exception):
    """Raised by a loader when the whole file is unusable; the message is the reason."""


def scan(root: Path) -> list[Path]:
    """List the files under `root` (or `root` itself), sorted, skipping hidden files and folders."""
    if root.is_file():
        return [root]
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file():
            files.append(path)
    return files


def document_id_for(path: Path, root: Path) -> str:
    """Return a file document's id: its path relative to the ingest root, POSIX style, without the suffix."""
    base = root.parent if root.is_file() else root
    return path.relative_to(base).with_suffix("").as_posix()


def load_file(path: Path, root: Path, acl: tuple[str, ...] = (PUBLIC,)) -> LoadedFile:
    """Load one file. Raises `SkipFile` with the reason when nothing in it is usable."""
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES and suffix not in RECORD_SUFFIXES:
        raise SkipFile(f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    text, content_hash = read_text(path)
    doc_id = document_id_for(path, root)
    if suffix in TEXT_SUFFIXES:
        return _load_text_document(path, doc_id, text, content_hash, TEXT_SUFFIXES[suffix], acl)
    if suffix == ".jsonl":
        return _load_jsonl(path, doc_id, text, content_hash, acl)
    return _load_csv(path, text, content_hash)


def read_text(path: Path) -> tuple[str, str]:
    """Read a UTF-8 text file and return (text, SHA-256 of its bytes)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SkipFile(f"unreadable: {exc.strerror or exc}") from exc
    if b"\x00" in data[:8192]:
        raise SkipFile("binary file (contains NUL bytes); only text formats are ingested")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SkipFile(f"not valid UTF-8 at byte {exc.start}; convert the file to UTF-8") from exc
    if not text.strip():
        raise SkipFile("empty file")
    return text, hashlib.sha256(data).hexdigest()


def _load_text_document(path: Path, doc_id: str, text: str, content_hash: str, kind: str, acl: tuple[str, ...]) -> LoadedFile:
    if kind == "html":
        title, text = html_to_text(text)
        if not text.strip():
            raise SkipFile("HTML page has no visible text")
    elif kind == "markdown":
        title = markdown_title(text)
    else:
        title = ""
    document = Document(id=doc_id, text=text, title=title or path.stem, source=str(path), acl=acl, metadata={"format": kind})
    return LoadedFile(path=path, kind="documents", content_hash=content_hash, documents=[document])


def markdown_title(text: str) -> str:
    for line in text.splitlines()[:20]:
        if line.startswith("# "):
            return line[2:].strip()
    return ""


class _TextExtractor(HTMLParser):
    SKIPPED = {"script", "style", "noscript", "template"}
    BLOCKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article", "pre", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._skip_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.SKIPPED:
            self._skip_depth += 1
        elif tag == "title":
            self._in_title = True
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED and self._skip_depth:
            self._skip_depth -= 1
        elif tag == "title":
            self._in_title = False
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._in_title:
            self.title_parts.append(data)
        else:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """Return (title, visible text) of an HTML page with the standard library's parser."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(line for line in lines if line)
    return " ".join("".join(parser.title_parts).split()), text


def _load_jsonl(path: Path, file_id: str, text: str, content_hash: str, acl: tuple[str, ...]) -> LoadedFile:
    records, problems = _parse_jsonl(path, text)
    if not records:
        raise SkipFile("no valid JSON records" + (f" ({problems[0].reason})" if problems else ""))
    first = records[0][1]
    if "query" in first and not any(name in first for name in TEXT_FIELDS):
        loaded = LoadedFile(path=path, kind="log", content_hash=content_hash, problems=problems)
        for line_number, record in records:
            _append_log_entry(loaded, path, line_number, record)
        return loaded
    loaded = LoadedFile(path=path, kind="documents", content_hash=content_hash, problems=problems)
    seen: set[str] = set()
    for line_number, record in records:
        document = _record_to_document(path, file_id, line_number, record, acl, loaded.problems)
        if document is None:
            continue
        if document.id in seen:
            loaded.problems.append(Problem(f"{path}:{line_number}", f"duplicate document id {document.id!r}; the first record is kept"))
            continue
        seen.add(document.id)
        loaded.documents.append(document)
    return loaded


def _parse_jsonl(path: Path, text: str) -> tuple[list[tuple[int, dict]], list[Problem]]:
    records: list[tuple[int, dict]] = []
    problems: list[Problem] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"{path}:{line_number}", f"invalid JSON ({exc.msg} at column {exc.colno}); record skipped"))
            continue
        if not isinstance(record, dict):
            problems.append(Problem(f"{path}:{line_number}", f"expected a JSON object, got {type(record).__name__}; record skipped"))
            continue
        records.append((line_number, record))
    return records, problems


def _record_to_document(path: Path, file_id: str, line_number: int, record: dict, acl: tuple[str, ...], problems: list[Problem]) -> Document | None:
    text = next((record[name] for name in TEXT_FIELDS if isinstance(record.get(name), str)), None)
    if text is None or not text.strip():
        problems.append(Problem(f"{path}:{line_number}", f"record has no non-empty text field (one of {', '.join(TEXT_FIELDS)}); record skipped"))
        return None
    doc_id = str(record.get("id") or f"{file_id}#{line_number}")
    groups = record.get("acl", record.get("groups"))
    if groups is not None and (not isinstance(groups, list) or not all(isinstance(g, str) for g in groups)):
        problems.append(Problem(f"{path}:{line_number}", f"'acl' must be a list of group names, got {groups!r}; record skipped"))
        return None
    metadata = {key: value for key, value in record.items() if key not in {"id", "title", "acl", "groups", *TEXT_FIELDS}}
    return Document(
        id=doc_id,
        text=text,
        title=str(record.get("title") or doc_id),
        source=str(path),
        acl=tuple(groups) if groups else acl,
        metadata=metadata,
    )


def _append_log_entry(loaded: LoadedFile, path: Path, line_number: int, record: dict) -> None:
    query = record.get("query")
    if not isinstance(query, str) or not query.strip():
        loaded.problems.append(Problem(f"{path}:{line_number}", "log event has no non-empty 'query'; event skipped"))
        return
    clicked = next((record[name] for name in CLICK_FIELDS if record.get(name)), None)
    session = next((record[name] for name in SESSION_FIELDS if record.get(name)), None)
    timestamp = record.get("timestamp")
    loaded.log_entries.append(
        LogEntry(
            query=query.strip(),
            clicked_doc_id=str(clicked) if clicked is not None else None,
            timestamp=str(timestamp) if timestamp is not None else None,
            session_id=str(session) if session is not None else None,
        )
    )


def _load_csv(path: Path, text: str, content_hash: str) -> LoadedFile:
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise SkipFile(f"invalid CSV: {exc}") from exc
    header = {name.strip().lower() for name in (rows[0].keys() if rows else []) if name}
    if "query" in header:
        loaded = LoadedFile(path=path, kind="log", content_hash=content_hash)
        for line_number, row in enumerate(rows, start=2):
            _append_log_entry(loaded, path, line_number, _lower_keys(row))
        return loaded
    if set(FACT_FIELDS) <= header:
        loaded = LoadedFile(path=path, kind="facts", content_hash=content_hash)
        for line_number, row in enumerate(rows, start=2):
            _append_fact(loaded, path, line_number, _lower_keys(row))
        return loaded
    raise SkipFile(
        f"CSV header {sorted(header)} is neither a search log (needs a 'query' column) "
        f"nor a fact table (needs columns {', '.join(FACT_FIELDS)})"
    )


def _lower_keys(row: dict) -> dict:
    return {(key or "").strip().lower(): (value.strip() if isinstance(value, str) else value) for key, value in row.items()}


def _append_fact(loaded: LoadedFile, path: Path, line_number: int, row: dict) -> None:
    values = [row.get(name) or "" for name in FACT_FIELDS]
    if not all(values):
        loaded.problems.append(Problem(f"{path}:{line_number}", f"fact row needs non-empty {', '.join(FACT_FIELDS)}; row skipped"))
        return
    loaded.facts.append(Fact(*values))
