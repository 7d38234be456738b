"""The likelihood judge: pointwise mutual information under a causal LM.

``score[i, j] = mean log p(document_j | LIKELIHOOD_CONTEXT(query_i)) - mean log p(document_j | LIKELIHOOD_NEUTRAL)``,
means over the document's tokens (plain text, no chat template). The neutral term removes how likely
a document is under any profile; it is computed once per document, not once per pair.

Symmetric by definition: the one quantity is "how much the profile raises the item's likelihood".
``score(profiles, items, "A")`` is that matrix, and ``score(items, profiles, "B")`` returns the same
matrix transposed (it scores the items given the profiles, not the profiles given the items), so the
reward serves both directions from one pass.

Efficient path: each query's prefix runs once and one copy of its KV cache serves every document, the
documents packed into rows of at most ``batch_tokens`` tokens (:func:`bump_profiles.judges.lm.run_packed`);
the prefix's last logits give each document's first token's log-prob. ``score_naive`` is the plain
one-pair-at-a-time forward it must equal.
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
    pack_rows,
    run_packed,
    run_prefix,
)
from bump_profiles.profiles.prompts import LIKELIHOOD_CONTEXT, LIKELIHOOD_NEUTRAL

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
        """Mean token log-prob of each ``gap + document + tail`` after the prefix: one prefix run, documents packed."""
        import torch

        prefix_ids = encode(self.tokenizer, parts.prefix, special=True)
        docs = [encode(self.tokenizer, parts.gap + d + parts.tail) for d in documents]
        scored = [j for j, d in enumerate(docs) if d]  # an empty document scores 0: no evidence either way
        out = np.zeros(len(docs), dtype=np.float64)
        if not scored:
            return out
        with torch.inference_mode():
            prefix = run_prefix(self.model, prefix_ids)
            first = torch.log_softmax(prefix.last_logits.float(), dim=-1)
            for row in pack_rows([len(docs[j]) for j in scored], self.batch_tokens):
                seqs = [docs[scored[r]] for r in row]
                logits = run_packed(self.model, prefix, seqs)
                totals = _packed_logprob_sums(first, logits, seqs)
                for r, seq, total in zip(row, seqs, totals, strict=True):
                    out[scored[r]] = total / len(seq)
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


def _packed_logprob_sums(first_logprobs: torch.Tensor, logits: torch.Tensor, seqs: Sequence[Sequence[int]]) -> list[float]:
    """Summed log-probs of each non-empty sequence in ``seqs`` from its packed ``logits`` (row t predicts token
    t+1 of the same sequence; a sequence's last row predicts nothing) and, for its first token, ``first_logprobs``."""
    import torch

    ids = torch.tensor([t for s in seqs for t in s], device=logits.device)
    lengths = torch.tensor([len(s) for s in seqs], device=logits.device)
    ends = torch.cumsum(lengths, 0)
    starts = ends - lengths
    follows = torch.ones(len(ids), dtype=torch.bool, device=logits.device)
    follows[ends - 1] = False  # row t scores token t+1 unless t ends its sequence
    rows = logits[follows].float()
    logprobs = rows.gather(-1, ids[1:][follows[:-1]][:, None])[:, 0] - torch.logsumexp(rows, dim=-1)
    owner = torch.repeat_interleave(torch.arange(len(seqs), device=logits.device), lengths - 1)
    sums = first_logprobs[ids[starts]].double().index_add(0, owner, logprobs.double())
    return sums.tolist()


def from_config(config: JudgeConfig, *, model: Any = None, tokenizer: Any = None) -> LikelihoodJudge:
    """A likelihood (PMI) judge on the configured causal LM (bundled SmolLM2-135M by default)."""
    model, tokenizer = load_lm(config, model, tokenizer)
    return LikelihoodJudge(model, tokenizer, batch_tokens=config.batch_tokens)
