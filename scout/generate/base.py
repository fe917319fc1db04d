"""The contract every answer generator implements."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from scout.types import Usage


@dataclass(frozen=True)
class Prompt:
    """A chat prompt: instructions in `system`, the question and numbered sources in `user`."""

    system: str
    user: str


@runtime_checkable
class Generator(Protocol):
    """Writes an answer for a prompt, streaming text as it is produced.

    `stream` yields `str` pieces of the answer in order and, last, exactly one `Usage` with the
    tokens read and written. Implementations load models or connect lazily on first use.

    >>> from scout.testing.fakes import FakeGenerator
    >>> pieces = list(FakeGenerator().stream(Prompt("system", "Sources:\\n[1] Paris is in France.\\n\\nQuestion: Where is Paris?"), max_tokens=64))
    >>> "".join(p for p in pieces if isinstance(p, str))
    'Paris is in France. [1]'
    """

    backend: str
    model: str

    def stream(self, prompt: Prompt, max_tokens: int) -> Iterator[str | Usage]: ...
