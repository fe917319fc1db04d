"""A tiny random-weight causal language model for tests, built offline in well under a second.

Its output is noise, but it runs the same code paths as a real model: a byte-level BPE
tokenizer with special tokens and a chat template, a Llama architecture, `save_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

SEED = 0

# ChatML, the format SmolLM2 and Qwen2.5 use.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

TRAINING_SENTENCES = [
    "The capital of Australia is Canberra.",
    "Paris is the capital of France and lies on the Seine.",
    "BM25 ranks documents by term frequency and inverse document frequency.",
    "Dense retrieval embeds the question and the passages in one vector space.",
    "Reciprocal rank fusion adds one over k plus the rank from each retriever.",
    "Answer the question using only the numbered sources, and cite them like [1].",
    "If the sources do not contain the answer, reply: I don't know.",
    "Question: What is the capital of Australia? Answer: Canberra [1].",
    "A small model reads the sources and writes a short answer with citations.",
    "The quick brown fox jumps over the lazy dog 0123456789 times!",
]


def build_tiny_causal_lm(folder: str | Path, vocab_size: int = 512) -> Path:
    """Build and save a 2-layer Llama model with hidden size 64 and a BPE tokenizer into `folder`.

    The weights come from a fixed seed, so two builds write the same model. Returns the folder,
    which `AutoModelForCausalLM.from_pretrained` and `LocalGenerator` load.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(vocab_size)
    model = _random_llama(tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_tokenizer(vocab_size: int = 512):
    """Train a byte-level BPE tokenizer on `TRAINING_SENTENCES` and wrap it for transformers.

    Byte-level BPE encodes any text without an unknown token, like the GPT-2 family.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(TRAINING_SENTENCES, trainer=trainer)

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )


def _random_llama(tokenizer):
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        # At the usual 0.02 a model this small predicts one token over and over. At 0.2 greedy
        # decoding varies, so streaming tests see many distinct pieces.
        initializer_range=0.2,
    )
    # fork_rng restores the caller's random state, so building the model changes no other test.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    return model.eval()
