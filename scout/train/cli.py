"""The `scout distill` and `scout finetune` subcommands."""

from __future__ import annotations

import argparse
import shlex

from scout.errors import ConfigError
from scout.train.lora import TrainConfig
from scout.train.run import (
    CLOSED_BOOK_MAX_LENGTH,
    DEFAULT_STUDENT,
    DISTILL_MODES,
    READING_MAX_LENGTH,
    DistillOptions,
    FinetuneOptions,
    run_distill,
    run_finetune,
)

TRAIN_DEFAULTS = TrainConfig()


def add_commands(subparsers) -> None:
    """Add `distill` and `finetune` to the `scout` command's subparsers."""
    _add_distill(subparsers)
    _add_finetune(subparsers)


def _add_distill(subparsers) -> None:
    parser = subparsers.add_parser(
        "distill",
        help="train a small student with LoRA on a teacher's answers to questions about an index",
        description="Build questions from the index's search log and chunks, answer them with a teacher that reads "
        "retrieved passages (answers cached in OUT), and train a LoRA adapter on the student. Re-running the "
        "same command spends no teacher calls and resumes from the last checkpoint.",
    )
    _add_paths(parser)
    parser.add_argument("--mode", choices=DISTILL_MODES, default="context", help="sequence: learn the teacher's text with passages; kl: learn its token probabilities (same tokenizer); context: learn without passages what the teacher answers with them (default context)")
    parser.add_argument("--teacher", choices=["local", "anthropic"], default="local", help="teacher backend (default local; anthropic needs ANTHROPIC_API_KEY for uncached answers)")
    parser.add_argument("--teacher-model", help="teacher model reference (default: the student for local, claude-haiku-4-5 for anthropic)")
    parser.add_argument("--student", default=DEFAULT_STUDENT, help=f"student model reference (default {DEFAULT_STUDENT})")
    parser.add_argument("--questions", type=int, default=60, help="questions to build, about half from the search log (default 60)")
    parser.add_argument("--question-source", choices=["template", "teacher"], default="template", help="how chunk questions are written: templates over key sentences, or by the teacher (default template)")
    parser.add_argument("--temperature", type=float, default=TRAIN_DEFAULTS.temperature, help=f"softmax temperature of the KL loss (default {TRAIN_DEFAULTS.temperature})")
    _add_shared(parser)
    parser.set_defaults(handler=cmd_distill)


def _add_finetune(subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a small model with LoRA on question/answer pairs built from an index",
        description="Build question/answer pairs from the index (search-log questions answered from the clicked "
        "document, templated questions over key sentences, templated paraphrases) and train a LoRA adapter. "
        "With --closed-book the model sees only the question, so the facts must go into its weights.",
    )
    _add_paths(parser)
    parser.add_argument("--closed-book", action="store_true", help="train on the question alone (no passages); without it the model reads retrieved passages and cites them")
    parser.add_argument("--model", default=DEFAULT_STUDENT, help=f"model reference to fine-tune (default {DEFAULT_STUDENT})")
    parser.add_argument("--questions", type=int, default=40, help="question/answer pairs to build, about half from the search log (default 40)")
    parser.add_argument("--paraphrases", type=int, default=2, help="extra templated variants per pair: question rewordings, plus one statement to complete with --closed-book (default 2)")
    parser.add_argument("--pretrain", action="store_true", help="also train on the text of the chunks the answers come from (continued pretraining)")
    parser.add_argument("--teacher", choices=["local", "anthropic"], help="answer the questions with this teacher instead of extracting answers from the documents")
    parser.add_argument("--teacher-model", help="teacher model reference (default: the model itself for local, claude-haiku-4-5 for anthropic)")
    _add_shared(parser)
    parser.set_defaults(handler=cmd_finetune)


def _add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, help="index directory to build the training data from")
    parser.add_argument("--out", required=True, help="output folder: adapter, scout_training.json, data, teacher cache and checkpoints")


