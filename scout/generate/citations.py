"""Citation checking and support scoring for generated answers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from scout.types import Citation, Hit

CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_TOKEN = re.compile(r"\w+")
ABSTENTION = re.compile(r"\b(i do not know|i don't know|i dont know|not (?:contain|mention|say|provide)|no information)\b", re.IGNORECASE)

# Function words ignored when measuring support: they match any passage.
STOPWORDS = frozenset(
    "a an and are as at be by can could did do does for from had has have he her his how i if in into is it its "
    "may might of on or our she should so than that the their them then there these they this those to was we "
    "were what when where which who why will with would you your not no yes also about after before".split()
)


@dataclass
class CheckedCitations:
    """An answer's text with invalid markers removed, the valid citations and the count removed."""

    text: str
    citations: list[Citation]
    invalid: int


def check_citations(text: str, sources: list[Hit]) -> CheckedCitations:
    """Keep `[n]` markers that name a given source (1..len(sources)); remove and count the rest.

    `[1, 3]` is split into its numbers; a marker left with no valid number disappears.
    """
    invalid = 0
    cited: dict[int, Citation] = {}

    def replace(match: re.Match) -> str:
        nonlocal invalid
        numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= len(sources)]
        invalid += len(numbers) - len(valid)
        for n in valid:
            cited.setdefault(n, Citation(number=n, chunk_id=sources[n - 1].chunk_id, doc_id=sources[n - 1].doc_id))
        return "".join(f"[{n}]" for n in valid)

    cleaned = CITATION.sub(replace, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
    return CheckedCitations(text=cleaned, citations=[cited[n] for n in sorted(cited)], invalid=invalid)


def content_tokens(text: str) -> list[str]:
    """Lower-cased word tokens of `text` without citation markers and stopwords."""
    return [t for t in _TOKEN.findall(CITATION.sub(" ", text).lower()) if t not in STOPWORDS]


def support(answer: str, passages: list[str], question: str = "") -> float:
    """Groundedness: the share of the answer's content tokens that occur in the passages.

    Tokens the answer repeats from `question` are left out, so restating the question earns no
    support; an answer that adds nothing beyond the question scores 0.0 when a question is given
    and 1.0 when not. A lexical proxy: it credits copied facts and misses paraphrase, so it errs
    towards calling a paraphrased answer unsupported.
    """
    asked = set(content_tokens(question))
    tokens = [t for t in content_tokens(answer) if t not in asked]
    if not tokens:
        return 0.0 if asked else 1.0
    vocabulary = set(content_tokens(" ".join(passages)))
    return sum(1 for t in tokens if t in vocabulary) / len(tokens)


def is_abstention(text: str) -> bool:
    return bool(ABSTENTION.search(text))


def best_source(text: str, sources: list[Hit], question: str = "") -> tuple[int, float]:
    """Return the 1-based number of the source that best supports `text`, and that support."""
    best_number, best_support = 0, 0.0
    for number, hit in enumerate(sources, start=1):
        value = support(text, [hit.text], question)
        if value > best_support:
            best_number, best_support = number, value
    return best_number, best_support
