"""Profile generation at scale: one profile per user, from any backend, resumable after a crash.

Backends share one small protocol: ``generate(messages_batch, *, max_new_tokens, temperature)``
returns the texts, and ``complete(...)`` the same with token counts and whether the length limit
cut the text (``hit_limit``, which profile statistics need). Three backends:

- :class:`TransformersBackend`: any causal LM, batched with left padding, batches sorted by prompt
  length so little compute goes to padding; greedy at temperature 0.
- :class:`VLLMBackend`: vLLM's offline engine (optional extra ``vllm``, needs a GPU).
- :class:`OpenAIBackend`: any OpenAI-compatible endpoint, requests in flight concurrently.

:func:`generate_profiles` appends one JSON line per user and flushes each batch to disk, so a crash
loses at most the batch in flight; a rerun skips the users already written and repairs a truncated
last line, so every user ends up exactly once. A lock file beside the output refuses a second
writer while a run is writing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bump_profiles.data.schema import Interaction, User
from bump_profiles.data.split import UserSplit
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.prompts import ProfilePrompt
from bump_profiles.provenance import record

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from bump_profiles.openai_client import OpenAIClient

log = logging.getLogger(__name__)

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


class _TextsFromCompletions:
    """``generate`` as the texts of ``complete``, shared by every backend."""

    def generate(self, messages_batch: Sequence[Messages], *, max_new_tokens: int, temperature: float = 0.0) -> list[str]:
        return [c.text for c in self.complete(messages_batch, max_new_tokens=max_new_tokens, temperature=temperature)]


class TransformersBackend(_TextsFromCompletions):
    """A causal LM from transformers; ``tokenizer`` must carry a chat template and pad on the left."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, batch_size: int = 8, name: str | None = None):
        if tokenizer.chat_template is None:
            raise ConfigError("the tokenizer has no chat template: profile generation needs a chat/instruct model")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__
        eos = model.generation_config.eos_token_id
        self.stop_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            self.stop_ids.add(tokenizer.eos_token_id)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def complete(self, messages_batch: Sequence[Messages], *, max_new_tokens: int, temperature: float = 0.0) -> list[Completion]:
        """Generate for every conversation, in batches of similar prompt length; results in input order."""
        prompts = [
            self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in messages_batch
        ]
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
        sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0} if temperature > 0 else {
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


class VLLMBackend(_TextsFromCompletions):
    """vLLM's offline engine: continuous batching on a GPU. Needs ``pip install 'bump-profiles[vllm]'``."""

    def __init__(self, model: str, *, dtype: str = "auto", seed: int = 0, gpu_memory_utilization: float = 0.85):
        try:
            import vllm
        except ImportError as exc:
            raise ConfigError("the vllm backend needs vLLM: pip install 'bump-profiles[vllm]' (GPU only)") from exc
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("the vllm backend needs a CUDA GPU; use --backend transformers on the CPU")
        from bump_profiles.models import resolve

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


class OpenAIBackend(_TextsFromCompletions):
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


# --- the resumable profile writer -----------------------------------------------------------------


@dataclass
class GenerationSummary:
    """What a :func:`generate_profiles` run did."""

    out: str
    users: int  # users asked for
    already_done: int  # found in the output file and skipped
    written: int  # profiles written by this run
    hit_limit: int  # of those written, cut at max_new_tokens
    seconds: float

    @property
    def users_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def read_done(out_path: str | Path, *, model: str | None = None) -> set[str]:
    """User ids already in ``out_path``, after cutting a truncated last line left by a crash.

    Only the last line can be partial (each line is written whole and flushed before the next), so
    a file that does not end with a newline loses its tail back to the last newline. Any other bad
    line is not ours to repair and raises a DataError. When ``model`` is given, lines written by
    another model are a ConfigError: resuming would mix two generators in one file.
    """
    path = Path(out_path)
    if not path.exists():
        return set()
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        log.warning("%s: dropping a truncated last line (%d bytes) left by an interrupted run", path, len(data) - keep)
        with path.open("r+b") as handle:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        data = data[:keep]
    done: set[str] = set()
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"not a valid profile line ({exc})", path=path, record=f"line {lineno}") from exc
        if not isinstance(row, dict) or not isinstance(row.get("user_id"), str):
            raise DataError("a profile line needs a string 'user_id'", path=path, record=f"line {lineno}", field="user_id")
        if model is not None and row.get("model", model) != model:
            raise ConfigError(
                f"{path} holds profiles from model '{row['model']}' but this run uses '{model}': "
                "choose another --out, or delete the file to start over"
            )
        done.add(row["user_id"])
    return done


