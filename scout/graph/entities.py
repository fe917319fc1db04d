"""Entity names from cheap local signals: titles, aliases and key phrases, matched by token n-grams.

Entity keys are normalised token tuples (accents removed, lower case, `\\w+` tokens), so
"Lilu (mythology)", "lilu mythology" and "Lilú Mythology" share one key. A named-entity
recogniser can be added by implementing `EntityExtractor`; no packaged NER model is used now.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

Key = tuple[str, ...]

MAX_ENTITY_TOKENS = 6

_TOKEN = re.compile(r"\w+(?:[-'’]\w+)*")
_PARENTHETICAL = re.compile(r"\s*\([^)]*\)\s*$")
_POSSESSIVE = re.compile(r"['’]s$")
_SENTENCE_END = re.compile(r"[.!?:;\n]")

# English function words and words too generic to name anything. Names may not start or end
# with one, and a single-word name may not be one.
STOPWORDS = frozenset(
    """
    a about above after again against all also although am an and any are as at be because been before being
    below between both but by can could did do does doing done down during each either else ever every few for
    from further had has have having he her here hers herself him himself his how however i if in into is it its
    itself just least less let like many may me might more most much must my myself neither no nor not now of off
    often on once one only or other others our ours ourselves out over own per rather same shall she should since
    so some such than that the their theirs them themselves then there therefore these they this those though
    through thus to too under until up upon us very via was we were what whatever when where whether which while
    who whom whose why will with within without would yet you your yours yourself
    according among another around based became become becomes called due eg etc first given including known
    later made make non several since various
    well whereas yes
    """.split()
)

# Capitalised words that start sentences or headings rather than name things.
CAPITALISED_STOPWORDS = frozenset(
    """
    abstract background conclusion conclusions discussion figure fig introduction methods note results table
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday mr mrs ms dr
    """.split()
)

# Lower-case words allowed inside a capitalised span: "Champ de Mars", "Bank of England".
_CONNECTORS = frozenset({"of", "de", "du", "da", "del", "della", "der", "van", "von", "la", "le", "the", "di", "al", "bin", "en"})


def normalise(text: str) -> str:
    """Fold accents and case and keep word tokens: "Lilú (Mythology)" -> "lilu mythology"."""
    return " ".join(entity_key(text))


def entity_key(text: str) -> Key:
    return tuple(_fold(word) for word in _TOKEN.findall(text))


def _fold(word: str) -> str:
    """Lower-case a word, drop its accents and a possessive "'s"."""
    if "'" in word or "’" in word:
        word = _POSSESSIVE.sub("", word)
    if word.isascii():
        return word.lower()
    folded = unicodedata.normalize("NFKD", word).lower()
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


def title_aliases(title: str) -> list[str]:
    """Names for a document title: the title, and the title without a trailing "(disambiguation)"."""
    names = [title.strip()]
    short = _PARENTHETICAL.sub("", title).strip()
    if short and short != names[0]:
        names.append(short)
    return names


def is_nameable(key: Key) -> bool:
    """Whether a key can name an entity: 1..MAX_ENTITY_TOKENS tokens, not a bare stopword or number."""
    if not key or len(key) > MAX_ENTITY_TOKENS:
        return False
    if key[0] in STOPWORDS or key[-1] in STOPWORDS:
        return False
    if len(key) == 1:
        word = key[0]
        return len(word) >= 3 and not word.isdigit() and word not in CAPITALISED_STOPWORDS
    return not all(token.isdigit() for token in key)


@dataclass(frozen=True)
class Token:
    """A word of a text with its original spelling and its normalised form.

    `sentence_start` marks a word that opens a sentence or a line; `joined` marks a word
    separated from the previous one by spaces only, so a name can continue across it.
    """

    text: str
    norm: str
    sentence_start: bool
    joined: bool


def tokens_of(text: str) -> list[Token]:
    """Split text into word tokens with their sentence and punctuation boundaries."""
    tokens: list[Token] = []
    previous_end = 0
    for match in _TOKEN.finditer(text):
        gap = text[previous_end : match.start()]
        spaces_only = gap == " " or not gap.strip()
        starts = not tokens or (not spaces_only and _SENTENCE_END.search(gap) is not None) or "\n" in gap
        word = match.group()
        previous_end = match.end()
        if "'" in word or "’" in word:
            stripped = _POSSESSIVE.sub("", word)
            if stripped != word:
                word = stripped
                previous_end -= 1  # a possessive ends the name: "Paris's mayor" is not one name
        tokens.append(Token(word, _fold(word), starts, bool(tokens) and spaces_only))
    return tokens


def _is_capitalised(token: Token) -> bool:
    first = token.text[0]
    return first.isupper() or (first.isdigit() and any(ch.isupper() for ch in token.text))


class EntityExtractor(Protocol):
    """Proposes entity names for a corpus of chunk texts.

    `extract` receives every chunk once, as text and as `tokens_of(text)`, and returns candidate names. The graph builder adds titles,
    aliases and fact subjects and objects itself, then finds every name's mentions in every chunk,
    so an extractor only has to say which strings name something. A named-entity recogniser fits
    here: return the text of each recognised span.
    """

    def extract(self, texts: list[str], tokens: list[list[Token]]) -> Iterable[str]: ...


@dataclass
class KeyPhraseExtractor:
    """Key phrases by two cheap rules, no model.

    1. Capitalised spans: runs of capitalised words joined by spaces only (lower-case connectors
       such as "of" or "de" allowed inside), e.g. "Brandenburg Gate", "Bank of England". When a
       span opens a sentence, its first word counts only if the corpus also capitalises that word
       mid-sentence, so "Visit Eiffel Tower" yields "Eiffel Tower".
    2. Frequent noun-like n-grams: lower-case 2- and 3-word phrases with no stopword, not ending
       in "-ed" or starting with an "-ly" adverb, found in at least `min_chunks` chunks but in at
       most `max_chunk_share` of them (e.g. "incubation period").

    >>> sorted(KeyPhraseExtractor(min_chunks=2).extract(["The Eiffel Tower is in Paris.", "Visit Eiffel Tower and the incubation period.", "An incubation period."]))
    ['Eiffel Tower', 'Paris', 'incubation period']
    """

    min_chunks: int = 3
    max_chunk_share: float = 0.05

    def extract(self, texts: list[str], tokens: list[list[Token]] | None = None) -> list[str]:
        spans: dict[str, None] = {}
        opening: dict[tuple[str, str], None] = {}
        capitalised_mid_sentence: set[str] = set()
        ngram_chunks: Counter[Key] = Counter()
        ngram_surface: dict[Key, str] = {}
        for chunk_tokens in tokens if tokens is not None else map(tokens_of, texts):
            capitalised_mid_sentence.update(t.norm for t in chunk_tokens if not t.sentence_start and _is_capitalised(t))
            for span in _capitalised_spans(chunk_tokens):
                _record_span(span, spans, opening)
            for key in set(_lowercase_ngrams(chunk_tokens)):
                ngram_chunks[key] += 1
                ngram_surface.setdefault(key, " ".join(key))

        names = list(spans)
        for first, rest in opening:
            if first.lower() in capitalised_mid_sentence:
                names.append(f"{first} {rest}".strip())
            elif rest:
                names.append(rest)
        ceiling = max(self.min_chunks, int(self.max_chunk_share * len(texts)))
        names += [ngram_surface[key] for key, count in ngram_chunks.items() if self.min_chunks <= count <= ceiling]
        return [name for name in dict.fromkeys(names) if is_nameable(entity_key(name))]


def _capitalised_spans(tokens: list[Token]) -> Iterable[list[Token]]:
    index = 0
    while index < len(tokens):
        if not _is_capitalised(tokens[index]):
            index += 1
            continue
        end = index + 1
        while end < len(tokens) and tokens[end].joined and not tokens[end].sentence_start:
            if _is_capitalised(tokens[end]):
                end += 1
            elif _is_connector(tokens, end):
                end += 2
            else:
                break
        yield tokens[index:end]
        index = end


def _is_connector(tokens: list[Token], index: int) -> bool:
    following = index + 1
    return (
        tokens[index].text in _CONNECTORS
        and following < len(tokens)
        and tokens[following].joined
        and _is_capitalised(tokens[following])
    )


def _record_span(span: list[Token], spans: dict[str, None], opening: dict[tuple[str, str], None]) -> None:
    # A sentence often opens with an ordinary capitalised word ("The", "However"): drop it.
    while span and span[0].sentence_start and (span[0].norm in STOPWORDS or span[0].norm in CAPITALISED_STOPWORDS):
        span = span[1:]
    if not span:
        return
    if span[0].sentence_start:
        opening[(span[0].text, " ".join(token.text for token in span[1:]))] = None
    else:
        spans[" ".join(token.text for token in span)] = None


def _lowercase_ngrams(tokens: list[Token]) -> Iterable[Key]:
    eligible = [t.text.isalpha() and t.text.islower() and len(t.text) > 2 and t.norm not in STOPWORDS for t in tokens]
    for size in (2, 3):
        for start in range(len(tokens) - size + 1):
            if not all(eligible[start : start + size]):
                continue
            window = tokens[start : start + size]
            if any(token.sentence_start or not token.joined for token in window[1:]):
                continue
            if window[0].norm.endswith("ly") or window[-1].norm.endswith("ed"):
                continue
            yield tuple(token.norm for token in window)


class MentionMatcher:
    """Finds known entity names in text by looking up token n-grams, longest match first.

    A name spelled with capitals ("Paris") matches only a span that has a capitalised word,
    so the entity Hell does not match "hell of a day". Lower-case names match any case.

    >>> matcher = MentionMatcher({("eiffel", "tower"): "e1", ("paris",): "e2"}, proper={("paris",)})
    >>> matcher.find("Paris has the eiffel tower; paris is lower case here.")
    ['e2', 'e1']
    """

    def __init__(self, names: dict[Key, str], proper: set[Key] | None = None) -> None:
        self.names = names
        self.proper = proper or set()
        self._longest_from: dict[str, int] = {}
        for key in names:
            self._longest_from[key[0]] = max(self._longest_from.get(key[0], 0), len(key))

    def find(self, text: str, case_sensitive: bool = True) -> list[str]:
        """Entity ids mentioned in `text`, in order of first mention, each once."""
        return self.find_in_tokens(tokens_of(text), case_sensitive)

    def find_in_tokens(self, tokens: list[Token], case_sensitive: bool = True) -> list[str]:
        found: dict[str, None] = {}
        index = 0
        while index < len(tokens):
            step = 1
            longest = min(self._longest_from.get(tokens[index].norm, 0), len(tokens) - index)
            for size in range(longest, 0, -1):
                window = tokens[index : index + size]
                if any(not token.joined for token in window[1:]):
                    continue
                key = tuple(token.norm for token in window)
                entity = self.names.get(key)
                if entity is None:
                    continue
                if case_sensitive and key in self.proper and not any(_is_capitalised(token) for token in window):
                    continue
                found.setdefault(entity, None)
                step = size
                break
            index += step
        return list(found)
