"""LocalGenerator on a tiny random-weight model, and on the real packaged SmolLM2 (slow)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from scout.errors import ConfigError, GeneratorError, ModelNotFoundError
from scout.generate.base import Generator, Prompt
from scout.generate.local import LocalGenerator
from scout.generate.prompt import build_prompt
from scout.models import resolve_generator
from scout.types import Hit, Usage

PROMPT = Prompt(
    system="Answer only from the numbered sources and cite them.",
    user="<sources>\n[1] The capital of Australia is Canberra.\n</sources>\n\nQuestion: What is the capital of Australia?",
)


def split_stream(generator: LocalGenerator, prompt: Prompt = PROMPT, max_tokens: int = 24) -> tuple[list[str], Usage]:
    """Consume a stream, check that exactly one Usage comes last, and return the text pieces and it."""
    items = list(generator.stream(prompt, max_tokens=max_tokens))
    usages = [item for item in items if isinstance(item, Usage)]
    assert len(usages) == 1
    assert items[-1] is usages[0]
    return items[:-1], usages[0]


def reference_generation(
    folder: Path, text: str, max_tokens: int, add_special_tokens: bool, repetition_penalty: float = 1.1
) -> tuple[int, int, str]:
    """Greedy-decode with plain transformers calls: prompt tokens, new tokens and the decoded text.

    The repetition penalty skips the prompt, as transformers documents for `prompt_ignore_length`.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, RepetitionPenaltyLogitsProcessor

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=add_special_tokens)
    prompt_length = inputs["input_ids"].shape[1]
    penalty = RepetitionPenaltyLogitsProcessor(repetition_penalty, prompt_ignore_length=prompt_length)
    with torch.inference_mode():
        sequences = model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False, logits_processor=[penalty])
    new_tokens = sequences[0, prompt_length:]
    return prompt_length, len(new_tokens), tokenizer.decode(new_tokens, skip_special_tokens=True)


def chat_text(folder: Path, prompt: Prompt) -> str:
    from transformers import AutoTokenizer

    messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]
    return AutoTokenizer.from_pretrained(folder).apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@pytest.fixture(scope="module")
def tiny_generator(tiny_model_dir: Path) -> LocalGenerator:
    generator = LocalGenerator(str(tiny_model_dir))
    generator.warm_up()
    return generator


class TestLocalGeneratorTinyModel:
    def test_implements_generator_protocol(self, tiny_model_dir):
        generator = LocalGenerator(str(tiny_model_dir))

        assert isinstance(generator, Generator)
        assert generator.backend == "local"
        assert generator.model == str(tiny_model_dir)

    def test_streams_pieces_then_usage(self, tiny_generator):
        pieces, usage = split_stream(tiny_generator)

        assert len(pieces) >= 3
        assert all(isinstance(piece, str) and piece for piece in pieces)
        assert usage.output_tokens > 0

    def test_matches_plain_generate_call(self, tiny_generator, tiny_model_dir):
        pieces, usage = split_stream(tiny_generator, max_tokens=24)

        prompt_length, new_tokens, text = reference_generation(
            tiny_model_dir, chat_text(tiny_model_dir, PROMPT), max_tokens=24, add_special_tokens=False
        )
        assert usage.input_tokens == prompt_length
        assert usage.output_tokens == new_tokens
        assert "".join(pieces) == text

    @pytest.mark.parametrize("repetition_penalty", [1.0, 1.5])
    def test_repetition_penalty_skips_prompt(self, tiny_model_dir, repetition_penalty):
        generator = LocalGenerator(str(tiny_model_dir), repetition_penalty=repetition_penalty)
        pieces, usage = split_stream(generator, max_tokens=24)

        _, new_tokens, text = reference_generation(
            tiny_model_dir,
            chat_text(tiny_model_dir, PROMPT),
            max_tokens=24,
            add_special_tokens=False,
            repetition_penalty=repetition_penalty,
        )
        assert usage.output_tokens == new_tokens
        assert "".join(pieces) == text

    def test_deterministic_across_runs(self, tiny_model_dir):
        first = split_stream(LocalGenerator(str(tiny_model_dir)))
        second = split_stream(LocalGenerator(str(tiny_model_dir)))

        assert first == second

    def test_plain_prompt_without_chat_template(self, tiny_model_dir, tmp_path):
        folder = shutil.copytree(tiny_model_dir, tmp_path / "no-template")
        (folder / "chat_template.jinja").unlink()

        pieces, usage = split_stream(LocalGenerator(str(folder)), max_tokens=8)

        plain = f"{PROMPT.system}\n\n{PROMPT.user}\n\nAnswer:"
        prompt_length, new_tokens, text = reference_generation(folder, plain, max_tokens=8, add_special_tokens=True)
        assert usage.input_tokens == prompt_length
        assert usage.output_tokens == new_tokens
        assert "".join(pieces) == text

    def test_lora_adapter_folder(self, tiny_model_dir, tiny_generator, tmp_path):
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        # init_lora_weights=False starts B random instead of zero, so the adapter changes the output.
        config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(base, config).save_pretrained(tmp_path / "adapter")

        adapted, _ = split_stream(LocalGenerator(str(tmp_path / "adapter")))
        original, _ = split_stream(tiny_generator)

        assert adapted
        assert adapted != original

    def test_early_close_frees_generator(self, tiny_generator):
        stream = tiny_generator.stream(PROMPT, max_tokens=2000)
        assert isinstance(next(stream), str)
        stream.close()

        pieces, usage = split_stream(tiny_generator, max_tokens=4)
        assert usage.output_tokens == 4

    def test_prompt_over_context_rejected(self, tiny_generator):
        with pytest.raises(GeneratorError, match="exceeds the 4096-token context"):
            list(tiny_generator.stream(PROMPT, max_tokens=5000))

    @pytest.mark.parametrize("max_tokens", [0, -1])
    def test_invalid_max_tokens_rejected(self, tiny_generator, max_tokens):
        with pytest.raises(ConfigError, match="max_tokens"):
            list(tiny_generator.stream(PROMPT, max_tokens=max_tokens))

    def test_invalid_constructor_arguments(self):
        with pytest.raises(ConfigError, match="threads"):
            LocalGenerator(threads=0)
        with pytest.raises(ConfigError, match="repetition_penalty"):
            LocalGenerator(repetition_penalty=0.0)


