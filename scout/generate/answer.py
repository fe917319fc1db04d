"""Answering: prompt a generator with numbered sources, stream its text, check the result."""

from __future__ import annotations

import time
from collections.abc import Iterator

from scout.config import GeneratorConfig
from scout.generate.base import Generator
from scout.generate.citations import best_source, check_citations, is_abstention, support
from scout.generate.prompt import ABSTAIN_TEXT, build_prompt
from scout.types import Answer, Citation, Hit, Usage


def stream_answer(question: str, hits: list[Hit], generator: Generator, config: GeneratorConfig, timings: dict[str, float]) -> Iterator[str | Answer]:
    """Yield the answer's text pieces as the generator writes them, then the checked `Answer`.

    With no hits the generator is not called: the answer is the abstention message.
    """
    if not hits:
        yield ABSTAIN_TEXT
        yield _abstain(question, "", [], Usage(), timings, generator, invalid=0)
        return

    prompt = build_prompt(question, hits)
    started = time.perf_counter()
    pieces: list[str] = []
    usage = Usage()
    for item in generator.stream(prompt, config.max_tokens):
        if isinstance(item, Usage):
            usage = item
            continue
        if not pieces:
            timings["first_token_ms"] = (time.perf_counter() - started) * 1000
        pieces.append(item)
        yield item
    timings["generate_ms"] = (time.perf_counter() - started) * 1000
    yield finalise_answer(question, "".join(pieces).strip(), hits, usage, timings, generator, config.min_support)


def finalise_answer(question: str, raw: str, hits: list[Hit], usage: Usage, timings: dict[str, float], generator: Generator, min_support: float) -> Answer:
    """Check citations and support; replace an unsupported answer with the abstention message."""
    checked = check_citations(raw, hits)
    if not checked.text or is_abstention(checked.text):
        return _abstain(question, raw, hits, usage, timings, generator, checked.invalid)

    text, citations, attributed = checked.text, checked.citations, 0
    if citations:
        score = support(text, [hits[c.number - 1].text for c in citations], question)
    else:
        # Small models often leave out the markers: cite the best-supporting source for them.
        number, score = best_source(text, hits, question)
        if number and score >= min_support:
            hit = hits[number - 1]
            citations, attributed = [Citation(number=number, chunk_id=hit.chunk_id, doc_id=hit.doc_id)], 1
            text = f"{text} [{number}]"
    if score < min_support:
        answer = _abstain(question, raw, hits, usage, timings, generator, checked.invalid)
        answer.support = score
        return answer
    return Answer(
        question=question, text=text, raw_text=raw, citations=citations, sources=hits, usage=usage, timings=timings,
        invalid_citations=checked.invalid, attributed_citations=attributed, support=score, abstained=False,
        backend=generator.backend, model=generator.model,
    )


def _abstain(question: str, raw: str, hits: list[Hit], usage: Usage, timings: dict[str, float], generator: Generator, invalid: int) -> Answer:
    return Answer(
        question=question, text=ABSTAIN_TEXT, raw_text=raw, citations=[], sources=hits, usage=usage, timings=timings,
        invalid_citations=invalid, abstained=True, backend=generator.backend, model=generator.model,
    )
