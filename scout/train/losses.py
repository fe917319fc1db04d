"""Training losses: cross-entropy on target tokens and KL divergence to a teacher's distributions."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100
"""Label of a token that no loss is computed on (the prompt, padding), as in `torch.nn.CrossEntropyLoss`."""


def sequence_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Compute the mean next-token cross-entropy over the tokens whose label is not `IGNORE_INDEX`.

    `logits` is [batch, length, vocab] and `labels` [batch, length], aligned with the input ids:
    the logits at position i predict the label at position i + 1.
    """
    import torch.nn.functional as F

    predicted = logits[:, :-1, :].reshape(-1, logits.shape[-1])
    expected = labels[:, 1:].reshape(-1)
    return F.cross_entropy(predicted.float(), expected, ignore_index=IGNORE_INDEX)


def kl_distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Compute the forward KL divergence KL(teacher || student) per token, averaged over the mask.

    Both distributions are softmax(logits / temperature) over the last dimension. The result is
    multiplied by temperature**2 so that its gradients keep their scale as the temperature changes
    (Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", arXiv:1503.02531).
    `mask` has the logits' shape without the vocabulary dimension, and a true or 1 entry counts
    that token. The loss is zero when the student's logits equal the teacher's.
    """
    import torch
    import torch.nn.functional as F

    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ in "
            "shape; both models must score the same target tokens with the same vocabulary"
        )

    student_log_probs = F.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    per_token = (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(dim=-1)

    if mask is None:
        mask = torch.ones_like(per_token)
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0) * temperature**2
