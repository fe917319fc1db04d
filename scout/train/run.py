"""The `scout distill` and `scout finetune` pipelines: build data, train LoRA, save a loadable folder.

The output folder of a run contains the final LoRA adapter (loadable with
`scout ask --backend local --model OUT`), the tokenizer, `scout_training.json` (command,
configuration, data hashes, steps, losses, time), the training data under `data/`, the teacher
cache and `checkpoints/`. Running the same command again reuses the cached teacher outputs and
resumes from the last checkpoint.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scout.errors import ConfigError
from scout.generate.local import DEFAULT_MODEL
from scout.models import resolve_generator
from scout.train.data import (
    QUESTION_SOURCES,
    BuildReport,
    Corpus,
    chunk_questions,
    closed_book_examples,
    describe_file,
    document_examples,
    log_questions,
    mix_questions,
    reading_examples,
    teacher_examples,
    write_jsonl,
)
from scout.train.lora import TrainConfig, TrainResult, train_lora
from scout.train.teacher import TEACHER_BACKENDS, CachedTeacher, TeacherCache, make_teacher_generator

logger = logging.getLogger(__name__)

MANIFEST = "scout_training.json"
TEACHER_CACHE = "teacher_cache.jsonl"
MANIFEST_FORMAT = 1

DISTILL_MODES = ("sequence", "kl", "context")
DEFAULT_STUDENT = DEFAULT_MODEL
DEFAULT_ANTHROPIC_TEACHER = "claude-haiku-4-5"

CLOSED_BOOK_MAX_LENGTH = 256
# Scout's prompt with 2 passages of 400 characters comes to about 330 SmolLM2 tokens before the answer.
READING_MAX_LENGTH = 512


@dataclass
class RunOptions:
    """Settings both commands share: where the data comes from and goes, and how prompts are built.

    Prompts that read sources get `passages` retrieved passages of at most `max_source_chars`
    characters each, and a teacher answer is at most `answer_tokens` tokens long. `max_length`
    None sets `train.max_length` by the student's prompt: `CLOSED_BOOK_MAX_LENGTH` tokens for a
    student that reads only the question, `READING_MAX_LENGTH` for one that reads passages.
    """

    index: Path
    out: Path
    questions: int = 60
    passages: int = 2
    max_source_chars: int = 400
    answer_tokens: int = 64
    seed: int = 0
    max_length: int | None = None
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        counts = {"questions": self.questions, "passages": self.passages, "answer_tokens": self.answer_tokens, "max_source_chars": self.max_source_chars}
        for name, value in counts.items():
            if value < 1:
                raise ConfigError(f"invalid {name} {value!r}; expected a positive integer")


@dataclass
class DistillOptions(RunOptions):
    """Settings of `scout distill`.

    `mode` picks what the student reads and which loss it learns from:
    `sequence`: the teacher's prompt with passages, cross-entropy on the teacher's answer text.
    `kl`: the teacher's prompt, KL divergence to the teacher's token distributions; the teacher
    is a local model sharing the student's tokenizer. With the teacher equal to the student the
    student reads only the question, as in `context`, because with the same input it would
    already match the teacher.
    `context` (context distillation): the student reads only the question and learns what the
    teacher answers with the passages, by KL divergence when the teacher is a local model with
    the student's tokenizer, else by cross-entropy on the teacher's text.
    """

    mode: str = "context"
    teacher: str = "local"
    teacher_model: str | None = None
    student: str = DEFAULT_STUDENT
    question_source: str = "template"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in DISTILL_MODES:
            raise ConfigError(f"invalid mode {self.mode!r}; expected one of {DISTILL_MODES}")
        if self.teacher not in TEACHER_BACKENDS:
            raise ConfigError(f"invalid teacher {self.teacher!r}; expected one of {TEACHER_BACKENDS}")
        if self.question_source not in QUESTION_SOURCES:
            raise ConfigError(f"invalid question source {self.question_source!r}; expected one of {QUESTION_SOURCES}")
        if self.mode == "kl" and self.teacher != "local":
            raise ConfigError(
                "--mode kl needs the teacher's token probabilities, which only a local teacher provides; "
                "use --teacher local, or --mode sequence to learn from the Anthropic model's text"
            )

    @property
    def teacher_ref(self) -> str:
        if self.teacher_model:
            return self.teacher_model
        return DEFAULT_ANTHROPIC_TEACHER if self.teacher == "anthropic" else self.student


@dataclass
class FinetuneOptions(RunOptions):
    """Settings of `scout finetune`.

    `closed_book` trains the student to answer from the question alone, so the facts must end
    up in its weights. Otherwise the student reads retrieved passages and cites the one with the
    answer. `teacher` None extracts each answer from the corpus: the clicked document's
    best-matching sentence for a log question, the key sentence for a chunk question. With
    `local` or `anthropic`, that teacher writes the answers from retrieved passages. `pretrain`
    adds the text of the chunks the answers come from as plain language-modelling examples.
    """

    questions: int = 40
    closed_book: bool = True
    model: str = DEFAULT_STUDENT
    teacher: str | None = None
    teacher_model: str | None = None
    paraphrases: int = 2
    pretrain: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.teacher is not None and self.teacher not in TEACHER_BACKENDS:
            raise ConfigError(f"invalid teacher {self.teacher!r}; expected one of {TEACHER_BACKENDS} or none")
        if self.paraphrases < 0:
            raise ConfigError(f"invalid paraphrases {self.paraphrases!r}; expected 0 or more")


@dataclass
class TrainingRun:
    """The output folder of a finished run, its manifest and the training result."""

    out: Path
    manifest: dict[str, Any]
    result: TrainResult


# scout distill


def run_distill(options: DistillOptions, *, command: str = "", embedder=None, teacher_generator=None, progress: bool = True) -> TrainingRun:
    """Build distillation data from an index with a (cached) teacher and train a LoRA student.

    `embedder` replaces the index's embedder and `teacher_generator` the teacher's generator
    (tests pass fakes).
    """
    started = _Clock()
    out = _prepare_output(options.out)
    same_model = _same_model(options.teacher_ref, options.student) if options.teacher == "local" else False
    student_reads_passages = options.mode in ("sequence", "kl") and not same_model
    if options.mode == "kl" and same_model:
        logger.info("teacher and student are the same model, so --mode kl trains without passages (context distillation)")

    teacher = CachedTeacher(
        teacher_generator or make_teacher_generator(options.teacher, options.teacher_ref),
        TeacherCache(out / TEACHER_CACHE),
        max_tokens=options.answer_tokens,
    )
    report = BuildReport()
    with _open_index(options.index, embedder) as scout:
        corpus = Corpus(scout)
        question_teacher = teacher if options.question_source == "teacher" else None
        questions = _distill_questions(corpus, options, question_teacher)
        examples = teacher_examples(
            scout, corpus, questions, teacher, student_reads_passages=student_reads_passages,
            passages=options.passages, max_source_chars=options.max_source_chars, report=report, progress=progress,
        )
        index_summary = _index_summary(options.index, corpus)
    teacher_cost = {"name": teacher.name} | teacher.spent()
    # A local teacher keeps a second copy of a model in memory, so free it before the student loads.
    del teacher, teacher_generator
    gc.collect()

    data = _write_data(out, questions, examples)
    data_time = started.elapsed()
    loss = _distill_loss(options, student_reads_passages)
    train_config = _sized(options, loss, student_reads_passages)
    model, tokenizer, teacher_model = _load_models(options.student, options.teacher_ref if loss == "kl" and not same_model else None)
    result = train_lora(model, tokenizer, examples, train_config, output_dir=out, teacher_model=teacher_model, data_hash=data["train.jsonl"]["sha256"], progress=progress)

    manifest = _manifest(
        kind="distill", command=command, options=options, student=options.student,
        student_prompt="rag" if student_reads_passages else "closed_book", teacher=teacher_cost,
        loss=loss, train_config=train_config, index=index_summary, data=data | {TEACHER_CACHE: describe_file(out / TEACHER_CACHE)},
        report=report, result=result, data_time=data_time,
    )
    _save_final(out, result, tokenizer, options.student, manifest)
    return TrainingRun(out, manifest, result)


def _distill_questions(corpus: Corpus, options: DistillOptions, teacher: CachedTeacher | None):
    from_log = log_questions(corpus, with_answers=False)
    from_chunks = chunk_questions(corpus, options.questions, options.seed, teacher)
    return mix_questions(from_log, from_chunks, options.questions, options.seed)


def _distill_loss(options: DistillOptions, student_reads_passages: bool) -> str:
    if options.mode == "sequence":
        return "sequence"
    if options.mode == "kl":
        return "kl"
    # Context mode learns from the teacher's distributions when it can get them.
    if options.teacher == "local" and _shares_tokenizer(options.teacher_ref, options.student):
        return "kl"
    logger.info("context distillation from %s:%s trains on the teacher's text (no token probabilities)", options.teacher, options.teacher_ref)
    return "sequence"


# scout finetune


def run_finetune(options: FinetuneOptions, *, command: str = "", embedder=None, teacher_generator=None, progress: bool = True) -> TrainingRun:
    """Build question/answer pairs from an index and fine-tune the model on them with LoRA."""
    started = _Clock()
    out = _prepare_output(options.out)
    report = BuildReport()
    teacher = None
    if options.teacher is not None:
        teacher_ref = options.teacher_model or (DEFAULT_ANTHROPIC_TEACHER if options.teacher == "anthropic" else options.model)
        generator = teacher_generator or make_teacher_generator(options.teacher, teacher_ref)
        teacher = CachedTeacher(generator, TeacherCache(out / TEACHER_CACHE), max_tokens=options.answer_tokens)

    with _open_index(options.index, embedder) as scout:
        corpus = Corpus(scout)
        questions = _finetune_questions(corpus, options)
        examples = _finetune_examples(scout, corpus, questions, options, teacher, report, progress)
        index_summary = _index_summary(options.index, corpus)
    teacher_cost = {"name": teacher.name} | teacher.spent() if teacher else {"name": "none: answers extracted from the corpus"}
    del teacher, teacher_generator
    gc.collect()

    data = _write_data(out, questions, examples)
    data_time = started.elapsed()
    train_config = _sized(options, "sequence", not options.closed_book)
    model, tokenizer, _ = _load_models(options.model, None)
    result = train_lora(model, tokenizer, examples, train_config, output_dir=out, data_hash=data["train.jsonl"]["sha256"], progress=progress)

    manifest = _manifest(
        kind="finetune", command=command, options=options, student=options.model,
        student_prompt="closed_book" if options.closed_book else "rag", teacher=teacher_cost, loss="sequence",
        train_config=train_config, index=index_summary, data=data | {TEACHER_CACHE: describe_file(out / TEACHER_CACHE)},
        report=report, result=result, data_time=data_time,
    )
    _save_final(out, result, tokenizer, options.model, manifest)
    return TrainingRun(out, manifest, result)


def _finetune_questions(corpus: Corpus, options: FinetuneOptions):
    from_log = log_questions(corpus, with_answers=True)
    from_chunks = chunk_questions(corpus, options.questions, options.seed)
    return mix_questions(from_log, from_chunks, options.questions, options.seed)


def _finetune_examples(scout, corpus, questions, options: FinetuneOptions, teacher, report, progress):
    if teacher is not None:
        # The teacher's answers replace the extracted ones; paraphrases then vary its question.
        answered = teacher_examples(
            scout, corpus, questions, teacher, student_reads_passages=not options.closed_book,
            passages=options.passages, max_source_chars=options.max_source_chars, report=report, progress=progress,
        )
        examples = _with_paraphrases(answered, options.paraphrases)
    elif options.closed_book:
        examples = closed_book_examples(questions, options.paraphrases, report)
    else:
        examples = reading_examples(scout, corpus, questions, options.paraphrases, options.passages, options.max_source_chars, report)

    if options.pretrain:
        sources = [q.chunk_id or _chunk_id_of(corpus, q) for q in questions]
        documents = document_examples(corpus, [s for s in sources if s])
        report.by_origin["document"] += len(documents)
        report.examples += len(documents)
        examples = examples + documents
    return examples


def _with_paraphrases(examples, paraphrases: int):
    from scout.generate.base import Prompt
    from scout.train.examples import TrainingExample
    from scout.train.questions import paraphrase_question

    extended = list(examples)
    for example in examples:
        question = example.prompt.user.rsplit("Question: ", 1)[-1]
        for wording in paraphrase_question(question, paraphrases):
            prompt = Prompt(example.prompt.system, example.prompt.user[: -len(question)] + wording)
            extended.append(TrainingExample(prompt, example.target, None, "paraphrase"))
    return extended


def _chunk_id_of(corpus: Corpus, question) -> str | None:
    if not question.doc_id or not question.answer:
        return None
    chunk = corpus.chunk_of(question.doc_id, question.answer)
    return chunk.id if chunk else None


# Shared steps


def _prepare_output(out: Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} is a file; pass a folder for --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


class _open_index:
    """Open an existing index for reading, closing it on exit."""

    def __init__(self, path: Path, embedder) -> None:
        self.path, self.embedder = Path(path), embedder

    def __enter__(self):
        from scout.api import Scout

        self.scout = Scout.open(self.path, create=False, embedder=self.embedder)
        return self.scout

    def __exit__(self, *exc_info) -> None:
        self.scout.close()


def _index_summary(path: Path, corpus: Corpus) -> dict[str, Any]:
    return {
        "path": str(Path(path).resolve()),
        "documents": len(corpus.documents),
        "chunks": len(corpus.chunks),
        "restricted_chunks_left_out": corpus.restricted_chunks,
        "log_events": len(corpus.log),
    }


def _write_data(out: Path, questions, examples) -> dict[str, dict]:
    if not examples:
        raise ConfigError(
            "no training examples: the index has no usable questions, or the teacher abstained on all of them; "
            "check the index with `scout search`, or raise --questions"
        )
    return {
        "questions.jsonl": write_jsonl(out / "data" / "questions.jsonl", (q.to_dict() for q in questions)),
        "train.jsonl": write_jsonl(out / "data" / "train.jsonl", (e.to_dict() for e in examples)),
    }


def _sized(options: RunOptions, loss: str, student_reads_passages: bool) -> TrainConfig:
    """Return the training configuration with the loss and the student's maximum length set."""
    max_length = options.max_length or (READING_MAX_LENGTH if student_reads_passages else CLOSED_BOOK_MAX_LENGTH)
    return TrainConfig(**(options.train.to_dict() | {"loss": loss, "max_length": max_length}))


