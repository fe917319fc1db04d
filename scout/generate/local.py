"""A generator that runs a causal language model with transformers on the CPU."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from scout.errors import ConfigError, GeneratorError, ModelNotFoundError
from scout.generate.base import Prompt
from scout.models import PACKAGED_MODELS, resolve_generator
from scout.types import Usage

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


class LocalGenerator:
    """Generator backed by a local causal language model, decoding greedily on the CPU.

    `model` is a reference: a hub id, a packaged model such as `packaged:smollm2-135m-instruct`,
    a model folder, or a LoRA adapter folder saved by PEFT. The model loads on the first
    `stream` call or in `warm_up()`. `threads` sets `torch.set_num_threads`, which applies to
    the whole process.

    >>> import tempfile
    >>> from scout.testing.tiny_model import build_tiny_causal_lm
    >>> generator = LocalGenerator(str(build_tiny_causal_lm(tempfile.mkdtemp())))
    >>> pieces = list(generator.stream(Prompt("Answer briefly.", "Question: What is BM25?"), max_tokens=8))
    >>> pieces[-1].output_tokens
    8
    """

    backend = "local"

    def __init__(self, model: str = DEFAULT_MODEL, threads: int | None = None, repetition_penalty: float = 1.0) -> None:
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be a positive integer or None, got {threads!r}")
        if repetition_penalty <= 0:
            raise ConfigError(f"repetition_penalty must be > 0 (1.0 disables it), got {repetition_penalty!r}")
        self.model = model
        self.threads = threads
        self.repetition_penalty = float(repetition_penalty)
        self._loaded_model = None
        self._tokenizer = None
        self._load_lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model and tokenizer now instead of on the first `stream` call."""
        with self._load_lock:
            if self._loaded_model is None:
                self._loaded_model, self._tokenizer = _load(self.model, self.threads)

    def stream(self, prompt: Prompt, max_tokens: int) -> Iterator[str | Usage]:
        """Yield the generated text in pieces as it is decoded, then one `Usage`.

        Decoding runs in a background thread. It stops early when the caller closes the iterator.
        """
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        self.warm_up()
        inputs = self._encode(prompt)
        input_tokens = inputs["input_ids"].shape[1]
        self._check_context_length(input_tokens, max_tokens)

        worker = _DecodingThread(self._loaded_model, self._tokenizer, inputs, max_tokens, self.repetition_penalty)
        worker.start()
        try:
            for text in worker.streamer:
                if text:
                    yield text
        finally:
            worker.cancel.set()
            worker.join()

        if worker.error is not None:
            raise GeneratorError(f"local model {self.model!r} failed while generating: {worker.error}") from worker.error
        yield Usage(input_tokens=input_tokens, output_tokens=worker.output_tokens)

    def _encode(self, prompt: Prompt):
        """Tokenize with the tokenizer's chat template, or as plain text when it has none."""
        tokenizer = self._tokenizer
        if tokenizer.chat_template:
            messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            # The template already writes any special tokens the model expects.
            return tokenizer(text, return_tensors="pt", add_special_tokens=False)
        return tokenizer(f"{prompt.system}\n\n{prompt.user}\n\nAnswer:", return_tensors="pt")

    def _check_context_length(self, input_tokens: int, max_tokens: int) -> None:
        limit = getattr(self._loaded_model.config, "max_position_embeddings", None)
        if limit is not None and input_tokens + max_tokens > limit:
            raise GeneratorError(
                f"prompt of {input_tokens} tokens plus max_tokens={max_tokens} exceeds the {limit}-token "
                f"context of {self.model!r}; retrieve fewer or shorter sources, or lower max_tokens"
            )


class _DecodingThread(threading.Thread):
    """Runs greedy `generate` and feeds a `TextIteratorStreamer` that the caller reads."""

    def __init__(self, model, tokenizer, inputs, max_tokens: int, repetition_penalty: float) -> None:
        from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TextIteratorStreamer

        super().__init__(name="scout-local-generate", daemon=True)
        self.streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.cancel = threading.Event()
        self.output_tokens = 0
        self.error: Exception | None = None
        self._loaded_model = model
        self._inputs = inputs
        # The penalty skips the prompt's tokens. `repetition_penalty=` in generate() penalizes
        # them too, which lowers the score of every token in the sources the answer should copy.
        prompt_length = inputs["input_ids"].shape[1]
        penalty = RepetitionPenaltyLogitsProcessor(repetition_penalty, prompt_ignore_length=prompt_length)
        self._settings = {
            "max_new_tokens": max_tokens,
            "do_sample": False,
            "logits_processor": LogitsProcessorList([penalty] if repetition_penalty != 1.0 else []),
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        }

    def run(self) -> None:
        import torch

        try:
            with torch.inference_mode():
                sequences = self._loaded_model.generate(
                    **self._inputs,
                    **self._settings,
                    streamer=self.streamer,
                    stopping_criteria=_stop_when_set(self.cancel),
                )
            self.output_tokens = sequences.shape[1] - self._inputs["input_ids"].shape[1]
        except Exception as exc:  # stream() re-raises it in the caller's thread
            self.error = exc
            # Without the end signal the caller would wait on the streamer forever.
            self.streamer.end()


def _stop_when_set(event: threading.Event):
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopWhenSet(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StopWhenSet()])


def _load(ref: str, threads: int | None):
    """Load a model and its tokenizer on the CPU in eval mode."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    target = resolve_generator(ref)
    started = time.perf_counter()
    try:
        if (Path(target) / "adapter_config.json").is_file():
            model, tokenizer = _load_adapter(Path(target))
        else:
            model, tokenizer = _load_full(target)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"generator model {ref!r} could not be loaded from {target!r}: {exc}. Use a model folder, a LoRA "
            f"adapter folder saved by PEFT, a packaged model ({', '.join(sorted(PACKAGED_MODELS))}), "
            "or a hub id on a machine with network access"
        ) from exc
    logger.info("loaded generator %s from %s in %.1f s", ref, target, time.perf_counter() - started)
    return model.eval(), tokenizer


def _load_full(target: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(target)


def _load_adapter(folder: Path):
    """Load the base model an adapter names, apply the adapter and merge it into the weights.

    The tokenizer comes from the adapter folder when training saved one there, else from the base.
    """
    from peft import PeftConfig, PeftModel
    from transformers import AutoTokenizer

    base_ref = PeftConfig.from_pretrained(folder).base_model_name_or_path
    if not base_ref:
        raise ModelNotFoundError(
            f"LoRA adapter {str(folder)!r} names no base model; set base_model_name_or_path in its adapter_config.json"
        )
    model, tokenizer = _load_full(resolve_generator(base_ref))
    if (folder / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(folder)
    # Merging makes decoding as fast as with the base model alone.
    return PeftModel.from_pretrained(model, folder).merge_and_unload(), tokenizer
