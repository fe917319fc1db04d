"""Training: losses against hand computations, the LoRA loop on a tiny model, the teacher cache,
checkpoints that resume and load through LocalGenerator, and 2 real steps on SmolLM2 (slow)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from scout.errors import ConfigError
from scout.generate.base import Prompt
from scout.generate.local import LocalGenerator
from scout.testing.fakes import FakeGenerator
from scout.train import (
    IGNORE_INDEX,
    TrainConfig,
    TrainingExample,
    closed_book_prompt,
    encode_example,
    kl_distillation_loss,
    sequence_loss,
    train_lora,
)
from scout.train.examples import strip_citations, trim_to_sentence
from scout.train.lora import batch_indices
from scout.train.run import DistillOptions, FinetuneOptions, run_distill, run_finetune
from scout.train.teacher import CachedTeacher, CallCost, TeacherCache
from scout.types import Usage

EXAMPLE = TrainingExample(
    prompt=Prompt("Answer briefly.", "Question: What is the capital of Australia?"),
    target="The capital of Australia is Canberra.",
)

SEARCH_LOG = (
    '{"query": "What is the capital of France?", "clicked_doc_id": "paris"}\n'
    '{"query": "Which landmark is in Berlin?", "clicked_doc_id": "berlin"}\n'
    '{"query": "What is the capital of France?", "clicked_doc_id": "paris"}\n'
    '{"query": "How long should I wash my hands?", "clicked_doc_id": "faq/handwashing"}\n'
)


def load_tiny(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


class CountingTeacher:
    """FakeGenerator's extractive answers, counting how often it is called."""

    backend = "fake"
    model = "fake-extractive"

    def __init__(self) -> None:
        self.calls = 0

    def stream(self, prompt: Prompt, max_tokens: int):
        self.calls += 1
        yield from FakeGenerator().stream(prompt, max_tokens)


@pytest.fixture
def fake_index(tmp_path: Path, tiny_corpus: Path) -> Path:
    """An index of the tiny corpus and a search log, built with the deterministic fake embedder."""
    from scout import IndexConfig, Scout
    from scout.testing.fakes import FakeEmbedder

    (tiny_corpus / "search_log.jsonl").write_text(SEARCH_LOG, encoding="utf-8")
    path = tmp_path / "index"
    with Scout.open(path, config=IndexConfig.for_embedder("fake", 64), embedder=FakeEmbedder(64)) as scout:
        scout.ingest([tiny_corpus], progress=False)
    return path


def fake_embedder():
    from scout.testing.fakes import FakeEmbedder

    return FakeEmbedder(64)


def test_public_api_is_pinned():
    import scout.train

    assert scout.train.__all__ == [
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
    assert all(hasattr(scout.train, name) for name in scout.train.__all__)


# Losses


def test_kl_loss_zero_for_equal_logits():
    import torch

    logits = torch.randn(2, 5, 7)
    assert kl_distillation_loss(logits, logits.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_distillation_loss(logits, logits.clone(), temperature=2.0).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_loss_matches_hand_computation():
    import torch

    teacher = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    student = torch.log(torch.tensor([[0.25, 0.5, 0.25]]))
    # KL(p || q) = 0.5 ln(0.5 / 0.25) + 0.25 ln(0.25 / 0.5) + 0.25 ln(1) = 0.25 ln 2
    expected = 0.5 * math.log(2) + 0.25 * math.log(0.5)

    assert kl_distillation_loss(student, teacher).item() == pytest.approx(expected, rel=1e-5)
    assert kl_distillation_loss(student, teacher).item() == pytest.approx(0.25 * math.log(2), rel=1e-5)
    assert kl_distillation_loss(teacher, student).item() > 0


def test_kl_loss_temperature_by_hand():
    import torch

    teacher_logits, student_logits = [2.0, 0.0, -1.0], [0.0, 1.0, 0.0]
    temperature = 2.0

    def softmax(values):
        exps = [math.exp(v / temperature) for v in values]
        return [e / sum(exps) for e in exps]

    p, q = softmax(teacher_logits), softmax(student_logits)
    expected = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q)) * temperature**2

    loss = kl_distillation_loss(torch.tensor([student_logits]), torch.tensor([teacher_logits]), temperature=temperature)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_kl_loss_averages_unmasked_tokens_only():
    import torch

    teacher = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.98, 0.01, 0.01]]]))
    student = torch.log(torch.tensor([[[0.25, 0.5, 0.25], [0.01, 0.01, 0.98]]]))
    mask = torch.tensor([[1, 0]])

    assert kl_distillation_loss(student, teacher, mask).item() == pytest.approx(0.25 * math.log(2), rel=1e-5)