class TestLocalGeneratorErrors:
    def test_constructor_loads_nothing(self, tmp_path):
        generator = LocalGenerator(str(tmp_path / "missing"))

        assert generator.model == str(tmp_path / "missing")

    def test_missing_folder_raises_not_found(self, tmp_path):
        ref = str(tmp_path / "missing")

        with pytest.raises(ModelNotFoundError) as caught:
            LocalGenerator(ref).warm_up()

        assert repr(ref) in str(caught.value)
        assert "packaged model" in str(caught.value)

    def test_empty_folder_raises_not_found(self, tmp_path):
        with pytest.raises(ModelNotFoundError, match="could not be loaded"):
            LocalGenerator(str(tmp_path)).warm_up()

    def test_adapter_without_base_raises(self, tmp_path):
        (tmp_path / "adapter_config.json").write_text('{"peft_type": "LORA", "base_model_name_or_path": null}')

        with pytest.raises(ModelNotFoundError, match="names no base model"):
            LocalGenerator(str(tmp_path)).warm_up()


@pytest.mark.slow
class TestPackagedSmolLM2:
    def test_answers_simple_fact(self, smollm2_cache_dir, monkeypatch):
        monkeypatch.setenv("SCOUT_CACHE_DIR", str(smollm2_cache_dir))
        source = Hit(
            chunk_id="geo#0", doc_id="geo", title="", text="The capital of Australia is Canberra.", start=0, end=37, score=1.0
        )
        prompt = build_prompt("What is the capital of Australia?", [source])

        pieces, usage = split_stream(LocalGenerator("packaged:smollm2-135m-instruct"), prompt, max_tokens=48)

        assert "Canberra" in "".join(pieces)
        assert usage.input_tokens > 50
        assert 0 < usage.output_tokens <= 48

    def test_cached_conversion_reused(self, smollm2_cache_dir, monkeypatch):
        monkeypatch.setenv("SCOUT_CACHE_DIR", str(smollm2_cache_dir))
        folder = Path(resolve_generator("HuggingFaceTB/SmolLM2-135M-Instruct"))
        weights_written = (folder / "model.safetensors").stat().st_mtime_ns

        started = time.perf_counter()
        again = Path(resolve_generator("smollm2-135m-instruct"))

        assert again == folder
        assert time.perf_counter() - started < 5.0
        assert (folder / "model.safetensors").stat().st_mtime_ns == weights_written
        assert [path.name for path in folder.parent.glob(".*.staging")] == []