def generate_profiles(
    splits_or_users: Sequence[UserSplit] | Sequence[User],
    backend: Backend,
    prompt: ProfilePrompt,
    out_path: str | Path,
    *,
    batch_size: int = 8,
    max_new_tokens: int = 96,
    temperature: float = 0.0,
    progress: bool = True,
) -> GenerationSummary:
    """Write a profile for every user not yet in ``out_path``; return what was done.

    A :class:`UserSplit` is profiled from its history only (its held-out items stay unseen); a
    :class:`User` from all its interactions. Users are processed longest prompt first in batches of
    ``batch_size`` (similar lengths pad little; a memory problem shows in the first batch). Each line:
    ``{"user_id", "profile", "model", "prompt_tokens", "profile_tokens", "hit_limit", "read"}``, where
    ``read`` is what the generator read (:func:`bump_profiles.provenance.record`).
    """
    if batch_size < 1 or max_new_tokens < 1:
        raise ConfigError("batch_size and max_new_tokens must be at least 1")
    start = time.perf_counter()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with _writer_lock(out_path):
        return _generate_locked(splits_or_users, backend, prompt, out_path, start, batch_size=batch_size,
                                max_new_tokens=max_new_tokens, temperature=temperature, progress=progress)


@contextmanager
def _writer_lock(out_path: Path) -> Iterator[None]:
    """Hold ``<out>.lock`` for the whole run: a second writer would interleave lines and duplicate users."""
    from filelock import FileLock, Timeout

    lock = FileLock(f"{out_path}.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout as exc:
        raise ConfigError(
            f"another run is writing {out_path} (lock {lock.lock_file}): wait for it to finish or choose another --out"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def _generate_locked(
    splits_or_users: Sequence[UserSplit] | Sequence[User], backend: Backend, prompt: ProfilePrompt, out_path: Path,
    start: float, *, batch_size: int, max_new_tokens: int, temperature: float, progress: bool,
) -> GenerationSummary:
    from tqdm.auto import tqdm

    done = read_done(out_path, model=backend.name)
    items = [_history_of(x) for x in splits_or_users]
    seen: set[str] = set()
    for uid, _ in items:
        if uid in seen:
            raise DataError(f"user '{uid}' appears twice in the input", field="user_id")
        seen.add(uid)
    pending = [(uid, hist) for uid, hist in items if uid not in done]
    reads = {uid: record(x.history, x.heldout) if isinstance(x, UserSplit) else record(x.interactions)
             for (uid, _), x in zip(items, splits_or_users, strict=True)}
    count: Callable[[str], int] | None = _counter(backend)
    messages = [prompt.messages(hist, count_tokens=count) for _, hist in pending]
    sizes = [count(m[-1]["content"]) if count else len(m[-1]["content"]) for m in messages]
    order = sorted(range(len(pending)), key=lambda i: -sizes[i])

    written = hit = 0
    with out_path.open("a", encoding="utf-8") as handle, tqdm(
        total=len(pending), unit="user", desc="profiles", disable=not progress
    ) as bar:
        for b in range(0, len(order), batch_size):
            chunk = order[b : b + batch_size]
            completions = backend.complete([messages[i] for i in chunk], max_new_tokens=max_new_tokens, temperature=temperature)
            for i, c in zip(chunk, completions, strict=True):
                row = {"user_id": pending[i][0], "profile": c.text, "model": backend.name,
                       "prompt_tokens": c.prompt_tokens, "profile_tokens": c.completion_tokens, "hit_limit": c.hit_limit,
                       "read": reads[pending[i][0]]}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                hit += c.hit_limit
            handle.flush()
            os.fsync(handle.fileno())
            written += len(chunk)
            bar.update(len(chunk))
    return GenerationSummary(str(out_path), len(items), len(items) - len(pending), written, hit, time.perf_counter() - start)


def _history_of(item: UserSplit | User) -> tuple[str, list[Interaction]]:
    if isinstance(item, UserSplit):
        return item.user.id, item.history
    return item.id, item.interactions


def _counter(backend: Backend) -> Callable[[str], int] | None:
    """The backend's token counter when it has one (probed once), else None (word budgets)."""
    return backend.count_tokens if backend.count_tokens("probe") is not None else None


def load_profiles(path: str | Path) -> dict[str, str]:
    """``{user_id: profile}`` from a profiles JSONL file (any generator's); a user twice is an error."""
    from bump_profiles.data.jsonl import iter_jsonl

    if not Path(path).exists():
        raise DataError("no such file", path=path)
    profiles: dict[str, str] = {}
    for lineno, row in iter_jsonl(path):
        uid, text = row.get("user_id"), row.get("profile")
        if not isinstance(uid, (str, int)) or isinstance(uid, bool):
            raise DataError("needs a string 'user_id'", path=path, record=f"line {lineno}", field="user_id")
        if not isinstance(text, str):
            raise DataError("needs a string 'profile'", path=path, record=f"line {lineno}", field="profile")
        if str(uid) in profiles:
            raise DataError(f"user '{uid}' has two profiles", path=path, record=f"line {lineno}", field="user_id")
        profiles[str(uid)] = text
    return profiles