def test_kl_loss_rejects_shape_mismatch():
    import torch

    with pytest.raises(ValueError, match="differ in shape"):
        kl_distillation_loss(torch.zeros(1, 3), torch.zeros(1, 4))


def test_sequence_loss_ignores_prompt_tokens():
    import torch

    torch.manual_seed(0)
    logits = torch.randn(1, 4, 5)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 3, 1]])
    # Positions 1 and 2 predict the labels at positions 2 and 3.
    expected = -(torch.log_softmax(logits[0, 1], -1)[3] + torch.log_softmax(logits[0, 2], -1)[1]) / 2

    assert sequence_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-5)


# Encoding


def test_encode_example_masks_prompt(tiny_model_dir):
    _, tokenizer = load_tiny(tiny_model_dir)
    encoded = encode_example(tokenizer, EXAMPLE, max_length=256)
    target = tokenizer(EXAMPLE.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]

    prompt_length = len(encoded.input_ids) - len(target)
    assert encoded.labels[:prompt_length] == [IGNORE_INDEX] * prompt_length
    assert encoded.labels[prompt_length:] == target
    assert encoded.input_ids[prompt_length:] == target


def test_encode_prompt_matches_local_generator(tiny_model_dir):
    generator = LocalGenerator(str(tiny_model_dir))
    generator.warm_up()
    encoded = encode_example(generator._tokenizer, EXAMPLE, max_length=256)
    at_answer_time = generator._encode(EXAMPLE.prompt)["input_ids"][0].tolist()

    assert encoded.input_ids[: len(at_answer_time)] == at_answer_time


def test_encode_example_cuts_target_to_fit(tiny_model_dir):
    _, tokenizer = load_tiny(tiny_model_dir)
    full = encode_example(tokenizer, EXAMPLE, max_length=256)
    prompt_length = len(full.input_ids) - full.target_tokens

    cut = encode_example(tokenizer, EXAMPLE, max_length=prompt_length + 5)
    assert len(cut.input_ids) == prompt_length + 5
    assert cut.target_tokens == 5
    assert encode_example(tokenizer, EXAMPLE, max_length=prompt_length + 2) is None


def test_encode_example_aligns_teacher_targets(tiny_model_dir):
    _, tokenizer = load_tiny(tiny_model_dir)
    example = TrainingExample(
        closed_book_prompt("What is the capital of Australia?"),
        "Canberra.",
        teacher_prompt=Prompt("Answer from the sources.", "[1] The capital of Australia is Canberra.\n\nQuestion: What is the capital of Australia?"),
    )
    encoded = encode_example(tokenizer, example, max_length=256, teacher_max_length=256)

    student_targets = [t for t in encoded.labels if t != IGNORE_INDEX]
    teacher_targets = [t for t in encoded.teacher_labels if t != IGNORE_INDEX]
    assert student_targets == teacher_targets
    assert encoded.teacher_input_ids[-len(student_targets):] == student_targets
    assert encoded.teacher_input_ids != encoded.input_ids


def test_strip_citations():
    assert strip_citations("Canberra is the capital [1]. It lies inland [2, 3].") == "Canberra is the capital. It lies inland."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Canberra is the capital. It lies in", "Canberra is the capital."),
        ("Canberra is the capital [1]. It lies [2", "Canberra is the capital [1]."),
        ("Steps:\n1. Wash your hands. 2. Wear a", "Steps:\n1. Wash your hands."),
        ("It rose 1.5 times in 2014. The next", "It rose 1.5 times in 2014."),
        ("No sentence end here", "No sentence end here"),
        ("Complete answer.", "Complete answer."),
    ],
)
def test_trim_to_sentence(text, expected):
    assert trim_to_sentence(text) == expected


# The LoRA loop


def test_lora_steps_lower_loss(tiny_model_dir):
    model, tokenizer = load_tiny(tiny_model_dir)
    config = TrainConfig(steps=8, batch_size=2, learning_rate=1e-2, warmup_steps=1)
    result = train_lora(model, tokenizer, [EXAMPLE], config, progress=False)

    assert result.step == 8
    assert len(result.losses) == 8
    assert result.losses[-1] < result.losses[0] / 2
    assert result.wall_seconds > 0
    assert result.cpu_seconds > 0
    trainable = [name for name, p in result.model.named_parameters() if p.requires_grad]
    assert trainable
    assert all("lora_" in name for name in trainable)


