"""Machinery shared by the causal-LM judges (``yesno``, ``likelihood``).

A judge prompt is ``prefix + text + tail``, where the prefix holds everything before the per-pair
text (chat header, instructions, the text that comes first, usually the query) and is the same for
every pair that shares its first text. So the LLM judges run the prefix once, keep its KV cache, and
run the other side's texts packed on top of ONE copy of it (:func:`run_packed`): the texts are
concatenated into one row after the prefix, a 4-D attention mask lets each token see the prefix and
the earlier tokens of its own text only, and position ids restart at the prefix's length for each
text, so every token sees exactly what a one-pair-at-a-time forward would show it. (Batch rows
would each need their own copy of the prefix's cache: a 1,024-token profile copied once per item.)
Rows are filled up to a token budget (:func:`pack_rows`). Prompts without a shared prefix run in
length-sorted, padded batches (:func:`run_batch`).

Tokenisation: the prompt is tokenised as two pieces, prefix and ``gap + document + tail``, where
``gap`` is the whitespace just before the document (moved off the prefix so that BPE tokenisers,
which attach a space to the following word, see it where they would in the joint text). Both the
efficient and the naive paths use exactly these ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bump_profiles.engines.models import render_messages
from bump_profiles.judges import JudgeConfig

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def render_chat(tokenizer: PreTrainedTokenizerBase, text: str) -> str:
    """``text`` as one user turn followed by the assistant's turn start, thinking switched off
    (:func:`bump_profiles.engines.models.render_messages`)."""
    return render_messages(tokenizer, [{"role": "user", "content": text}])

# Stands for the per-pair text while a prompt is rendered, so the prompt can be cut around it.
DOCUMENT_MARK = "\ue000BUMP-DOCUMENT\ue000"


@dataclass(frozen=True)
class PromptParts:
    """A rendered prompt cut around its document: ``prefix + gap + document + tail``."""

    prefix: str
    gap: str
    tail: str


def cut_prompt(rendered: str) -> PromptParts:
    """Split a prompt rendered with ``DOCUMENT_MARK`` in place of the document."""
    start = rendered.index(DOCUMENT_MARK)
    before, tail = rendered[:start], rendered[start + len(DOCUMENT_MARK) :]
    prefix = before.rstrip()
    return PromptParts(prefix=prefix, gap=before[len(prefix) :], tail=tail)


def encode(tokenizer: PreTrainedTokenizerBase, text: str, *, special: bool = False) -> list[int]:
    """Token ids of ``text``; ``special`` adds the tokenizer's own BOS/EOS (plain-text prompts only)."""
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def token_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices grouped longest first so that ``rows * longest <= budget`` (at least one row each)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


@dataclass
class Prefix:
    """The KV cache of one prompt prefix, and its last-position logits (they predict the next token)."""

    layers: list[tuple[torch.Tensor, torch.Tensor]]
    length: int
    last_logits: torch.Tensor  # [vocab]


def model_device(model: PreTrainedModel) -> torch.device:
    return next(model.parameters()).device


def run_prefix(model: PreTrainedModel, ids: Sequence[int]) -> Prefix:
    """Run a prefix once and keep its cache for the batches that continue it."""
    import torch

    out = model(input_ids=torch.tensor([list(ids)], device=model_device(model)), use_cache=True, logits_to_keep=1)
    layers = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
    return Prefix(layers=layers, length=len(ids), last_logits=out.logits[0, -1])


def pack_rows(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive indices grouped so that each group's lengths sum to at most ``budget`` (at least one each)."""
    rows: list[list[int]] = []
    used = 0
    for i, n in enumerate(lengths):
        if rows and used + n <= budget:
            rows[-1].append(i)
            used += n
        else:
            rows.append([i])
            used = n
    return rows


def run_packed(model: PreTrainedModel, prefix: Prefix, seqs: Sequence[Sequence[int]], *, last_only: bool = False) -> torch.Tensor:
    """Logits of ``seqs`` (each non-empty) continuing ``prefix``, all packed in one row on one copy of its cache.

    Returns ``[total tokens, vocab]`` in packed order, or ``[len(seqs), vocab]`` at each sequence's
    last token with ``last_only``.
    """
    import torch
    from transformers import DynamicCache

    lengths = torch.tensor([len(s) for s in seqs])
    owner = torch.repeat_interleave(torch.arange(len(seqs)), lengths)
    starts = torch.cumsum(lengths, 0) - lengths
    step = torch.arange(int(lengths.sum())) - starts[owner]  # each token's index within its sequence
    own = (owner[:, None] == owner[None, :]) & (step[None, :] <= step[:, None])  # causal, within one sequence
    seen = torch.cat([own.new_ones((len(owner), prefix.length)), own], dim=1)
    dtype = prefix.layers[0][0].dtype
    mask = torch.zeros(seen.shape, dtype=dtype).masked_fill_(~seen, torch.finfo(dtype).min)  # additive: eager and SDPA
    device = model_device(model)
    keep = starts + lengths - 1 if last_only else torch.arange(len(owner))
    out = model(
        input_ids=torch.tensor([[t for s in seqs for t in s]], device=device),
        attention_mask=mask[None, None].to(device),
        position_ids=(prefix.length + step)[None].to(device),
        past_key_values=DynamicCache(ddp_cache_data=prefix.layers, config=model.config),
        use_cache=True,
        logits_to_keep=keep.to(device),
    )
    return out.logits[0]


def run_batch(
    model: PreTrainedModel,
    seqs: Sequence[Sequence[int]],
    pad_id: int,
    *,
    pad_left: bool = True,
    logits_to_keep: int = 1,
) -> torch.Tensor:
    """Logits ``[rows, kept, vocab]`` of a padded batch of whole prompts.

    Left padding puts every row's last token in the last column (read it with ``logits_to_keep=1``);
    right padding keeps token j of every row in column j (read all with ``logits_to_keep=0``).
    """
    import torch

    rows, width = len(seqs), max(len(s) for s in seqs)
    ids = torch.full((rows, width), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, width), dtype=torch.long)
    for i, seq in enumerate(seqs):
        cols = slice(width - len(seq), width) if pad_left else slice(0, len(seq))
        ids[i, cols] = torch.tensor(list(seq), dtype=torch.long)
        mask[i, cols] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    device = model_device(model)
    out = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=position_ids.to(device),
        use_cache=False,
        logits_to_keep=logits_to_keep,
    )
    return out.logits


def load_lm(config: JudgeConfig, model: Any, tokenizer: Any) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The configured causal LM and tokenizer, unless ready ones are injected; the model in eval mode."""
    from bump_profiles.engines.models import load_causal_lm, load_tokenizer

    if tokenizer is None:
        tokenizer = load_tokenizer(config.model_name)
    if model is None:
        model = load_causal_lm(config.model_name, dtype=config.dtype, device=config.device)
    model.eval()
    return model, tokenizer


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """Any id works for padding (the mask hides it); prefer the tokenizer's own."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0
