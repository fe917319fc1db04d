"""Sentence-aware chunking with llama-index-core, keeping each chunk's character offsets."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from scout.config import ChunkingConfig
from scout.types import Chunk, Document


@lru_cache(maxsize=8)
def _splitter(chunk_size: int, chunk_overlap: int):
    from llama_index.core.node_parser import SentenceSplitter

    return SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)


def document_hash(document: Document) -> str:
    """Content hash over everything that changes what a document's chunks say or who may see them."""
    digest = hashlib.sha256()
    for part in (document.title, document.text, "\x1f".join(document.acl)):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()


def chunk_document(document: Document, config: ChunkingConfig, doc_hash: str) -> list[Chunk]:
    """Split a document into chunks with `text == document.text[start:end]`.

    Chunk ids embed the document hash, so a new version's chunks never collide with the old
    version's vectors while both exist.
    """
    from llama_index.core import Document as LlamaDocument

    nodes = _splitter(config.chunk_size, config.chunk_overlap).get_nodes_from_documents([LlamaDocument(text=document.text)])
    chunks: list[Chunk] = []
    cursor = 0
    for node in nodes:
        text = node.get_content()
        start = node.start_char_idx
        if start is None or document.text[start : start + len(text)] != text:
            start = document.text.find(text, cursor)
        if start < 0 or not text.strip():
            continue
        end = start + len(text)
        cursor = start + 1
        chunks.append(Chunk(id=f"{document.id}#{doc_hash[:12]}:{len(chunks)}", doc_id=document.id, index=len(chunks), text=text, start=start, end=end))
    return chunks
