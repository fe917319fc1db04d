"""HTML for the chat app: answers with citation links, source cards, the passage panel, statistics.

Every piece of text from documents, questions or models goes through `html.escape`, so a passage
cannot inject markup into the page.
"""

from __future__ import annotations

import html
import re
from typing import Any

from scout.app.service import RelatedEntity
from scout.generate.citations import CITATION
from scout.types import Answer, Hit

CITATION_HREF = "#cite-{query_id}-{number}"
"""Link target of a citation; the page's click handler turns it into a passage lookup."""

CITATION_REF = re.compile(r"^(\d+)-(\d+)$")
LEADING_HASH = re.compile(r"^#", re.MULTILINE)
PREVIEW_CHARS = 220

STAT_LABELS = (
    ("documents", "documents"),
    ("chunks", "passages"),
    ("vectors", "vectors"),
    ("query_log", "questions asked"),
    ("feedback", "ratings"),
    ("search_log", "search-log events"),
)


def source_record(hit: Hit) -> dict[str, Any]:
    """Copy the parts of a hit that the passage panel shows into plain data for the session state."""
    return {
        "doc_id": hit.doc_id, "title": hit.title, "text": hit.text, "start": hit.start, "end": hit.end,
        "score": hit.score, "signals": dict(hit.signals), "ranks": dict(hit.ranks),
    }


def citation_link(query_id: int | None, number: int, title: str = "") -> str:
    if query_id is None:
        return f"[{number}]"
    href = CITATION_HREF.format(query_id=query_id, number=number)
    return f'<a class="scout-cite" href="{href}" title="{html.escape(title, quote=True)}">[{number}]</a>'


def message_text(text: str) -> str:
    """Escape model text for the chat's Markdown: HTML is escaped, and a line-leading `#` is no heading.

    Retrieved passages often start with a Markdown title, which small models copy into the answer.
    """
    return LEADING_HASH.sub(r"\\#", html.escape(text, quote=False))


def answer_message(answer: Answer, query_id: int | None) -> str:
    """Render a finished answer for the chat: escaped text with each [n] as a link, then a footer."""
    text = message_text(answer.text)

    def link(match: re.Match) -> str:
        numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
        titles = {n: answer.sources[n - 1].doc_id for n in numbers if 1 <= n <= len(answer.sources)}
        return "".join(citation_link(query_id, n, titles[n]) if n in titles else f"[{n}]" for n in numbers)

    body = CITATION.sub(link, text)
    return f"{body}\n\n{answer_footer(answer)}"


def answer_footer(answer: Answer) -> str:
    seconds = answer.timings.get("total_ms", 0.0) / 1000
    parts = [f"{answer.backend} · {answer.model}", f"{seconds:.1f} s"]
    if answer.abstained and answer.raw_text:
        parts.append(f"the model's answer was withheld because its sources support only {answer.support:.0%} of it")
    elif not answer.abstained:
        parts.append(f"{answer.support:.0%} supported by its sources")
    if answer.attributed_citations:
        parts.append("citation added by Scout")
    if answer.invalid_citations:
        parts.append(f"{answer.invalid_citations} invalid citation(s) removed")
    footer = f'<span class="scout-answer-meta">{html.escape(" · ".join(parts))}</span>'
    if answer.abstained and answer.raw_text:
        footer += f'<details class="scout-withheld"><summary>Show the withheld answer</summary>{message_text(answer.raw_text)}</details>'
    return footer


def error_message(text: str) -> str:
    return f'<div class="scout-error"><strong>Could not answer.</strong> {html.escape(text, quote=False)}</div>'


def signal_chips(record: dict[str, Any]) -> str:
    chips = [f'<span class="scout-chip scout-chip-fused">fused {record["score"]:.4f}</span>']
    for name, score in record["signals"].items():
        rank = record["ranks"].get(name)
        rank_text = f" #{rank}" if rank is not None else ""
        chips.append(f'<span class="scout-chip">{html.escape(name)} {score:.3f}{rank_text}</span>')
    return "".join(chips)


