"""A LoRA training loop on the CPU with checkpoints that a re-run resumes from.

>>> import tempfile
>>> from transformers import AutoModelForCausalLM, AutoTokenizer
>>> from scout.testing.tiny_model import build_tiny_causal_lm
>>> folder = build_tiny_causal_lm(tempfile.mkdtemp())
>>> model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
>>> examples = [TrainingExample(Prompt("Answer briefly.", "Question: What is the capital of Australia?"), "Canberra.")]
>>> result = train_lora(model, tokenizer, examples, TrainConfig(steps=3, batch_size=1), progress=False)
>>> result.step, len(result.losses)
(3, 3)
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scout.errors import ConfigError
from scout.generate.base import Prompt
from scout.train.checkpoint import Checkpoint, latest_checkpoint, save_checkpoint
from scout.train.examples import EncodedExample, TrainingExample, collate, encode_example, target_logits
from scout.train.losses import kl_distillation_loss, sequence_loss

logger = logging.getLogger(__name__)

LOSSES = ("sequence", "kl")


@dataclass
class TrainConfig:
    """Settings of one LoRA training run; lengths are in tokens.

    `loss` is `sequence` (cross-entropy on the target tokens) or `kl` (KL divergence to a
    teacher's token distributions at `temperature`). `teacher_max_length` bounds the teacher's
    sequence, which is longer than the student's when the teacher reads passages. The learning
    rate rises linearly over `warmup_steps` and then stays constant, so raising `steps` on a
    re-run continues the same schedule. `target_modules="all-linear"` puts LoRA on every linear
    layer except the output head.
    """

    steps: int = 30
    batch_size: int = 4
    max_length: int = 256
    teacher_max_length: int = 512
    learning_rate: float = 2e-4
    warmup_steps: int = 3
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    loss: str = "sequence"
    temperature: float = 1.0
    checkpoint_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        positive = {
            "steps": self.steps,
            "batch_size": self.batch_size,
            "max_length": self.max_length,
            "teacher_max_length": self.teacher_max_length,
            "lora_rank": self.lora_rank,
            "checkpoint_every": self.checkpoint_every,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"invalid {name} {value!r}; expected a positive integer")
        if self.loss not in LOSSES:
            raise ConfigError(f"invalid loss {self.loss!r}; expected one of {LOSSES}")
        if self.learning_rate <= 0 or self.temperature <= 0:
            raise ConfigError(
                f"learning_rate ({self.learning_rate!r}) and temperature ({self.temperature!r}) must be above 0"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resume_key(self) -> dict[str, Any]:
        """The settings a checkpoint must share with a run that resumes it (all but `steps`)."""
        settings = self.to_dict()
        settings.pop("steps")
        settings.pop("checkpoint_every")
        return settings


@dataclass
class TrainResult:
    """The outcome of a training run: the trained model, its step, the loss of every step and the time.

    `losses` covers every step since step 0, including steps of earlier runs that this one
    resumed. `wall_seconds` and `cpu_seconds` also add up all runs; `cpu_seconds` is process CPU
    time, which counts every thread. `resumed_from` is the step this run started at.
    """

    model: Any
    step: int
    losses: list[float]
    wall_seconds: float
    cpu_seconds: float
    resumed_from: int = 0
    examples: int = 0
    skipped_examples: int = 0
    target_tokens: int = 0
    checkpoint: str | None = None

    @property
    def cpu_minutes(self) -> float:
        return self.cpu_seconds / 60


def train_lora(
    model,
    tokenizer,
    examples: list[TrainingExample],
    config: TrainConfig,
    *,
    output_dir: str | Path | None = None,
    teacher_model=None,
    data_hash: str = "",
    progress: bool = True,
) -> TrainResult:
    """Train LoRA adapters on `model` and return the adapted model with its losses and time.

    `model` is a transformers causal LM; it is wrapped with a new LoRA adapter unless it is a
    PEFT model already. With `config.loss == "kl"`, the teacher's logits come from
    `teacher_model`, or, when that is None, from `model` itself with the adapter switched off
    (one model with and without context).

    With `output_dir`, a checkpoint is saved every `config.checkpoint_every` steps and at the
    end, and a later call with the same `output_dir` resumes from the last one. `data_hash`
    identifies the training data, so a checkpoint made from other data is rejected.
    """
    import torch

    config.validate()
    encoded, skipped = _encode_all(tokenizer, examples, config)
    # The seed fixes the LoRA initialisation and dropout; a resumed run restores both instead.
    torch.manual_seed(config.seed)
    model = _with_lora(model, config)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_then_constant(config.warmup_steps))

    state = _resume(model, optimizer, scheduler, output_dir, config, data_hash)
    if state.step >= config.steps:
        logger.info("checkpoint in %s is at step %d of %d; nothing left to train", output_dir, state.step, config.steps)

    run = _Run(model, tokenizer, encoded, config, teacher_model, optimizer, scheduler, state)
    checkpoint = run.train(output_dir, data_hash, progress)
    return TrainResult(
        model=model,
        step=state.step,
        losses=state.losses,
        wall_seconds=state.wall_seconds,
        cpu_seconds=state.cpu_seconds,
        resumed_from=run.started_at,
        examples=len(encoded),
        skipped_examples=skipped,
        target_tokens=sum(e.target_tokens for e in encoded),
        checkpoint=checkpoint,
    )


def _encode_all(tokenizer, examples: list[TrainingExample], config: TrainConfig) -> tuple[list[EncodedExample], int]:
    teacher_length = config.teacher_max_length if config.loss == "kl" else None
    encoded = [encode_example(tokenizer, e, config.max_length, teacher_length) for e in examples]
    fitting = [e for e in encoded if e is not None]
    skipped = len(encoded) - len(fitting)
    if skipped:
        logger.warning(
            "skipped %d of %d examples whose prompt leaves no room for the target within max_length=%d; "
            "raise max_length or shorten the prompts",
            skipped,
            len(encoded),
            config.max_length,
        )
    if not fitting:
        raise ConfigError(
            f"no training example fits in max_length={config.max_length} tokens "
            f"(of {len(examples)} examples); raise max_length or shorten the prompts"
        )
    return fitting, skipped


def _with_lora(model, config: TrainConfig):
    from peft import LoraConfig, PeftModel, get_peft_model

    if isinstance(model, PeftModel):
        return model
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _warmup_then_constant(warmup_steps: int):
    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0

    return factor


def _resume(model, optimizer, scheduler, output_dir, config: TrainConfig, data_hash: str) -> Checkpoint:
    if output_dir is None:
        return Checkpoint()
    found = latest_checkpoint(Path(output_dir))
    if found is None:
        return Checkpoint()
    state = found.load(model, optimizer, scheduler)
    _check_compatible(found.path, state, config, data_hash)
    logger.info("resuming from %s at step %d", found.path, state.step)
    return state


def _check_compatible(path: Path, state: Checkpoint, config: TrainConfig, data_hash: str) -> None:
    fix = f"use another output folder, or delete {path.parent} to start again"
    if state.config != config.resume_key():
        changed = sorted(k for k, v in config.resume_key().items() if state.config.get(k) != v)
        raise ConfigError(f"checkpoint {path} was trained with other settings ({', '.join(changed)} differ); {fix}")
    if state.data_hash != data_hash:
        raise ConfigError(
            f"checkpoint {path} was trained on other data (sha256 {state.data_hash[:12]}, now {data_hash[:12]}); {fix}"
        )


class _Run:
    """The steps of one training run, from the resumed step to `config.steps`."""

    def __init__(self, model, tokenizer, encoded, config, teacher_model, optimizer, scheduler, state: Checkpoint) -> None:
        self.model = model
        self.encoded = encoded
        self.config = config
        self.teacher_model = teacher_model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.state = state
        self.started_at = state.step
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def train(self, output_dir, data_hash: str, progress: bool) -> str | None:
        """Run the remaining steps; return the folder of the last checkpoint saved, if any."""
        from tqdm.auto import tqdm

        saved = None
        self.model.train()
        bar = tqdm(total=self.config.steps, initial=self.state.step, desc="train", unit="step", disable=not progress)
        with bar:
            while self.state.step < self.config.steps:
                loss = self._timed_step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                if output_dir is not None and self._checkpoint_due():
                    saved = str(self._save(Path(output_dir), data_hash))
        return saved

    def _timed_step(self) -> float:
        wall, cpu = time.perf_counter(), time.process_time()
        loss = self._step()
        self.state.wall_seconds += time.perf_counter() - wall
        self.state.cpu_seconds += time.process_time() - cpu
        return loss

    def _step(self) -> float:
        import torch

        batch = [self.encoded[i] for i in batch_indices(self.state.step, len(self.encoded), self.config.batch_size, self.config.seed)]
        loss = self._loss(batch)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"training loss is {loss.item()} at step {self.state.step + 1}; lower learning_rate (now {self.config.learning_rate})"
            )
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

        self.state.step += 1
        self.state.losses.append(round(loss.item(), 6))
        return loss.item()

    def _loss(self, batch: list[EncodedExample]):
        student = collate([(e.input_ids, e.labels) for e in batch], self.pad_token_id)
        logits = self.model(input_ids=student["input_ids"], attention_mask=student["attention_mask"]).logits
        if self.config.loss == "sequence":
            return sequence_loss(logits, student["labels"])

        teacher = collate([(e.teacher_input_ids, e.teacher_labels) for e in batch], self.pad_token_id)
        teacher_rows = target_logits(self._teacher_logits(teacher), teacher["labels"])
        student_rows = target_logits(logits, student["labels"])
        return kl_distillation_loss(student_rows, teacher_rows, temperature=self.config.temperature)

    def _teacher_logits(self, batch):
        import torch

        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        with torch.no_grad():
            if self.teacher_model is not None:
                return self.teacher_model(**inputs).logits
            with self.model.disable_adapter():
                return self.model(**inputs).logits

    def _checkpoint_due(self) -> bool:
        return self.state.step % self.config.checkpoint_every == 0 or self.state.step == self.config.steps

    def _save(self, output_dir: Path, data_hash: str) -> Path:
        self.state.config = self.config.resume_key()
        self.state.data_hash = data_hash
        return save_checkpoint(output_dir, self.model, self.optimizer, self.scheduler, self.state)


def batch_indices(step: int, count: int, batch_size: int, seed: int) -> list[int]:
    """Return the example indices of the batch at `step` (0-based).

    The examples are visited in a fresh random order each epoch, seeded by (seed, epoch), so a
    resumed run sees the same batches as an uninterrupted one.
    """
    indices = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, count)
        indices.append(_epoch_order(count, seed, epoch)[offset])
    return indices


def _epoch_order(count: int, seed: int, epoch: int) -> list[int]:
    order = list(range(count))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return order
