"""Test doubles shared by the test files: tiny random models built locally (no download) and a
deterministic fake judge. They live under tests/ because the library never uses them at run time.

Fixtures built from them are in ``conftest.py``; test files import the classes from here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from bump_profiles.profiles.stats import words

REPO = Path(__file__).resolve().parents[1]


def load_script(relative: str):
    """A benchmark or script of the repository as a module (``benchmarks/`` and ``scripts/`` are no packages)."""
    import importlib.util

    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class OverlapJudge:
    """Score = number of shared words; records every call so tests can see what reached it."""

    def __init__(self, symmetric: bool = True, poison: str | None = None):
        self.symmetric = symmetric
        self.poison = poison
        self.calls: list[tuple[list[str], list[str], str]] = []

    def score(self, queries, documents, direction):
        self.calls.append((list(queries), list(documents), direction))
        out = np.array([[len(set(words(q)) & set(words(d))) for d in documents] for q in queries], dtype=np.float64)
        if self.poison is not None:
            for i, q in enumerate(queries):
                if self.poison in q:
                    out[i, 0] = np.nan
        return out


# --- tiny random models (no download) ---------------------------------------------------------------

TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tiny_tokenizer(extra_corpus: list[str] | None = None, vocab_size: int = 400) -> PreTrainedTokenizerBase:
    """A byte-level BPE tokenizer trained in milliseconds on a small corpus, with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from bump_profiles.data.synthetic import TOPICS

    corpus = [" ".join(words) for words in TOPICS.values()] + [
        "yes no the a user profile writes reads likes prefers interests style paper review article",
    ] + list(extra_corpus or [])
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        bos_token="<|endoftext|>",
        pad_token="<pad>",
        padding_side="left",
    )
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def tiny_causal_lm(tokenizer: PreTrainedTokenizerBase | None = None, *, seed: int = 0, hidden_size: int = 32, layers: int = 2) -> PreTrainedModel:
    """A random Llama-architecture model sized for unit tests (a few thousand parameters)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tokenizer or tiny_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    return model


def varied_tiny_lm(tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """A tiny random model whose greedy texts differ with the prompt: the plain one writes the same blank
    token whatever it reads, so a test comparing its outputs could not fail."""
    import torch

    model = tiny_causal_lm(tokenizer)
    noise = torch.Generator().manual_seed(1)
    for weight in model.parameters():
        weight.data += torch.randn(weight.shape, generator=noise) * 0.5
    return model


def save_tiny(path: str | Path, *, seed: int = 0, varied: bool = False) -> Path:
    """Write a tiny random model and its tokenizer to ``path`` (loadable by path like any model);
    ``varied``: :func:`varied_tiny_lm`, whose texts differ with the prompt."""
    path = Path(path)
    tok = tiny_tokenizer()
    (varied_tiny_lm(tok) if varied else tiny_causal_lm(tok, seed=seed)).save_pretrained(path)
    tok.save_pretrained(path)
    return path
