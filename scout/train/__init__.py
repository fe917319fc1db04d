"""Training small models on an index: distillation from a teacher and closed-book fine-tuning.

The pieces are small and usable alone: `kl_distillation_loss` and `sequence_loss`, the
`TrainingExample` encoding with prompt tokens masked, `train_lora` (a resumable LoRA loop),
and the teacher cache. `run_distill` and `run_finetune` combine them for the `scout distill`
and `scout finetune` commands.
"""

from scout.train.examples import TrainingExample, closed_book_prompt, encode_example
from scout.train.losses import IGNORE_INDEX, kl_distillation_loss, sequence_loss
from scout.train.lora import TrainConfig, TrainResult, train_lora
from scout.train.run import DistillOptions, FinetuneOptions, TrainingRun, run_distill, run_finetune
from scout.train.teacher import CachedTeacher, TeacherCache

__all__ = [
    "IGNORE_INDEX",
    "CachedTeacher",
    "DistillOptions",
    "FinetuneOptions",
    "TeacherCache",
    "TrainConfig",
    "TrainResult",
    "TrainingExample",
    "TrainingRun",
    "closed_book_prompt",
    "encode_example",
    "kl_distillation_loss",
    "run_distill",
    "run_finetune",
    "sequence_loss",
    "train_lora",
]
