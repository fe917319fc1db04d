"""Teachers: generators whose outputs become training targets, cached so a re-run calls none.

The cache is a JSONL file. Each line stores one output under the SHA-256 of (teacher, prompt,
max_tokens), with the wall and CPU seconds the call took. Lines are appended and flushed one at
a time, so an interrupted run keeps every output it paid for, and a run that reads outputs from
the cache can still report what they cost.

>>> import tempfile, pathlib
>>> from scout.testing.fakes import FakeGenerator
>>> cache = TeacherCache(pathlib.Path(tempfile.mkdtemp()) / "teacher_cache.jsonl")
>>> teacher = CachedTeacher(FakeGenerator(), cache, max_tokens=32)
>>> prompt = Prompt("Cite sources.", "Sources:\\n[1] Paris is in France.\\n\\nQuestion: Where is Paris?")
>>> teacher.complete(prompt), teacher.complete(prompt), teacher.calls
('Paris is in France. [1]', 'Paris is in France. [1]', 1)
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from scout.errors import ConfigError
from scout.generate.base import Generator, Prompt
from scout.types import Usage

logger = logging.getLogger(__name__)

TEACHER_BACKENDS = ("local", "anthropic")


@dataclass(frozen=True)
class CallCost:
    """Wall and CPU seconds of one teacher call; CPU time is this process's, so about 0 for an API."""

    wall_seconds: float | None = None
    cpu_seconds: float | None = None


class TeacherCache:
    """Teacher outputs stored in a JSONL file, looked up by `cache_key`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._outputs: dict[str, str] = {}
        self._costs: dict[str, CallCost] = {}
        if self.path.exists():
            self._read()

    def __len__(self) -> int:
        return len(self._outputs)

    def get(self, key: str) -> str | None:
        return self._outputs.get(key)

    def cost(self, key: str) -> CallCost:
        """Return what the call stored under `key` cost; fields are None when it was not recorded."""
        return self._costs.get(key, CallCost())

    def put(self, key: str, teacher: str, prompt: Prompt, output: str, cost: CallCost = CallCost()) -> None:
        """Store an output in memory and append it to the file."""
        self._outputs[key] = output
        self._costs[key] = cost
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"key": key, "teacher": teacher, "system": prompt.system, "user": prompt.user, "output": output} | asdict(cost)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()

    def _read(self) -> None:
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    # A crash while appending can leave the last line cut short; that output is asked again.
                    logger.warning("ignoring unreadable line %d of teacher cache %s", number, self.path)
                    continue
                self._outputs[record["key"]] = record["output"]
                self._costs[record["key"]] = CallCost(record.get("wall_seconds"), record.get("cpu_seconds"))


def cache_key(teacher: str, prompt: Prompt, max_tokens: int) -> str:
    """Return the SHA-256 that identifies one teacher call."""
    payload = json.dumps([teacher, prompt.system, prompt.user, max_tokens], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CachedTeacher:
    """Completes prompts with a generator, returning cached outputs without calling it.

    `calls` counts the generator calls this object made, and `used_keys` lists the cache keys of
    every output it returned, so `spent()` can add up what they cost when they were made. `name`
    identifies the teacher in cache keys: `backend:model`.
    """

    def __init__(self, generator: Generator, cache: TeacherCache, max_tokens: int = 64) -> None:
        if max_tokens < 1:
            raise ConfigError(f"invalid max_tokens {max_tokens!r}; expected a positive integer")
        self.generator = generator
        self.cache = cache
        self.max_tokens = max_tokens
        self.calls = 0
        self.usage = Usage()
        self.used_keys: dict[str, None] = {}

    @property
    def name(self) -> str:
        return f"{self.generator.backend}:{self.generator.model}"

    def complete(self, prompt: Prompt, max_tokens: int | None = None) -> str:
        """Return the teacher's output for `prompt`, from the cache when it is there."""
        max_tokens = max_tokens or self.max_tokens
        key = cache_key(self.name, prompt, max_tokens)
        self.used_keys[key] = None
        cached = self.cache.get(key)
        if cached is not None:
            return cached

        wall, cpu = time.perf_counter(), time.process_time()
        pieces = []
        for item in self.generator.stream(prompt, max_tokens):
            if isinstance(item, Usage):
                self.usage = self.usage + item
            else:
                pieces.append(item)
        self.calls += 1
        output = "".join(pieces).strip()
        cost = CallCost(round(time.perf_counter() - wall, 3), round(time.process_time() - cpu, 3))
        self.cache.put(key, self.name, prompt, output, cost)
        return output

    def spent(self) -> dict:
        """Add up the recorded cost of every output returned so far, cached or not.

        `unrecorded` counts outputs whose cost the cache does not contain (written by an older
        Scout), which the sums leave out.
        """
        costs = [self.cache.cost(key) for key in self.used_keys]
        recorded = [c for c in costs if c.wall_seconds is not None and c.cpu_seconds is not None]
        return {
            "outputs": len(costs),
            "calls_this_run": self.calls,
            "wall_minutes": round(sum(c.wall_seconds for c in recorded) / 60, 2),
            "cpu_minutes": round(sum(c.cpu_seconds for c in recorded) / 60, 2),
            "unrecorded": len(costs) - len(recorded),
            "usage_this_run": asdict(self.usage),
        }


def make_teacher_generator(backend: str, model: str) -> Generator:
    """Create the generator of a teacher backend; models load and clients connect on first use.

    The anthropic backend reads ANTHROPIC_API_KEY when it makes its first call, so a run whose
    outputs are all cached needs no key.
    """
    if backend == "local":
        from scout.generate.local import LocalGenerator

        return LocalGenerator(model=model)
    if backend == "anthropic":
        from scout.generate.anthropic import AnthropicGenerator

        return AnthropicGenerator(model=model)
    raise ConfigError(f"invalid teacher backend {backend!r}; expected one of {TEACHER_BACKENDS}")

