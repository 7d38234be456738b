"""The yes/no judge (the paper's kind): ask a causal LM, per pair, whether the document fits the query.

Prompt: ``prompts.YESNO_A`` (a profile queries an interaction) or ``YESNO_B`` (an interaction queries
a profile) as a user turn, rendered with the tokenizer's chat template and its generation prompt
(plain ``"...\\nAnswer:"`` text for a tokenizer without a template). Score: log-odds of the answer,
``logsumexp(logits[yes ids]) - logsumexp(logits[no ids])`` at the answer position, i.e.
``logit(yes) - logit(no)`` when each answer is one token.

Yes/no ids: for each variant word (``yes``, ``Yes``, `` yes``, `` Yes`` and the same for no), the
first token the tokenizer produces for it *right after the answer prompt* (encode ``prompt + word``
and take the first id past the prompt's ids; if the tokenizer merges across that boundary, the first
id of the word encoded alone). Distinct ids are kept; an id that starts both a yes and a no word (a
bare space token, in a tokenizer without merges for " yes") is dropped from both sides.

Efficient path: only the answer position's logits; the prompt up to the second text is the same for
every pair that shares the first text (the query, or the document when the template puts it first),
so it runs once and one copy of its KV cache serves all the other side's texts, packed into rows of
at most ``batch_tokens`` tokens (:func:`bump_profiles.judges.lm.run_packed`). With a single text on
the other side there is nothing to share, so full prompts are batched instead (left-padded,
length-sorted). The saving is the leading text's tokens times the number of texts it meets: a
template should put the longer text (the profile) first.
``score_naive`` is the plain one-pair-at-a-time forward it must equal (tested to 1e-4).
Not symmetric: the two directions ask different questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bump_profiles.errors import ModelError
from bump_profiles.judges import JudgeConfig, check_direction
from bump_profiles.judges.lm import (
    DOCUMENT_MARK,
    PromptParts,
    cut_prompt,
    encode,
    load_lm,
    pack_rows,
    pad_id,
    render_chat,
    run_batch,
    run_packed,
    run_prefix,
    token_batches,
)
from bump_profiles.profiles.prompts import YESNO_A, YESNO_B

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

YES_WORDS = ("yes", "Yes", " yes", " Yes")
NO_WORDS = ("no", "No", " no", " No")
PLAIN_ANSWER = "\nAnswer:"  # ends the prompt when the tokenizer has no chat template


def render(tokenizer: PreTrainedTokenizerBase, text: str) -> str:
    """``text`` as a user turn followed by the assistant's turn start, thinking off (or plain text + ``Answer:``)."""
    if tokenizer.chat_template:
        return render_chat(tokenizer, text)
    return text + PLAIN_ANSWER


def answer_token_ids(tokenizer: PreTrainedTokenizerBase, words: Sequence[str]) -> list[int]:
    """The first token of each word as the tokenizer encodes it right after the answer prompt."""
    prompt = render(tokenizer, "Answer yes or no.")
    prompt_ids = encode(tokenizer, prompt)
    ids: list[int] = []
    for word in words:
        joint = encode(tokenizer, prompt + word)
        if joint[: len(prompt_ids)] == prompt_ids and len(joint) > len(prompt_ids):
            token = joint[len(prompt_ids)]
        else:  # the tokenizer merged the word into the prompt's last token
            alone = encode(tokenizer, word)
            if not alone:
                raise ModelError(f"the judge tokenizer encodes the answer word {word!r} to no token")
            token = alone[0]
        if token not in ids:
            ids.append(token)
    return ids


@dataclass
class PairIds:
    """Prompt ids of a query x document matrix: ``prefixes[i] + continuations[i][j]`` is one prompt.

    Rows follow the text that comes first in the template (its prefix is shared): the queries, or the
    documents when ``swapped`` (then the matrix is transposed back to ``[query, document]``).
    """

    prefixes: list[list[int]]
    continuations: list[list[list[int]]]
    swapped: bool