def _same_model(first: str, second: str) -> bool:
    return first == second or resolve_generator(first) == resolve_generator(second)


def _shares_tokenizer(teacher_ref: str, student_ref: str) -> bool:
    """Tell whether two models' tokenizers map the same strings to the same ids."""
    if _same_model(teacher_ref, student_ref):
        return True
    from transformers import AutoTokenizer

    teacher = AutoTokenizer.from_pretrained(resolve_generator(teacher_ref))
    student = AutoTokenizer.from_pretrained(resolve_generator(student_ref))
    return teacher.get_vocab() == student.get_vocab()


def _load_models(student_ref: str, teacher_ref: str | None):
    """Load the student in float32 for training, and a separate KL teacher when one is named."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    student_path = resolve_generator(student_ref)
    model = AutoModelForCausalLM.from_pretrained(student_path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(student_path)
    if teacher_ref is None:
        return model, tokenizer, None
    if not _shares_tokenizer(teacher_ref, student_ref):
        raise ConfigError(
            f"--mode kl needs a teacher with the student's tokenizer, but {teacher_ref!r} and {student_ref!r} differ; "
            "pick a pair of one family (Qwen2.5 1.5B and 0.5B), or use --mode sequence"
        )
    teacher = AutoModelForCausalLM.from_pretrained(resolve_generator(teacher_ref), dtype=torch.float32).eval()
    return model, tokenizer, teacher


class _Clock:
    """Wall and process CPU time since creation."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def elapsed(self) -> dict[str, float]:
        return {"wall_seconds": round(time.perf_counter() - self.wall, 1), "cpu_minutes": round((time.process_time() - self.cpu) / 60, 2)}


