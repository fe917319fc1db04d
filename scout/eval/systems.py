"""The systems an evaluation compares, named `KIND:GENERATOR` on the command line.

- `rag:G`: Scout's hybrid retrieval, then generator G answers from the top-k passages.
- `oracle:G`: G answers from the gold passages instead of retrieved ones (an upper bound).
- `closed-book:C`: model C answers from its weights, with no sources in the prompt.
- `rag+finetuned:C`: retrieval, then fine-tuned model C answers from the passages.

G is `local`, `local=REF`, `anthropic`, `anthropic=MODEL` or `fake`. C is a checkpoint folder
or model reference, or one of the G forms (`closed-book:local` is the base model's baseline).

>>> parse_system("rag:local=packaged:smollm2-135m-instruct")
SystemSpec(name='rag:local=packaged:smollm2-135m-instruct', kind='rag', backend='local', model='packaged:smollm2-135m-instruct', checkpoint=None)
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scout.errors import ConfigError
from scout.eval.metrics import document_ranking
from scout.generate.answer import stream_answer
from scout.generate.base import Generator, Prompt
from scout.generate.citations import is_abstention
from scout.types import Answer, Hit, Usage

if TYPE_CHECKING:
    from scout.api import Scout
    from scout.eval.suites import EvalQuestion

SYSTEM_KINDS = ("rag", "oracle", "closed-book", "rag+finetuned")
GENERATOR_BACKENDS = ("local", "anthropic", "fake")
TRAINING_FILE = "scout_training.json"
RETRIEVAL_DEPTH = 10

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class SystemSpec:
    """A parsed system name: its kind, generator backend and model (None means the backend's default)."""

    name: str
    kind: str
    backend: str
    model: str | None = None
    checkpoint: Path | None = None

    @property
    def reads_sources(self) -> bool:
        return self.kind != "closed-book"

    @property
    def retrieves(self) -> bool:
        return self.kind in ("rag", "rag+finetuned")


def parse_systems(text: str) -> list[SystemSpec]:
    """Parse a comma-separated list of system names; raises ConfigError on a bad or repeated name."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ConfigError("no systems given; pass for example --systems rag:local,oracle:local")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"system(s) {repeated} given more than once; list each system once")
    return [parse_system(name) for name in names]


def parse_system(name: str) -> SystemSpec:
    kind, _, argument = name.partition(":")
    if kind not in SYSTEM_KINDS or not argument:
        raise ConfigError(f"invalid system {name!r}; expected KIND:GENERATOR with KIND one of {', '.join(SYSTEM_KINDS)}, e.g. rag:local")
    backend, _, model = argument.partition("=")
    if backend in GENERATOR_BACKENDS:
        if backend == "fake" and model:
            raise ConfigError(f"invalid system {name!r}: the fake generator takes no model")
        return SystemSpec(name=name, kind=kind, backend=backend, model=model or None, checkpoint=_checkpoint_folder(model))
    if kind in ("rag", "oracle"):
        raise ConfigError(
            f"invalid generator {argument!r} in {name!r}; expected one of local, local=REF, anthropic, anthropic=MODEL, fake"
        )
    return SystemSpec(name=name, kind=kind, backend="local", model=argument, checkpoint=_checkpoint_folder(argument))


def _checkpoint_folder(reference: str | None) -> Path | None:
    if not reference:
        return None
    path = Path(reference).expanduser()
    return path if path.is_dir() else None


def training_cost(checkpoint: Path | None) -> dict | None:
    """Read a checkpoint's `scout_training.json` and add `cpu_minutes` when it records CPU time.

    Returns None for no checkpoint folder or no such file.
    """
    if checkpoint is None or not (checkpoint / TRAINING_FILE).is_file():
        return None
    info = json.loads((checkpoint / TRAINING_FILE).read_text(encoding="utf-8"))
    if not isinstance(info, dict):
        raise ConfigError(f"{checkpoint / TRAINING_FILE} must hold a JSON object, got {type(info).__name__}")
    if "cpu_minutes" not in info and isinstance(info.get("cpu_seconds"), (int, float)):
        info["cpu_minutes"] = info["cpu_seconds"] / 60
    return info


@dataclass
class Outcome:
    """What one system produced for one question, before scoring.

    `text` is what a user sees: for a system that reads sources, Scout's abstention message when it
    abstained; for a closed-book model, its own words. Latency and CPU time cover answering only,
    not the extra top-10 search that retrieval metrics use.
    """

    text: str
    raw_text: str
    abstained: bool
    usage: Usage
    latency_ms: float
    cpu_seconds: float
    cited_doc_ids: list[str] = field(default_factory=list)
    cited_passages: list[str] = field(default_factory=list)
    source_doc_ids: list[str] = field(default_factory=list)
    source_passages: list[str] = field(default_factory=list)
    retrieved_doc_ids: list[str] | None = None
    support: float | None = None
    invalid_citations: int = 0
    backend: str = ""
    model: str = ""


class GeneratorPool:
    """Creates each generator once per (backend, model), so systems that share a model share its weights.

    `overrides` maps a system name to a generator object to use instead (tests pass failing ones).
    """

    def __init__(self, scout: Scout, overrides: dict[str, Generator] | None = None) -> None:
        self.scout = scout
        self.overrides = dict(overrides or {})
        self._fakes: dict[str, Generator] = {}

    def get(self, spec: SystemSpec) -> Generator:
        if spec.name in self.overrides:
            return self.overrides[spec.name]
        if spec.backend == "fake":
            from scout.testing.fakes import FakeGenerator

            return self._fakes.setdefault("fake", FakeGenerator())
        # Scout.generator creates one generator per (backend, model) and reuses it.
        return self.scout.generator(spec.backend, spec.model)


class EvalSystem:
    """Answers one question at a time; subclasses differ in what the generator reads."""

    def __init__(self, spec: SystemSpec, scout: Scout, generator: Generator, k: int) -> None:
        self.spec = spec
        self.scout = scout
        self.generator = generator
        self.k = k

    @property
    def name(self) -> str:
        return self.spec.name

    def answer(self, question: EvalQuestion) -> Outcome:
        raise NotImplementedError


class RagSystem(EvalSystem):
    """`rag:` and `rag+finetuned:`: `Scout.ask` with the system's generator."""

    def answer(self, question: EvalQuestion) -> Outcome:
        hits = self.scout.search(question.question, k=max(RETRIEVAL_DEPTH, self.k))
        ranking = document_ranking(hit.doc_id for hit in hits)[:RETRIEVAL_DEPTH]
        started, cpu_started = time.perf_counter(), time.process_time()
        answer = self.scout.ask(question.question, generator=self.generator, k=self.k, log=False)
        outcome = outcome_from_answer(answer, time.perf_counter() - started, time.process_time() - cpu_started)
        outcome.retrieved_doc_ids = ranking
        return outcome


class OracleSystem(EvalSystem):
    """`oracle:`: the generator reads the best passages of the gold documents, chosen with the gold answer."""

    def answer(self, question: EvalQuestion) -> Outcome:
        started, cpu_started = time.perf_counter(), time.process_time()
        hits = oracle_passages(self.scout, question, self.k)
        answer = None
        timings: dict[str, float] = {}
        for item in stream_answer(question.question, hits, self.generator, self.scout.config.generator, timings):
            if isinstance(item, Answer):
                answer = item
        return outcome_from_answer(answer, time.perf_counter() - started, time.process_time() - cpu_started)


class ClosedBookSystem(EvalSystem):
    """`closed-book:`: the model reads only the question, in the prompt closed-book training uses."""

    def answer(self, question: EvalQuestion) -> Outcome:
        started, cpu_started = time.perf_counter(), time.process_time()
        pieces: list[str] = []
        usage = Usage()
        for item in self.generator.stream(closed_book_prompt(question.question), self.scout.config.generator.max_tokens):
            if isinstance(item, Usage):
                usage = item
            else:
                pieces.append(item)
        raw = "".join(pieces).strip()
        return Outcome(
            text=raw, raw_text=raw, abstained=not raw or is_abstention(raw), usage=usage,
            latency_ms=(time.perf_counter() - started) * 1000, cpu_seconds=time.process_time() - cpu_started,
            backend=self.generator.backend, model=self.generator.model,
        )


def closed_book_prompt(question: str) -> Prompt:
    """The prompt of `scout.train`'s closed-book training, so a trained model sees the same text."""
    from scout.train.examples import closed_book_prompt as training_prompt

    return training_prompt(question)


def build_system(spec: SystemSpec, scout: Scout, pool: GeneratorPool, k: int) -> EvalSystem:
    generator = pool.get(spec)
    classes = {"rag": RagSystem, "rag+finetuned": RagSystem, "oracle": OracleSystem, "closed-book": ClosedBookSystem}
    return classes[spec.kind](spec, scout, generator, k)


def outcome_from_answer(answer: Answer, seconds: float, cpu_seconds: float) -> Outcome:
    cited = [answer.sources[c.number - 1] for c in answer.citations]
    return Outcome(
        text=answer.text, raw_text=answer.raw_text, abstained=answer.abstained, usage=answer.usage,
        latency_ms=seconds * 1000, cpu_seconds=cpu_seconds,
        cited_doc_ids=list(dict.fromkeys(c.doc_id for c in answer.citations)),
        cited_passages=[hit.text for hit in cited],
        source_doc_ids=list(dict.fromkeys(hit.doc_id for hit in answer.sources)),
        source_passages=[hit.text for hit in answer.sources],
        support=None if answer.abstained else answer.support,
        invalid_citations=answer.invalid_citations, backend=answer.backend, model=answer.model,
    )


def oracle_passages(scout: Scout, question: EvalQuestion, k: int) -> list[Hit]:
    """Up to `k` chunks of the question's oracle documents: chunks containing a gold answer first, then by word overlap.

    Word overlap counts the words a chunk shares with the question and the gold answers.
    """
    catalog = scout.store.catalog
    chunks = catalog.chunks_by_id(catalog.chunk_ids_of(question.oracle_documents))
    answers = [" ".join(a.lower().split()) for a in question.answers if a.strip()]
    words = set(_WORD.findall(" ".join([question.question, *question.answers]).lower()))

    def rank_key(chunk) -> tuple:
        text = " ".join(chunk.text.lower().split())
        contains = any(answer in text for answer in answers)
        overlap = len(words & set(_WORD.findall(text)))
        return (not contains, -overlap, chunk.doc_id, chunk.index)

    best = sorted(chunks.values(), key=rank_key)[:k]
    return [
        Hit(chunk_id=c.id, doc_id=c.doc_id, title=c.title, text=c.text, start=c.start, end=c.end, score=1.0, source=c.source)
        for c in best
    ]