class YesNoJudge:
    """Pointwise LLM judge: ``score[i, j]`` = log-odds that document j fits query i."""

    symmetric = False

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        batch_tokens: int = 4096,
        templates: dict[str, str] | None = None,
        yes_words: Sequence[str] = YES_WORDS,
        no_words: Sequence[str] = NO_WORDS,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_tokens = batch_tokens
        self.templates = templates or {"A": YESNO_A, "B": YESNO_B}
        yes_ids, no_ids = answer_token_ids(tokenizer, yes_words), answer_token_ids(tokenizer, no_words)
        shared = set(yes_ids) & set(no_ids)  # e.g. a bare space token: it says nothing about the answer
        self.yes_ids = [t for t in yes_ids if t not in shared]
        self.no_ids = [t for t in no_ids if t not in shared]
        if not self.yes_ids or not self.no_ids:
            raise ModelError(f"the judge tokenizer cannot tell yes from no: every first token is shared ({sorted(shared)})")
        self.pad_id = pad_id(tokenizer)

    # --- prompts ---------------------------------------------------------------------------------

    def query_leads(self, direction: str) -> bool:
        """Whether the query comes before the document in this direction's template."""
        template = self.templates[direction]
        return template.index("{query}") < template.index("{document}")

    def parts(self, lead: str, direction: str) -> PromptParts:
        """The prompt cut before its second text; ``lead`` fills the slot that comes first in the template."""
        slots = {"query": lead, "document": DOCUMENT_MARK} if self.query_leads(direction) else {"query": DOCUMENT_MARK, "document": lead}
        return cut_prompt(render(self.tokenizer, self.templates[direction].format(**slots)))

    def pair_ids(self, queries: Sequence[str], documents: Sequence[str], direction: str) -> PairIds:
        """Token ids of every prompt, as a shared prefix per leading text and a continuation per pair."""
        swapped = not self.query_leads(direction)
        leads, follows = (documents, queries) if swapped else (queries, documents)
        parts = [self.parts(text, direction) for text in leads]
        cache: dict[tuple[str, str, str], list[int]] = {}
        continuations = []
        for p in parts:
            row = []
            for text in follows:
                key = (p.gap, text, p.tail)  # the tail is the same for every lead of a direction
                if key not in cache:
                    cache[key] = encode(self.tokenizer, p.gap + text + p.tail)
                row.append(cache[key])
            continuations.append(row)
        return PairIds([encode(self.tokenizer, p.prefix) for p in parts], continuations, swapped)

    def answer_scores(self, last_logits: torch.Tensor) -> np.ndarray:
        """``[rows, vocab]`` answer-position logits -> log-odds of yes over no, float64."""
        import torch

        logits = last_logits.float()
        yes = torch.logsumexp(logits[:, self.yes_ids], dim=-1)
        no = torch.logsumexp(logits[:, self.no_ids], dim=-1)
        return (yes - no).double().cpu().numpy()

    # --- scoring ---------------------------------------------------------------------------------

    def score(self, queries: Sequence[str], documents: Sequence[str], direction: str) -> np.ndarray:
        import torch

        check_direction(direction)
        if not queries or not documents:
            return np.zeros((len(queries), len(documents)), dtype=np.float64)
        ids = self.pair_ids(queries, documents, direction)
        conts = ids.continuations
        out = np.zeros((len(conts), len(conts[0])), dtype=np.float64)  # [lead, follow]
        with torch.inference_mode():
            if out.shape[1] == 1:  # one text per lead: no prefix to share, batch full prompts
                seqs = [prefix + row[0] for prefix, row in zip(ids.prefixes, conts, strict=True)]
                for batch in token_batches([len(s) for s in seqs], self.batch_tokens):
                    logits = run_batch(self.model, [seqs[i] for i in batch], self.pad_id)
                    out[batch, 0] = self.answer_scores(logits[:, -1])
            else:
                for i, prefix_ids in enumerate(ids.prefixes):
                    prefix = run_prefix(self.model, prefix_ids)
                    for row in pack_rows([len(c) for c in conts[i]], self.batch_tokens):
                        logits = run_packed(self.model, prefix, [conts[i][j] for j in row], last_only=True)
                        out[i, row] = self.answer_scores(logits)
        return out.T if ids.swapped else out

    def score_naive(self, queries: Sequence[str], documents: Sequence[str], direction: str) -> np.ndarray:
        """The reference: one full forward per pair, no cache, no batching (for tests and benchmarks)."""
        import torch

        check_direction(direction)
        ids = self.pair_ids(queries, documents, direction)
        out = np.zeros((len(ids.prefixes), len(queries) if ids.swapped else len(documents)), dtype=np.float64)
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            for i, prefix_ids in enumerate(ids.prefixes):
                for j, cont in enumerate(ids.continuations[i]):
                    full = torch.tensor([prefix_ids + cont], device=device)
                    out[i, j] = self.answer_scores(self.model(input_ids=full).logits[:, -1])[0]
        return out.T if ids.swapped else out


def from_config(config: JudgeConfig, *, model: Any = None, tokenizer: Any = None) -> YesNoJudge:
    """A yes/no judge on the configured causal LM (bundled SmolLM2-135M by default)."""
    model, tokenizer = load_lm(config, model, tokenizer)
    return YesNoJudge(model, tokenizer, batch_tokens=config.batch_tokens)
