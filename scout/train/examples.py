"""Training examples, their prompts, and how they become token ids and labels.

A prompt is tokenized exactly as `LocalGenerator` tokenizes it at answer time (the chat template
with a generation prompt, or plain text ending in "Answer:" for a tokenizer without a template),
so a trained adapter sees the same text in training and in `scout ask`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from scout.generate.base import Prompt
from scout.generate.citations import CITATION
from scout.train.losses import IGNORE_INDEX

CLOSED_BOOK_SYSTEM_PROMPT = (
    "Answer the question from what you know, in one or two short sentences. "
    "If you do not know the answer, reply exactly: I don't know."
)


def closed_book_prompt(question: str) -> Prompt:
    """Build the prompt a closed-book model answers from: the question and no sources.

    Students trained with `--mode context` or `scout finetune --closed-book` are trained on this
    prompt, so evaluate them with it too.
    """
    return Prompt(system=CLOSED_BOOK_SYSTEM_PROMPT, user=f"Question: {question.strip()}")


def strip_citations(text: str) -> str:
    """Remove `[n]` citation markers, which mean nothing to a model that sees no numbered sources."""
    without = CITATION.sub("", text)
    return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", without)).strip()


# A sentence end: ., ! or ? after a word, optionally followed by citation markers, then a space
# or the end. A period after a one-digit number ("1." in a list) does not count.
_SENTENCE_END = re.compile(r"(?:(?<=[A-Za-z)\]\"'%])|(?<=\w\w))[.!?](?:\s*\[\d+(?:\s*,\s*\d+)*\])*(?=\s|$)")


def trim_to_sentence(text: str) -> str:
    """Cut text after its last complete sentence, so an output cut off at max_tokens ends cleanly.

    Text with no sentence end is returned stripped but otherwise unchanged.
    """
    text = text.strip()
    ends = list(_SENTENCE_END.finditer(text))
    if not ends:
        return text
    return text[: ends[-1].end()]


@dataclass(frozen=True)
class TrainingExample:
    """One training item: the student's prompt and the text it should produce.

    `prompt` None makes a plain language-modelling example (continued pretraining): no chat
    template, and every token of `target` is trained. `teacher_prompt` is what a KL teacher reads
    before the same target tokens; None means the teacher reads the student's prompt. `origin`
    records where the item came from (`log`, `template`, `paraphrase`, `cloze`, `document`).
    """

    prompt: Prompt | None
    target: str
    teacher_prompt: Prompt | None = None
    origin: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingExample:
        prompt = Prompt(**data["prompt"]) if data.get("prompt") else None
        teacher_prompt = Prompt(**data["teacher_prompt"]) if data.get("teacher_prompt") else None
        return cls(prompt=prompt, target=data["target"], teacher_prompt=teacher_prompt, origin=data.get("origin", ""))


@dataclass(frozen=True)
class EncodedExample:
    """Token ids with labels: `IGNORE_INDEX` on prompt tokens, the token id on target tokens.

    `teacher_input_ids` and `teacher_labels` are set for KL training. Both sides end with the same
    target tokens, so the i-th labelled token of the student is the i-th of the teacher.
    """

    input_ids: list[int]
    labels: list[int]
    teacher_input_ids: list[int] | None = None
    teacher_labels: list[int] | None = None

    @property
    def target_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


MIN_TARGET_TOKENS = 4
"""An example whose prompt leaves room for fewer target tokens than this is skipped."""


def encode_prompt(tokenizer, prompt: Prompt) -> list[int]:
    """Tokenize a prompt the way `LocalGenerator` does before it generates."""
    if tokenizer.chat_template:
        messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(f"{prompt.system}\n\n{prompt.user}\n\nAnswer:")["input_ids"]


def encode_target(tokenizer, target: str) -> list[int]:
    """Tokenize a target and end it with the end-of-sequence token, so the model learns to stop."""
    ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = ids + [tokenizer.eos_token_id]
    return ids


def encode_example(
    tokenizer, example: TrainingExample, max_length: int, teacher_max_length: int | None = None
) -> EncodedExample | None:
    """Encode an example, cutting the target to fit `max_length` tokens; None when it cannot fit.

    With `teacher_max_length` the teacher side is encoded as well, and the target is cut to fit
    both sides, so that they keep the same target tokens.
    """
    target_ids = encode_target(tokenizer, example.target)
    prompt_ids = encode_prompt(tokenizer, example.prompt) if example.prompt is not None else []
    room = max_length - len(prompt_ids)

    teacher_prompt_ids: list[int] | None = None
    if teacher_max_length is not None:
        teacher_prompt = example.teacher_prompt or example.prompt
        teacher_prompt_ids = encode_prompt(tokenizer, teacher_prompt) if teacher_prompt is not None else []
        room = min(room, teacher_max_length - len(teacher_prompt_ids))

    if room < min(MIN_TARGET_TOKENS, len(target_ids)):
        return None
    target_ids = target_ids[:room]

    encoded = _with_labels(prompt_ids, target_ids)
    if teacher_prompt_ids is None:
        return EncodedExample(*encoded)
    return EncodedExample(*encoded, *_with_labels(teacher_prompt_ids, target_ids))


def _with_labels(prompt_ids: list[int], target_ids: list[int]) -> tuple[list[int], list[int]]:
    return prompt_ids + target_ids, [IGNORE_INDEX] * len(prompt_ids) + target_ids


def collate(sequences: list[tuple[list[int], list[int]]], pad_token_id: int):
    """Right-pad (input ids, labels) pairs into `input_ids`, `attention_mask` and `labels` tensors."""
    import torch

    length = max(len(ids) for ids, _ in sequences)
    input_ids = torch.full((len(sequences), length), pad_token_id, dtype=torch.long)
    labels = torch.full((len(sequences), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, (ids, row_labels) in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(ids)] = torch.tensor(row_labels)
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def target_logits(logits, labels):
    """Select the logits that predict labelled tokens: a [tokens, vocab] tensor in batch order.

    The logits at position i predict the token at position i + 1, so row j of the result is the
    distribution over the j-th labelled token, counting row by row through the batch.
    """
    predicts_target = labels[:, 1:] != IGNORE_INDEX
    return logits[:, :-1, :][predicts_target]
