"""Cheap, model-free training questions: key sentences, templated questions, extracted answers.

Everything here is rules over the text, with no model call, so it runs in milliseconds on a
whole index. The questions read worse than a model's: a templated question rewords the start
of a key sentence ("What is a novel coronavirus?") or falls back to "What is known about X?".
`scout distill --question-source teacher` asks the teacher to write questions instead.

>>> templated_question("A novel coronavirus is a new coronavirus that has not been identified before.")
'What is a novel coronavirus?'
>>> paraphrase_question("What is a novel coronavirus?", 2)
['Can you tell me what is a novel coronavirus?', 'I would like to know: what is a novel coronavirus?']
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

from scout.generate.citations import STOPWORDS

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]*|\d+(?:\.\d+)?")
_COPULA = re.compile(r"^(?P<subject>[A-Z][^,;:()\[\]]{2,80}?) (?P<verb>is|are|was|were) (?P<rest>.{8,})$")
# A subject that ends in one of these words is part of a clause ("People who are ..."), not a noun phrase.
_CLAUSE_WORDS = frozenset({"who", "that", "which", "where", "when", "if", "as", "there", "it", "this", "these", "what", "how"})
# Lines of an article header, not sentences of its text.
_METADATA = re.compile(r"^(https?://|SHA:|Authors?:|Date:|DOI:|License:|Abstract:\s*$)", re.IGNORECASE)

MIN_SENTENCE_WORDS = 6
MAX_SENTENCE_WORDS = 40

QUESTION_TEMPLATES = (
    "Can you tell me {lower}",
    "I would like to know: {lower}",
    "Quick question: {lower}",
    "{question} Please answer briefly.",
    "Do you know {lower}",
)
"""Surface rewordings of a question. They vary the words around it, never the fact asked for."""


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at ., ! or ? followed by a capital letter, digit or quote."""
    sentences = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph or _METADATA.match(paragraph):
            continue
        paragraph = re.sub(r"^(Abstract|Text):\s*", "", paragraph)
        sentences.extend(s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip())
    return sentences


def content_words(text: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in STOPWORDS and len(w) > 1]


def inverse_document_frequencies(texts: Iterable[str]) -> dict[str, float]:
    """Return the IDF log(N / df) of each content word over `texts`, N being the number of texts."""
    frequencies: Counter[str] = Counter()
    count = 0
    for text in texts:
        frequencies.update(set(content_words(text)))
        count += 1
    return {word: math.log(count / df) for word, df in frequencies.items()}


def is_statement(sentence: str) -> bool:
    """Tell whether a sentence can be a fact: a statement of 6 to 40 words without a URL."""
    words = sentence.split()
    if not MIN_SENTENCE_WORDS <= len(words) <= MAX_SENTENCE_WORDS:
        return False
    return not sentence.endswith("?") and "http" not in sentence and not _METADATA.match(sentence)


def key_sentences(text: str, idf: dict[str, float], count: int) -> list[str]:
    """Pick up to `count` statements of `text` that carry the rarest words, in text order.

    A sentence scores the mean IDF of its distinct content words, so sentences full of common
    words ("More research is needed.") lose to sentences with names, numbers and terms.
    """
    candidates = [s for s in split_sentences(text) if is_statement(s)]
    scored = []
    for position, sentence in enumerate(candidates):
        words = set(content_words(sentence))
        if len(words) < 3:
            continue
        scored.append((sum(idf.get(w, 0.0) for w in words) / len(words), position, sentence))
    best = sorted(scored, key=lambda item: (-item[0], item[1]))[:count]
    return [sentence for _, _, sentence in sorted(best, key=lambda item: item[1])]


def templated_question(sentence: str, idf: dict[str, float] | None = None) -> str:
    """Write a question that `sentence` answers, by a template.

    "X is Y." becomes "What is X?" when X is a short noun phrase. Any other sentence becomes
    "What is known about K?", where K is the run of content words around its rarest word.
    """
    match = _COPULA.match(sentence.rstrip("."))
    if match:
        subject = match.group("subject")
        words = subject.split()
        if len(words) <= 8 and words[-1].lower() not in _CLAUSE_WORDS and not set(w.lower() for w in words) & _CLAUSE_WORDS:
            return f"What {match.group('verb')} {_lower_first(subject)}?"
    return f"What is known about {key_phrase(sentence, idf or {})}?"


def key_phrase(sentence: str, idf: dict[str, float], max_words: int = 4) -> str:
    """Return up to `max_words` adjacent content words around the sentence's rarest word."""
    tokens = _WORD.findall(sentence)
    if not tokens:
        return sentence
    is_content = [t.lower() not in STOPWORDS and len(t) > 1 for t in tokens]
    scores = [idf.get(t.lower(), 0.0) if is_content[i] else -1.0 for i, t in enumerate(tokens)]
    center = max(range(len(tokens)), key=lambda i: scores[i])
    start = end = center
    while start > 0 and is_content[start - 1] and end - start + 1 < max_words:
        start -= 1
    while end + 1 < len(tokens) and is_content[end + 1] and end - start + 1 < max_words:
        end += 1
    return " ".join(tokens[start : end + 1])


def paraphrase_question(question: str, count: int) -> list[str]:
    """Return up to `count` templated rewordings of a question (`QUESTION_TEMPLATES`, in order)."""
    question = question.strip()
    lower = _lower_first(question)
    rewordings = []
    for template in QUESTION_TEMPLATES[:count]:
        rewordings.append(template.format(question=question, lower=lower))
    return rewordings


def cloze(sentence: str) -> tuple[str, str] | None:
    """Split a statement into its first part and the rest, for a "continue the statement" example.

    The cut falls after about 40 % of the words, so the rest carries the fact. Returns None for a
    sentence too short to split.
    """
    words = sentence.split()
    if len(words) < MIN_SENTENCE_WORDS:
        return None
    cut = max(2, round(len(words) * 0.4))
    return " ".join(words[:cut]), " ".join(words[cut:])


def extract_answer(question: str, document_text: str, idf: dict[str, float]) -> str | None:
    """Return the statement of a document that shares the most IDF-weighted words with a question.

    Sentences ending in "?" are skipped, so an FAQ entry answers with its answer text and not by
    repeating its question. Returns None when no statement shares a content word.
    """
    question_words = set(content_words(question))
    best_score, best = 0.0, None
    for sentence in split_sentences(document_text):
        if not is_statement(sentence):
            continue
        shared = question_words & set(content_words(sentence))
        score = sum(idf.get(w, 1.0) for w in shared)
        if score > best_score:
            best_score, best = score, sentence
    return best


def _lower_first(text: str) -> str:
    """Lower-case the first letter unless the first word is an acronym or a name like "BCoV"."""
    first = text.split(" ", 1)[0]
    if len(first) > 1 and any(c.isupper() for c in first[1:]):
        return text
    return text[:1].lower() + text[1:]
