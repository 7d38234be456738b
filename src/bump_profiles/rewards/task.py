"""The prior-work comparator: reward a profile by how well it helps a reader answer the user's task.

reward(profile) = mean over the user's labeled questions of the reader's mean log-likelihood of the
gold output given the task input with the profile prepended (as likelihood-reward methods do). It
needs labels (LaMP golds, or the synthetic task), which is exactly what BUMP avoids; it exists so
that both rewards are trained on equal terms by the same trainer (``reward.kind: task`` or
``bump+task``). The reader is frozen and scored under ``torch.no_grad``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bump_profiles.errors import BumpError
from bump_profiles.rewards.rows import completion_text

# Fields: {profile}, {input}. The reader sees this as a user turn and answers as the assistant.
READER_TEMPLATE = "User profile: {profile}\n\n{input}"


def reader_contexts(tokenizer: Any, profile: str, inputs: Sequence[str], template: str = READER_TEMPLATE) -> list[str]:
    """The reader's prompt text for each task input (chat template when the tokenizer has one)."""
    texts = [template.format(profile=profile, input=x) for x in inputs]
    if getattr(tokenizer, "chat_template", None):
        from bump_profiles.judges.lm import render_chat

        return [render_chat(tokenizer, t) for t in texts]
    return [t + "\n" for t in texts]


def mean_target_logprobs(model: Any, tokenizer: Any, contexts: Sequence[str], targets: Sequence[str], batch_size: int = 8) -> list[float]:
    """Mean log p(target token | context, previous target tokens) for each (context, target) pair.

    Sequences are right-padded so that positions are those of an unpadded run.
    """
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out: list[float] = []
    for start in range(0, len(contexts), batch_size):
        pairs = []
        for ctx, tgt in zip(contexts[start : start + batch_size], targets[start : start + batch_size], strict=True):
            c = tokenizer(ctx, add_special_tokens=False)["input_ids"]
            t = tokenizer(tgt, add_special_tokens=False)["input_ids"]
            if not t:
                raise BumpError(f"empty gold output for the task input {ctx[-80:]!r}")
            pairs.append((c, t))
        width = max(len(c) + len(t) for c, t in pairs)
        ids = torch.full((len(pairs), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        target = torch.zeros_like(ids, dtype=torch.bool)
        for i, (c, t) in enumerate(pairs):
            ids[i, : len(c) + len(t)] = torch.tensor(c + t)
            mask[i, : len(c) + len(t)] = 1
            target[i, len(c) : len(c) + len(t)] = True
        device = next(model.parameters()).device
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        tmask = target[:, 1:].to(device)
        out.extend(((logp * tmask).sum(1) / tmask.sum(1)).tolist())
    return out


class TaskReward:
    """TRL reward function: the reader's mean log-likelihood of the user's gold outputs given the
    profile. Reads the dataset columns ``task_inputs`` and ``task_outputs`` (lists per user)."""

    __name__ = "task"

    def __init__(self, model: Any, tokenizer: Any, *, template: str = READER_TEMPLATE, batch_size: int = 8):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.template = template
        self.batch_size = batch_size

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        task_inputs: Sequence[Sequence[str]],
        task_outputs: Sequence[Sequence[str]],
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        contexts, targets, owner = [], [], []
        for n, (completion, inputs, golds) in enumerate(zip(completions, task_inputs, task_outputs, strict=True)):
            if not inputs or len(inputs) != len(golds):
                raise BumpError(f"row {n}: {len(inputs)} task inputs and {len(golds)} gold outputs")
            contexts += reader_contexts(self.tokenizer, completion_text(completion), inputs, self.template)
            targets += list(golds)
            owner += [n] * len(inputs)
        scores = mean_target_logprobs(self.model, self.tokenizer, contexts, targets, self.batch_size)
        totals = [0.0] * len(completions)
        counts = [0] * len(completions)
        for n, s in zip(owner, scores, strict=True):
            totals[n] += s
            counts[n] += 1
        rewards = [t / c for t, c in zip(totals, counts, strict=True)]
        if log_metric is not None:
            log_metric("task_loglik", sum(rewards) / len(rewards))
        return rewards