def test_kl_training_with_adapter_off_teacher(tiny_model_dir):
    model, tokenizer = load_tiny(tiny_model_dir)
    example = TrainingExample(
        closed_book_prompt("What is the capital of Australia?"),
        "The capital of Australia is Canberra.",
        teacher_prompt=Prompt("Answer from the sources.", "[1] The capital of Australia is Canberra.\n\nQuestion: What is the capital of Australia?"),
    )
    config = TrainConfig(steps=6, batch_size=1, learning_rate=1e-2, warmup_steps=1, loss="kl")
    result = train_lora(model, tokenizer, [example], config, progress=False)

    assert result.losses[0] > 0
    assert result.losses[-1] < result.losses[0]


def test_resume_continues_from_saved_step(tiny_model_dir, tmp_path):
    examples = [EXAMPLE, TrainingExample(Prompt("Answer briefly.", "Question: Where is Paris?"), "Paris is in France.")]
    uninterrupted = train_lora(*load_tiny(tiny_model_dir), examples, TrainConfig(steps=6, batch_size=1), progress=False)

    first = train_lora(*load_tiny(tiny_model_dir), examples, TrainConfig(steps=4, batch_size=1, checkpoint_every=2), output_dir=tmp_path, data_hash="d", progress=False)
    assert first.checkpoint == str(tmp_path / "checkpoints" / "step-000004")
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-000004"]

    resumed = train_lora(*load_tiny(tiny_model_dir), examples, TrainConfig(steps=6, batch_size=1, checkpoint_every=2), output_dir=tmp_path, data_hash="d", progress=False)
    assert resumed.resumed_from == 4
    assert resumed.step == 6
    assert resumed.losses[:4] == first.losses
    assert resumed.losses == pytest.approx(uninterrupted.losses, rel=1e-4)
    assert resumed.wall_seconds > first.wall_seconds


def test_resume_rejects_other_settings_or_data(tiny_model_dir, tmp_path):
    train_lora(*load_tiny(tiny_model_dir), [EXAMPLE], TrainConfig(steps=2, batch_size=1), output_dir=tmp_path, data_hash="d", progress=False)

    with pytest.raises(ConfigError, match="learning_rate"):
        train_lora(*load_tiny(tiny_model_dir), [EXAMPLE], TrainConfig(steps=3, batch_size=1, learning_rate=1e-3), output_dir=tmp_path, data_hash="d", progress=False)
    with pytest.raises(ConfigError, match="other data"):
        train_lora(*load_tiny(tiny_model_dir), [EXAMPLE], TrainConfig(steps=3, batch_size=1), output_dir=tmp_path, data_hash="e", progress=False)


def test_batches_visit_every_example_each_epoch():
    order = [i for step in range(3) for i in batch_indices(step, 6, 2, seed=0)]
    assert sorted(order) == list(range(6))
    assert batch_indices(4, 6, 2, seed=0) == batch_indices(4, 6, 2, seed=0)


def test_train_config_rejects_invalid_values():
    with pytest.raises(ConfigError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ConfigError, match="loss"):
        TrainConfig(loss="mse")


def test_no_example_fits_is_an_error(tiny_model_dir):
    with pytest.raises(ConfigError, match="no training example fits"):
        train_lora(*load_tiny(tiny_model_dir), [EXAMPLE], TrainConfig(steps=1, max_length=8), progress=False)


# The teacher cache


def test_teacher_cache_survives_reload(tmp_path):
    path = tmp_path / "cache.jsonl"
    generator = CountingTeacher()
    prompt = Prompt("Cite.", "[1] Paris is in France.\n\nQuestion: Where is Paris?")

    first = CachedTeacher(generator, TeacherCache(path), max_tokens=32)
    assert first.complete(prompt) == "Paris is in France. [1]"
    assert first.usage == Usage(input_tokens=len(prompt.system.split()) + len(prompt.user.split()), output_tokens=5)

    second = CachedTeacher(generator, TeacherCache(path), max_tokens=32)
    assert second.complete(prompt) == "Paris is in France. [1]"
    assert generator.calls == 1
    assert second.calls == 0
    spent = second.spent()
    assert spent["outputs"] == 1
    assert spent["calls_this_run"] == 0
    assert spent["unrecorded"] == 0
    assert second.cache.cost(next(iter(second.used_keys))).cpu_seconds >= 0
    assert second.complete(prompt, max_tokens=16) == "Paris is in France. [1]"
    assert generator.calls == 2