def _manifest(*, kind, command, options, student, student_prompt, teacher, loss, train_config, index, data, report, result: TrainResult, data_time) -> dict[str, Any]:
    """Describe a finished run for `scout_training.json`.

    `cpu_minutes` is what the checkpoint cost: training CPU time over all resumed runs plus the
    recorded CPU time of the teacher calls behind its data, including calls cached by earlier
    runs. Building the data (retrieval, templating) is left out of it and reported for this run
    alone under `data_build`.
    """
    import peft
    import torch
    import transformers

    from scout import __version__

    option_values = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items() if k != "train"}
    return {
        "format": MANIFEST_FORMAT,
        "kind": kind,
        "command": command,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "student": student,
        "student_prompt": student_prompt,
        "loss": loss,
        "teacher": teacher,
        "options": option_values,
        "train_config": train_config.to_dict(),
        "index": index,
        "data": data,
        "examples": report.to_dict() | {"trained": result.examples, "skipped_too_long": result.skipped_examples, "target_tokens": result.target_tokens},
        "steps": result.step,
        "losses": result.losses,
        "resumed_from_step": result.resumed_from,
        "train_wall_seconds": round(result.wall_seconds, 1),
        "train_cpu_minutes": round(result.cpu_minutes, 3),
        "seconds_per_step": round(result.wall_seconds / result.step, 2) if result.step else None,
        "cpu_minutes": round(result.cpu_minutes + teacher.get("cpu_minutes", 0.0), 3),
        "data_build": data_time,
        "torch_threads": torch.get_num_threads(),
        "versions": {"scout": __version__, "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }


def _save_final(out: Path, result: TrainResult, tokenizer, student_ref: str, manifest: dict[str, Any]) -> None:
    """Save the adapter where `LocalGenerator` loads it, naming the base model by its reference.

    The reference (a hub id, a packaged name or a path) is recorded instead of the converted
    cache folder the weights were loaded from, so the adapter loads on another machine too.
    """
    model = result.model
    for config in model.peft_config.values():
        config.base_model_name_or_path = student_ref
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    logger.info("saved adapter and %s to %s", MANIFEST, out)
