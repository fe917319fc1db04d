"""Deterministic stand-ins for models, so tests check Scout's logic and not a model's mood."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import numpy as np

from scout.generate.base import Prompt
from scout.generate.prompt import SOURCE_LINE
from scout.types import Usage

_WORD = re.compile(r"\w+")


class FakeGenerator:
    """Answers with the first sentence of the source sharing most words with the question.

    With no overlapping source it answers "I don't know." Output is split into word pieces to
    exercise streaming.
    """

    backend = "fake"
    model = "fake-extractive"

    def stream(self, prompt: Prompt, max_tokens: int) -> Iterator[str | Usage]:
        question = prompt.user.rsplit("Question:", 1)[-1]
        question_words = set(_WORD.findall(question.lower()))
        best_number, best_overlap, best_text = 0, 0, ""
        for match in SOURCE_LINE.finditer(prompt.user):
            text = re.sub(r"^\([^)]*\) ", "", match.group(2))
            overlap = len(question_words & set(_WORD.findall(text.lower())))
            if overlap > best_overlap:
                best_number, best_overlap, best_text = int(match.group(1)), overlap, text
        if best_number == 0:
            answer = "I don't know."
        else:
            sentence = re.split(r"(?<=[.!?])\s", best_text, maxsplit=1)[0]
            answer = f"{sentence.rstrip()} [{best_number}]"
        words = answer.split(" ")[:max_tokens]
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word
        yield Usage(input_tokens=len(prompt.system.split()) + len(prompt.user.split()), output_tokens=len(words))


class FakeEmbedder:
    """Hashing-trick bag of words, L2-normalised: texts sharing words get similar vectors.

    Mirrors the part of the sentence-transformers API Scout uses.
    """

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension

    def get_sentence_embedding_dimension(self) -> int:
        return self.dimension

    def encode(self, texts, batch_size: int = 32, show_progress_bar: bool = False, normalize_embeddings: bool = True, convert_to_numpy: bool = True):
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                vectors[row, bucket % self.dimension] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)