def test_teacher_cache_skips_cut_line(tmp_path):
    path = tmp_path / "cache.jsonl"
    path.write_text('{"key": "a", "output": "kept"}\n{"key": "b", "outp', encoding="utf-8")
    cache = TeacherCache(path)

    assert cache.get("a") == "kept"
    assert cache.get("b") is None
    assert cache.cost("a") == CallCost()


# scout distill and scout finetune on a tiny model


def test_distill_second_run_calls_teacher_zero_times(fake_index, tiny_model_dir, tmp_path):
    out = tmp_path / "distilled"
    options = DistillOptions(index=fake_index, out=out, student=str(tiny_model_dir), questions=6, train=TrainConfig(steps=2, batch_size=2))
    teacher = CountingTeacher()
    first = run_distill(options, embedder=fake_embedder(), teacher_generator=teacher, progress=False)
    calls_after_first = teacher.calls

    second_teacher = CountingTeacher()
    second = run_distill(options, embedder=fake_embedder(), teacher_generator=second_teacher, progress=False)

    assert calls_after_first == first.manifest["examples"]["questions"]
    assert calls_after_first > 0
    assert second_teacher.calls == 0
    assert second.manifest["teacher"]["calls_this_run"] == 0
    assert second.manifest["teacher"]["outputs"] == calls_after_first
    assert second.manifest["teacher"]["cpu_minutes"] == first.manifest["teacher"]["cpu_minutes"]
    assert second.manifest["data"]["train.jsonl"] == first.manifest["data"]["train.jsonl"]


def test_distill_context_mode_trains_closed_book_with_kl(fake_index, tiny_model_dir, tmp_path):
    out = tmp_path / "distilled"
    options = DistillOptions(index=fake_index, out=out, student=str(tiny_model_dir), questions=6, train=TrainConfig(steps=2, batch_size=2))
    run = run_distill(options, embedder=fake_embedder(), teacher_generator=CountingTeacher(), progress=False)

    assert run.manifest["loss"] == "kl"
    assert run.manifest["student_prompt"] == "closed_book"
    assert run.manifest["train_config"]["max_length"] == 256
    rows = [json.loads(line) for line in (out / "data" / "train.jsonl").read_text().splitlines()]
    assert rows
    assert all(row["prompt"]["system"] == closed_book_prompt("x").system for row in rows)
    assert all("<sources>" in row["teacher_prompt"]["user"] for row in rows)
    assert all("[1]" not in row["target"] for row in rows)


def test_distill_sequence_mode_student_reads_passages(fake_index, tiny_model_dir, tmp_path):
    options = DistillOptions(
        index=fake_index, out=tmp_path / "out", mode="sequence", teacher_model="fake-teacher", student=str(tiny_model_dir),
        questions=4, max_source_chars=120, max_length=1024, train=TrainConfig(steps=1, batch_size=2),
    )
    run = run_distill(options, embedder=fake_embedder(), teacher_generator=CountingTeacher(), progress=False)

    assert run.manifest["loss"] == "sequence"
    assert run.manifest["student_prompt"] == "rag"
    assert run.manifest["train_config"]["max_length"] == 1024


def test_reading_student_gets_longer_default(fake_index, tiny_model_dir, tmp_path):
    options = DistillOptions(
        index=fake_index, out=tmp_path / "out", mode="sequence", teacher_model="fake-teacher", student=str(tiny_model_dir),
        questions=2, max_source_chars=40, train=TrainConfig(steps=1, batch_size=1),
    )
    run = run_distill(options, embedder=fake_embedder(), teacher_generator=CountingTeacher(), progress=False)

    assert run.manifest["train_config"]["max_length"] == 512


def test_distill_kl_mode_rejects_anthropic_teacher(tmp_path):
    with pytest.raises(ConfigError, match="token probabilities"):
        DistillOptions(index=tmp_path, out=tmp_path / "out", mode="kl", teacher="anthropic")


def test_options_reject_invalid_counts(tmp_path):
    with pytest.raises(ConfigError, match="invalid questions 0"):
        DistillOptions(index=tmp_path, out=tmp_path / "out", questions=0)
    with pytest.raises(ConfigError, match="invalid paraphrases -1"):
        FinetuneOptions(index=tmp_path, out=tmp_path / "out", paraphrases=-1)


