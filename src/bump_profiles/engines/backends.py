"""Text generation backends behind one small protocol, for the profile writer and the LaMP readers.

``generate(messages_batch, *, max_new_tokens, temperature)`` returns the texts, and ``complete(...)``
the same with token counts and whether the length limit cut the text (``hit_limit``, which profile
statistics need). Three backends:

- :class:`TransformersBackend`: any causal LM, batched with left padding, batches sorted by prompt
  length so little compute goes to padding; greedy at temperature 0.
- :class:`VLLMBackend`: vLLM's offline engine (optional extra ``vllm``, needs a GPU).
- :class:`OpenAIBackend`: any OpenAI-compatible endpoint, requests in flight concurrently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bump_profiles.engines.models import render_messages
from bump_profiles.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from bump_profiles.engines.openai_client import OpenAIClient

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    """One generated text with its cost: prompt and generated token counts, and whether it was cut."""

    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    hit_limit: bool


class Backend(Protocol):
    """What :func:`generate_profiles` (and any reader) needs from a text generator."""

    name: str  # the model, as recorded in each output line

    def count_tokens(self, text: str) -> int | None:
        """Tokens in ``text`` under this backend's tokenizer, or None when it has none at hand."""
        ...

    def complete(self, messages_batch: Sequence[Messages], *, max_new_tokens: int, temperature: float) -> list[Completion]: ...

    def generate(self, messages_batch: Sequence[Messages], *, max_new_tokens: int, temperature: float) -> list[str]: ...


def token_counter(backend: Backend) -> Callable[[str], int] | None:
    """The backend's token counter when it has one (probed once), else None (budgets count words)."""
    return backend.count_tokens if backend.count_tokens("probe") is not None else None


class TextsFromCompletions:
    """``generate`` as the texts of ``complete``, shared by every backend."""

    def generate(self, messages_batch: Sequence[Messages], *, max_new_tokens: int, temperature: float = 0.0) -> list[str]:
        return [c.text for c in self.complete(messages_batch, max_new_tokens=max_new_tokens, temperature=temperature)]


class TransformersBackend(TextsFromCompletions):
    """A causal LM from transformers; ``tokenizer`` must carry a chat template and pad on the left."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, batch_size: int = 8, name: str | None = None,
                 top_p: float = 1.0):
        if not 0.0 < top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], got {top_p}")
        if tokenizer.chat_template is None:
            raise ConfigError("the tokenizer has no chat template: profile generation needs a chat/instruct model")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.top_p = top_p  # nucleus sampling when the temperature is above 0 (1.0: plain sampling)
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__
        eos = model.generation_config.eos_token_id
        self.stop_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            self.stop_ids.add(tokenizer.eos_token_id)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def complete(self, messages_batch: Sequence[Messages], *, max_new_tokens: int, temperature: float = 0.0) -> list[Completion]:
        """Generate for every conversation, in batches of similar prompt length; results in input order."""
        prompts = [render_messages(self.tokenizer, list(m)) for m in messages_batch]
        lengths = [self.count_tokens(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])
        results: list[Completion | None] = [None] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for i, completion in zip(chunk, self._batch([prompts[i] for i in chunk], max_new_tokens, temperature), strict=True):
                results[i] = completion
        return results  # type: ignore[return-value]

    def _batch(self, prompts: list[str], max_new_tokens: int, temperature: float) -> list[Completion]:
        import torch

        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": self.top_p, "top_k": 0} if temperature > 0 else {
            "do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        with torch.inference_mode():
            out = self.model.generate(
                **enc, max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id, **sampling
            )
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
        completions = []
        for ids, n_prompt in zip(new, prompt_tokens, strict=True):
            end = next((j for j, t in enumerate(ids) if t in self.stop_ids), None)
            kept = ids if end is None else ids[:end]
            text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
            completions.append(Completion(text, int(n_prompt), len(kept), end is None and len(ids) >= max_new_tokens))
        return completions


class VLLMBackend(TextsFromCompletions):
    """vLLM's offline engine: continuous batching on a GPU. Needs ``pip install 'bump-profiles[vllm]'``."""

    def __init__(self, model: str, *, dtype: str = "auto", seed: int = 0, gpu_memory_utilization: float = 0.85):
        try:
            import vllm
        except ImportError as exc:
            raise ConfigError("the vllm backend needs vLLM: pip install 'bump-profiles[vllm]' (GPU only)") from exc
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("the vllm backend needs a CUDA GPU; use --backend transformers on the CPU")
        from bump_profiles.engines.models import resolve

        self.name = model
        self._vllm = vllm
        self.seed = seed
        self.llm = vllm.LLM(model=resolve(model), dtype=dtype, seed=seed, gpu_memory_utilization=gpu_memory_utilization)
        self._tokenizer = self.llm.get_tokenizer()

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def complete(self, messages_batch: Sequence[Messages], *, max_new_tokens: int, temperature: float = 0.0) -> list[Completion]:
        params = self._vllm.SamplingParams(max_tokens=max_new_tokens, temperature=temperature, seed=self.seed)
        outputs = self.llm.chat(list(messages_batch), params, use_tqdm=False)
        return [
            Completion(o.outputs[0].text.strip(), len(o.prompt_token_ids), len(o.outputs[0].token_ids),
                       o.outputs[0].finish_reason == "length")
            for o in outputs
        ]


class OpenAIBackend(TextsFromCompletions):
    """An OpenAI-compatible endpoint; up to ``concurrency`` requests in flight at once."""

    def __init__(self, client: OpenAIClient, *, concurrency: int = 8, seed: int | None = None):
        self.client = client
        self.name = client.model
        self.concurrency = max(1, concurrency)
        self.seed = seed

    def count_tokens(self, text: str) -> None:
        return None  # the server's tokenizer is not at hand; prompts budget words instead

    def complete(self, messages_batch: Sequence[Messages], *, max_new_tokens: int, temperature: float = 0.0) -> list[Completion]:
        def one(messages: Messages) -> Completion:
            r = self.client.complete(messages, max_tokens=max_new_tokens, temperature=temperature, seed=self.seed)
            return Completion(r.text.strip(), r.prompt_tokens, r.completion_tokens, r.finish_reason == "length")

        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(messages_batch)))) as pool:
            return list(pool.map(one, messages_batch))
