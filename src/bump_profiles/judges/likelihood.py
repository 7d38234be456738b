"""The likelihood judge: pointwise mutual information under a causal LM.

``score[i, j] = mean log p(document_j | LIKELIHOOD_CONTEXT(query_i)) - mean log p(document_j | LIKELIHOOD_NEUTRAL)``,
means over the document's tokens (plain text, no chat template). The neutral term removes how likely
a document is under any profile; it is computed once per document, not once per pair.

Symmetric by definition: the one quantity is "how much the profile raises the item's likelihood".
``score(profiles, items, "A")`` is that matrix, and ``score(items, profiles, "B")`` returns the same
matrix transposed (it scores the items given the profiles, not the profiles given the items), so the
reward serves both directions from one pass.

Efficient path: each query's prefix runs once and its KV cache serves every document, in right-padded,
length-sorted batches under the ``batch_tokens`` budget; the prefix's last logits give the first
document token's log-prob. ``score_naive`` is the plain one-pair-at-a-time forward it must equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bump_profiles.judges import JudgeConfig, check_direction
from bump_profiles.judges.lm import (
    DOCUMENT_MARK,
    PromptParts,
    cut_prompt,
    encode,
    load_lm,
    pad_id,
    run_batch,
    run_prefix,
    token_batches,
)
from bump_profiles.prompts import LIKELIHOOD_CONTEXT, LIKELIHOOD_NEUTRAL

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class LikelihoodJudge:
    """PMI judge: ``score[i, j]`` = how much query i (a profile) raises document j's (an item's) log-prob."""

    symmetric = True

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        batch_tokens: int = 4096,
        context: str = LIKELIHOOD_CONTEXT,
        neutral: str = LIKELIHOOD_NEUTRAL,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_tokens = batch_tokens
        self.context = context
        self.neutral = neutral
        self.pad_id = pad_id(tokenizer)

    def parts(self, query: str | None) -> PromptParts:
        """The conditional prompt for a query, or the neutral one for ``None``; the document is appended."""
        text = self.neutral if query is None else self.context.format(query=query)
        return cut_prompt(text + DOCUMENT_MARK)

    def score(self, queries: Sequence[str], documents: Sequence[str], direction: str) -> np.ndarray:
        check_direction(direction)
        if direction == "B":  # one matrix serves both directions: items given profiles, transposed
            return self.score(documents, queries, "A").T
        out = np.zeros((len(queries), len(documents)), dtype=np.float64)
        if not queries or not documents:
            return out
        neutral = self.mean_logprobs(self.parts(None), documents)
        for i, query in enumerate(queries):
            out[i] = self.mean_logprobs(self.parts(query), documents) - neutral
        return out

    def mean_logprobs(self, parts: PromptParts, documents: Sequence[str]) -> np.ndarray:
        """Mean token log-prob of each ``gap + document`` after the prefix: one prefix run, batched documents."""
        import torch

        prefix_ids = encode(self.tokenizer, parts.prefix, special=True)
        docs = [encode(self.tokenizer, parts.gap + d + parts.tail) for d in documents]
        out = np.zeros(len(docs), dtype=np.float64)
        with torch.inference_mode():
            prefix = run_prefix(self.model, prefix_ids)
            first = torch.log_softmax(prefix.last_logits.float(), dim=-1)
            for batch in token_batches([len(d) for d in docs], self.batch_tokens, fixed=prefix.length):
                seqs = [docs[j] for j in batch]
                logits = run_batch(self.model, seqs, self.pad_id, prefix=prefix, pad_left=False, logits_to_keep=0)
                for row, (j, seq) in enumerate(zip(batch, seqs, strict=True)):
                    out[j] = _mean_logprob(first, logits[row, : len(seq) - 1], seq)
        return out

    def score_naive(self, queries: Sequence[str], documents: Sequence[str], direction: str) -> np.ndarray:
        """The reference: one full forward per (prompt, document), no cache, no batching."""
        import torch

        check_direction(direction)
        if direction == "B":
            return self.score_naive(documents, queries, "A").T
        device = next(self.model.parameters()).device

        def mean_logprob(parts: PromptParts, document: str) -> float:
            prefix_ids = encode(self.tokenizer, parts.prefix, special=True)
            doc_ids = encode(self.tokenizer, parts.gap + document + parts.tail)
            logits = self.model(input_ids=torch.tensor([prefix_ids + doc_ids], device=device)).logits[0]
            first = torch.log_softmax(logits[len(prefix_ids) - 1].float(), dim=-1)
            return _mean_logprob(first, logits[len(prefix_ids) : -1], doc_ids)

        out = np.zeros((len(queries), len(documents)), dtype=np.float64)
        with torch.inference_mode():
            for i, query in enumerate(queries):
                for j, document in enumerate(documents):
                    out[i, j] = mean_logprob(self.parts(query), document) - mean_logprob(self.parts(None), document)
        return out


def _mean_logprob(first_logprobs: torch.Tensor, rest_logits: torch.Tensor, ids: Sequence[int]) -> float:
    """Mean log-prob of ``ids``: the first from the prefix's log-probs, the rest from ``rest_logits[t]`` -> ``ids[t+1]``."""
    import torch

    if not ids:  # nothing to score: no evidence either way
        return 0.0
    total = first_logprobs[ids[0]]
    if len(ids) > 1:
        logprobs = torch.log_softmax(rest_logits.float(), dim=-1)
        total = total + logprobs.gather(-1, torch.tensor(ids[1:], device=logprobs.device)[:, None]).sum()
    return float(total) / len(ids)


def from_config(config: JudgeConfig, *, model: Any = None, tokenizer: Any = None) -> LikelihoodJudge:
    """A likelihood (PMI) judge on the configured causal LM (bundled SmolLM2-135M by default)."""
    model, tokenizer = load_lm(config, model, tokenizer)
    return LikelihoodJudge(model, tokenizer, batch_tokens=config.batch_tokens)
