"""The lexical index: BM25 over chunk texts with bm25s.

bm25s scores from a sparse matrix built once, about 20x faster per query than rank-bm25 at the
same ranking on 20k short documents. The index is rebuilt from the catalog after each ingest
and written to a fresh folder that replaces the old one in a single rename.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from scout.config import BM25Config

logger = logging.getLogger(__name__)


def _bm25s():
    """Import bm25s and undo the DEBUG level it sets on its logger at import (bm25s 0.3.16).

    With the level back at NOTSET, the application's logging configuration decides what shows.
    """
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s

IDS_FILE = "chunk_ids.json"


class BM25Index:
    """BM25 over a fixed list of chunks; `search` returns (chunk id, score) with score > 0.

    >>> index = BM25Index.build(["a", "b"], ["the cat sat", "dogs bark loudly"], BM25Config())
    >>> [chunk_id for chunk_id, _ in index.search("cats", k=5)]
    ['a']
    """

    def __init__(self, model, chunk_ids: list[str], config: BM25Config) -> None:
        self._model = model
        self.chunk_ids = chunk_ids
        self.config = config
        self._positions = {chunk_id: i for i, chunk_id in enumerate(chunk_ids)}

    @classmethod
    def build(cls, chunk_ids: list[str], texts: list[str], config: BM25Config) -> BM25Index:
        bm25s = _bm25s()
        model = bm25s.BM25(k1=config.k1, b=config.b, method=config.method)
        if texts:
            model.index(tokenize(texts, config), show_progress=False)
        return cls(model, list(chunk_ids), config)

    def search(self, query: str, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        if not self.chunk_ids:
            return []
        tokens = tokenize([query], self.config)[0]
        if not tokens:
            return []
        scores = np.asarray(self._model.get_scores(tokens), dtype=np.float32)
        if allowed is not None:
            mask = np.zeros(len(self.chunk_ids), dtype=bool)
            mask[[self._positions[c] for c in allowed if c in self._positions]] = True
            scores = np.where(mask, scores, 0.0)
        top = _top_k(scores, k)
        return [(self.chunk_ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def save(self, folder: Path) -> None:
        """Write to `folder` through a temporary sibling and a rename, so readers never see half an index."""
        staging = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if self.chunk_ids:
            self._model.save(str(staging), show_progress=False)
        (staging / IDS_FILE).write_text(json.dumps(self.chunk_ids), encoding="utf-8")
        backup = folder.with_name(folder.name + ".old")
        shutil.rmtree(backup, ignore_errors=True)
        if folder.exists():
            folder.rename(backup)
        staging.rename(folder)
        shutil.rmtree(backup, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path, config: BM25Config) -> BM25Index:
        bm25s = _bm25s()
        chunk_ids = json.loads((folder / IDS_FILE).read_text(encoding="utf-8"))
        if not chunk_ids:
            return cls.build([], [], config)
        model = bm25s.BM25.load(str(folder), show_progress=False)
        return cls(model, chunk_ids, config)


def tokenize(texts: list[str], config: BM25Config) -> list[list[str]]:
    return _bm25s().tokenize(texts, stopwords=config.stopwords or None, stemmer=_stemmer(config.stemmer), return_ids=False, show_progress=False)


_STEMMERS: dict[str, object] = {}


def _stemmer(language: str | None):
    if not language:
        return None
    if language not in _STEMMERS:
        import Stemmer

        _STEMMERS[language] = Stemmer.Stemmer(language)
    return _STEMMERS[language]


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]
