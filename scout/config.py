"""Index configuration as plain data that round-trips to `scout.toml`.

Every index records how it was built (embedder, chunking, BM25 and fusion parameters, schema
version), so a later process opens it with the same settings and a mismatched embedder fails.

>>> cfg = IndexConfig()
>>> IndexConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from scout.errors import ConfigError

SCHEMA_VERSION = 1
FUSION_METHODS = ("rrf", "weighted")
BACKENDS = ("local", "anthropic")


@dataclass
class ChunkingConfig:
    """Sentence-aware chunking (llama-index-core `SentenceSplitter`); sizes are in tokens."""

    chunk_size: int = 200
    chunk_overlap: int = 30


@dataclass
class EmbedderConfig:
    """The sentence-transformers model; `model` is a hub id, a local path or a packaged name."""

    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    dimension: int = 384
    batch_size: int = 32


@dataclass
class BM25Config:
    """BM25 parameters (Robertson et al.): `k1` saturates term frequency, `b` normalises length."""

    k1: float = 1.2
    b: float = 0.75
    method: str = "lucene"
    stemmer: str = "english"
    stopwords: str = "en"


@dataclass
class FusionConfig:
    """Fusion of the per-signal rankings into one.

    `rrf`: reciprocal rank fusion, sum of 1 / (rrf_k + rank) (Cormack et al., SIGIR 2009).
    `weighted`: min-max normalise each signal's scores over its candidates, then a weighted sum.
    `weights` scale each signal in both methods; a signal missing from it gets 1.0.
    `candidates` is how many hits each signal contributes before fusion.
    """

    # Weighted fusion beat RRF on nDCG@10 on the sample corpus, with two and with four signals
    # (docs/benchmarks.md, retrieval section).
    method: str = "weighted"
    rrf_k: int = 60
    # graph and click: the weights benchmarks/multihop.py chose for weighted fusion, the best
    # multi-hop recall that keeps single-hop nDCG@10 at hybrid's (docs/benchmarks.md, multihop section).
    weights: dict[str, float] = field(default_factory=lambda: {"bm25": 1.0, "dense": 1.0, "graph": 0.5, "click": 0.25})
    candidates: int = 50


@dataclass
class GeneratorConfig:
    """Generation defaults: backend, models, sources per prompt, token and time limits, support threshold."""

    backend: str = "local"
    local_model: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    anthropic_model: str = "claude-haiku-4-5"
    max_tokens: int = 160
    sources: int = 4
    timeout_s: float = 30.0
    max_retries: int = 2
    min_support: float = 0.5


@dataclass
class IndexConfig:
    """Everything that defines how an index was built and is queried."""

    schema_version: int = SCHEMA_VERSION
    collection: str = "scout"
    qdrant_url: str | None = None
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def for_embedder(cls, model: str, dimension: int) -> IndexConfig:
        """Defaults with another embedder, e.g. a fake one in tests."""
        return cls(embedder=EmbedderConfig(model=model, dimension=dimension))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexConfig:
        sections = {f.name: f.type for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in sections:
                raise ConfigError(f"unknown configuration key {key!r}; expected one of {sorted(sections)}")
            section_type = _SECTION_TYPES.get(key)
            kwargs[key] = _build_section(key, section_type, value) if section_type else value
        config = cls(**kwargs)
        config.validate()
        return config

    def validate(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ConfigError(
                f"index schema version {self.schema_version} is not supported by this Scout "
                f"(expected {SCHEMA_VERSION}); re-ingest into a new index directory"
            )
        if self.fusion.method not in FUSION_METHODS:
            raise ConfigError(f"invalid fusion method {self.fusion.method!r}; expected one of {FUSION_METHODS}")
        if self.generator.backend not in BACKENDS:
            raise ConfigError(f"invalid generator backend {self.generator.backend!r}; expected one of {BACKENDS}")
        if not 0 <= self.chunking.chunk_overlap < self.chunking.chunk_size:
            raise ConfigError(
                f"invalid chunking: chunk_overlap={self.chunking.chunk_overlap} must be >= 0 and "
                f"smaller than chunk_size={self.chunking.chunk_size}"
            )

    def save(self, path: Path) -> None:
        path.write_text(dumps_toml(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> IndexConfig:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"invalid TOML in {path}: {exc}") from exc
        return cls.from_dict(data)


_SECTION_TYPES: dict[str, type] = {
    "chunking": ChunkingConfig,
    "embedder": EmbedderConfig,
    "bm25": BM25Config,
    "fusion": FusionConfig,
    "generator": GeneratorConfig,
}


def _build_section(name: str, section_type: type, value: Any) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"configuration section {name!r} must be a table, got {value!r}")
    allowed = {f.name for f in fields(section_type)}
    unknown = set(value) - allowed
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)} in section [{name}]; expected some of {sorted(allowed)}")
    return section_type(**value)


def dumps_toml(data: dict[str, Any]) -> str:
    """Serialise a two-level dict of scalars, lists and flat dicts as TOML.

    NOTE: written here because the standard library only reads TOML; the values Scout stores
    are simple enough that JSON string escaping is valid TOML basic-string escaping.
    """
    top: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append(_dump_table(key, value))
        elif value is not None:
            top.append(f"{key} = {_toml_value(value)}")
    return "\n".join(top) + "\n\n" + "\n".join(tables)


def _dump_table(name: str, table: dict[str, Any]) -> str:
    lines = [f"[{name}]"]
    nested: list[str] = []
    for key, value in table.items():
        if isinstance(value, dict):
            nested.append(_dump_table(f"{name}.{key}", value))
        elif value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n\n" + "".join(nested)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} to TOML")