def test_saved_adapter_loads_through_local_generator(fake_index, tiny_model_dir, tmp_path):
    out = tmp_path / "finetuned"
    options = FinetuneOptions(index=fake_index, out=out, model=str(tiny_model_dir), questions=4, train=TrainConfig(steps=2, batch_size=2))
    run_finetune(options, embedder=fake_embedder(), progress=False)

    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(tiny_model_dir)
    generator = LocalGenerator(str(out))
    pieces = list(generator.stream(closed_book_prompt("What is the capital of France?"), max_tokens=6))
    assert isinstance(pieces[-1], Usage)
    assert pieces[-1].output_tokens > 0


def test_finetune_manifest_records_run(fake_index, tiny_model_dir, tmp_path):
    import hashlib

    out = tmp_path / "finetuned"
    options = FinetuneOptions(index=fake_index, out=out, model=str(tiny_model_dir), questions=4, pretrain=True, train=TrainConfig(steps=3, batch_size=2))
    run_finetune(options, command="scout finetune --closed-book", embedder=fake_embedder(), progress=False)
    manifest = json.loads((out / "scout_training.json").read_text())

    assert manifest["command"] == "scout finetune --closed-book"
    assert manifest["kind"] == "finetune"
    assert manifest["student_prompt"] == "closed_book"
    assert manifest["steps"] == 3
    assert len(manifest["losses"]) == 3
    assert manifest["train_cpu_minutes"] >= 0
    assert manifest["cpu_minutes"] == manifest["train_cpu_minutes"]
    assert manifest["data_build"]["wall_seconds"] > 0
    assert manifest["train_config"]["steps"] == 3
    train_bytes = (out / "data" / "train.jsonl").read_bytes()
    assert manifest["data"]["train.jsonl"]["sha256"] == hashlib.sha256(train_bytes).hexdigest()
    origins = manifest["examples"]["by_origin"]
    assert origins["paraphrase"] > 0
    assert origins["cloze"] > 0
    assert origins["document"] > 0


def test_finetune_reading_examples_cite_answer_source(fake_index, tiny_model_dir, tmp_path):
    out = tmp_path / "reading"
    options = FinetuneOptions(index=fake_index, out=out, closed_book=False, model=str(tiny_model_dir), questions=4, paraphrases=1, max_source_chars=120, max_length=1024, train=TrainConfig(steps=1, batch_size=2))
    run = run_finetune(options, embedder=fake_embedder(), progress=False)
    rows = [json.loads(line) for line in (out / "data" / "train.jsonl").read_text().splitlines()]

    assert run.manifest["student_prompt"] == "rag"
    assert rows
    for row in rows:
        number = int(row["target"].rsplit("[", 1)[1].rstrip("]"))
        assert f"[{number}] " in row["prompt"]["user"]


# The command line


def test_cli_registers_train_commands(tmp_path):
    from scout.cli import build_parser

    args = build_parser().parse_args(["distill", "--index", "i", "--out", str(tmp_path)])
    assert (args.mode, args.steps, args.batch_size, args.max_length) == ("context", 30, 4, None)
    args = build_parser().parse_args(["finetune", "--closed-book", "--index", "i", "--out", str(tmp_path), "--pretrain"])
    assert args.closed_book
    assert args.pretrain


def test_cli_reports_missing_index(tmp_path, capsys):
    from scout.cli import main

    code = main(["finetune", "--closed-book", "--index", str(tmp_path / "missing"), "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 2
    assert "missing" in capsys.readouterr().err


# Real model (slow)


@pytest.mark.slow
def test_two_lora_steps_on_smollm2(smollm2_cache_dir, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from scout.models import resolve_generator

    monkeypatch.setenv("SCOUT_CACHE_DIR", str(smollm2_cache_dir))
    folder = resolve_generator("packaged:smollm2-135m-instruct")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    examples = [
        EXAMPLE,
        TrainingExample(closed_book_prompt("What is a novel coronavirus?"), "A novel coronavirus is a new coronavirus that has not been identified before."),
    ]
    result = train_lora(model, tokenizer, examples, TrainConfig(steps=2, batch_size=2), progress=False)

    assert result.step == 2
    assert all(math.isfinite(loss) and loss > 0 for loss in result.losses)
    assert result.wall_seconds < 300