def _add_shared(parser: argparse.ArgumentParser) -> None:
    defaults = TRAIN_DEFAULTS
    parser.add_argument("--steps", type=int, default=defaults.steps, help=f"optimizer steps in total, counting resumed ones (default {defaults.steps})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"examples per step (default {defaults.batch_size})")
    parser.add_argument("--max-length", type=int, help=f"tokens per student sequence, prompt included (default {CLOSED_BOOK_MAX_LENGTH} without passages, {READING_MAX_LENGTH} with)")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help=f"AdamW learning rate (default {defaults.learning_rate})")
    parser.add_argument("--lora-rank", type=int, default=defaults.lora_rank, help=f"LoRA rank r (default {defaults.lora_rank}); alpha is twice the rank")
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every, help=f"save a resumable checkpoint every N steps (default {defaults.checkpoint_every})")
    parser.add_argument("--passages", type=int, default=2, help="retrieved passages in each prompt that reads sources (default 2)")
    parser.add_argument("--max-source-chars", type=int, default=400, help="characters kept of each passage (default 400)")
    parser.add_argument("--answer-tokens", type=int, default=64, help="maximum tokens of a teacher answer (default 64)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"seed for data sampling, LoRA initialisation and batch order (default {defaults.seed})")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _train_config(args, **extra) -> TrainConfig:
    return TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lora_rank=args.lora_rank,
        lora_alpha=2 * args.lora_rank,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        **extra,
    )


def cmd_distill(args) -> int:
    options = DistillOptions(
        index=args.index, out=args.out, mode=args.mode, teacher=args.teacher, teacher_model=args.teacher_model,
        student=args.student, questions=args.questions, question_source=args.question_source, passages=args.passages,
        max_source_chars=args.max_source_chars, answer_tokens=args.answer_tokens, seed=args.seed, max_length=args.max_length,
        train=_train_config(args, temperature=args.temperature),
    )
    run = run_distill(options, command=_command("distill", args), progress=not args.no_progress)
    _print_summary(run)
    return 0


def cmd_finetune(args) -> int:
    if args.teacher_model and not args.teacher:
        raise ConfigError("--teacher-model needs --teacher local or --teacher anthropic")
    options = FinetuneOptions(
        index=args.index, out=args.out, closed_book=args.closed_book, model=args.model, teacher=args.teacher,
        teacher_model=args.teacher_model, questions=args.questions, paraphrases=args.paraphrases, pretrain=args.pretrain,
        passages=args.passages, max_source_chars=args.max_source_chars, answer_tokens=args.answer_tokens, seed=args.seed,
        max_length=args.max_length, train=_train_config(args),
    )
    run = run_finetune(options, command=_command("finetune", args), progress=not args.no_progress)
    _print_summary(run)
    return 0


def _command(name: str, args) -> str:
    """Rebuild the command line from the parsed options, with every default written out."""
    words = ["scout", name]
    for key, value in sorted(vars(args).items()):
        if key in ("handler", "command", "verbose", "no_progress") or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        words.extend([flag] if value is True else [flag, str(value)])
    return shlex.join(words)


def _print_summary(run) -> None:
    manifest = run.manifest
    losses = manifest["losses"]
    first, last = (f"{losses[0]:.4f}", f"{losses[-1]:.4f}") if losses else ("-", "-")
    examples = manifest["examples"]
    teacher = manifest["teacher"]
    calls = f", {teacher['calls_this_run']} teacher calls this run" if "calls_this_run" in teacher else ""
    print(f"{manifest['kind']}: {examples['trained']} examples ({examples['by_origin']}){calls}")
    print(
        f"trained {manifest['steps']} steps ({manifest['loss']} loss {first} -> {last}) in "
        f"{manifest['train_wall_seconds'] / 60:.1f} min, {manifest['train_cpu_minutes']:.1f} CPU min"
    )
    print(f"adapter and scout_training.json saved to {run.out}")
    print(f"answer with it: scout ask --backend local --model {run.out} QUESTION")