def passage_panel(record: dict[str, Any] | None, number: int | None = None) -> str:
    """Render one cited passage with its document id and character offsets, or a hint when there is none."""
    if record is None:
        return (
            '<div class="scout-passage scout-passage-empty">'
            "<strong>Cited passage</strong><p>Click a citation such as [1] in an answer to read the passage it points to.</p></div>"
        )
    label = f"[{number}] " if number is not None else ""
    return (
        '<div class="scout-passage">'
        f'<div class="scout-passage-head"><strong>{label}{html.escape(record["title"] or record["doc_id"])}</strong></div>'
        f'<div class="scout-passage-where">document <code class="scout-doc-id">{html.escape(record["doc_id"])}</code> · '
        f'characters <span class="scout-offsets">{record["start"]}–{record["end"]}</span></div>'
        f'<blockquote class="scout-passage-text">{html.escape(record["text"].strip())}</blockquote>'
        f'<div class="scout-chips">{signal_chips(record)}</div></div>'
    )


def sources_panel(records: list[dict[str, Any]], query_id: int | None, cited: set[int]) -> str:
    """Render every retrieved passage of the latest answer with its fused score and each signal's score and rank."""
    if not records:
        return '<div class="scout-empty">Retrieved passages appear here after a question.</div>'
    cards = []
    for number, record in enumerate(records, start=1):
        badge = '<span class="scout-cited">cited</span>' if number in cited else ""
        preview = " ".join(record["text"].split())
        if len(preview) > PREVIEW_CHARS:
            preview = preview[:PREVIEW_CHARS].rsplit(" ", 1)[0] + " …"
        cards.append(
            f'<div class="scout-source">'
            f'<div class="scout-source-head">{citation_link(query_id, number, record["doc_id"])} '
            f'<span class="scout-source-title">{html.escape(record["title"] or record["doc_id"])}</span>{badge}</div>'
            f'<div class="scout-passage-where"><code>{html.escape(record["doc_id"])}</code> · chars {record["start"]}–{record["end"]}</div>'
            f'<div class="scout-source-preview">{html.escape(preview)}</div>'
            f'<div class="scout-chips">{signal_chips(record)}</div></div>'
        )
    return "".join(cards)


def related_panel(entities: list[RelatedEntity], queries: list[str]) -> str:
    """Render related entities and queries, or an empty string when there are none, so the section disappears."""
    sections = []
    if entities:
        rows = []
        for entity in entities:
            linked = "".join(f'<span class="scout-chip scout-linked">{html.escape(name)}</span>' for name in entity.linked)
            rows.append(f'<div class="scout-entity-row"><span class="scout-entity">{html.escape(entity.name)}</span><div class="scout-chips">{linked}</div></div>')
        sections.append(f'<div class="scout-related"><strong>Related entities</strong>{"".join(rows)}</div>')
    if queries:
        items = "".join(f'<li><a class="scout-related-query" href="#ask">{html.escape(q)}</a></li>' for q in queries)
        sections.append(f'<div class="scout-related"><strong>Related searches</strong><ul>{items}</ul></div>')
    return "".join(sections)


def stats_panel(stats: dict[str, int]) -> str:
    cells = "".join(
        f'<div class="scout-stat"><span class="scout-stat-value">{stats.get(key, 0):,}</span>'
        f'<span class="scout-stat-label">{label}</span></div>'
        for key, label in STAT_LABELS
    )
    return f'<div class="scout-stats">{cells}</div>'


def header(index_name: str, stats: dict[str, int]) -> str:
    return (
        '<div class="scout-header"><div class="scout-brand"><span class="scout-logo">◎</span> Scout</div>'
        f'<div class="scout-subtitle">Cited answers from <code>{html.escape(index_name)}</code> · '
        f'{stats.get("documents", 0):,} documents · {stats.get("chunks", 0):,} passages</div></div>'
    )


def upload_summary(indexed: list[str], rejected: list[tuple[str, str]], report_summary: str | None) -> str:
    """Write the upload result for the chat and the upload box: the files indexed and why any file was rejected."""
    lines = []
    if indexed:
        lines.append(f"Indexed {len(indexed)} file(s): {', '.join(indexed)}. They are searchable now.")
    for name, reason in rejected:
        lines.append(f"Could not add {name}: {reason}.")
    if report_summary:
        lines.append(f"Ingest {report_summary}")
    return "\n\n".join(html.escape(line, quote=False) for line in lines) or "No files were uploaded."
