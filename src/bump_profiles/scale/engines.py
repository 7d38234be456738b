"""The generators of the Ray path: what turns user rows into profile rows.

- ``transformers``: an actor pool (``map_batches`` with the callable class :class:`TransformersProfiler`),
  each actor one copy of the model using ``threads`` CPU threads: ``actors x threads`` cores in all.
  It runs the very backend single-process ``profile`` runs (:class:`bump_profiles.engines.backends.TransformersBackend`).
- ``vllm``: ``ray.data.llm``'s vLLM processor, one engine replica per GPU, LoRA adapters of this
  project's training runs served by name (needs vLLM and GPUs; see docs/scale.md).
- ``openai``: ``ray.data.llm``'s HTTP processor against any OpenAI-compatible endpoint, with a
  requests-per-second limit and retries with exponential backoff.

Every engine maps a row to the profile row ``{user_id, profile, model, prompt_tokens, profile_tokens,
hit_limit, read, kind}``; rows of kind ``skipped`` (too few interactions for the split) pass
through ungenerated on the transformers engine and are dropped before the ray.data.llm processors.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bump_profiles.errors import ConfigError
from bump_profiles.profiles.prompts import ProfilePrompt, UpdatePrompt
from bump_profiles.scale.users import row_messages

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data

ENGINES = ("transformers", "vllm", "openai")
OUT_COLUMNS = ("user_id", "profile", "model", "prompt_tokens", "profile_tokens", "hit_limit", "read", "kind")


@dataclass
class EngineSpec:
    """Which generator, where, and how hard to drive it (the CLI fills it from flags)."""

    backend: str = "transformers"
    model: str | None = None  # transformers/vllm: bundled name, path or hub id; openai: the served model name
    actors: int = 1  # transformers: model copies; vllm: engine replicas (one per GPU); openai: request workers
    threads: int = 1  # transformers: torch threads per actor
    batch_size: int = 8  # users per batch given to an actor / engine
    dtype: str = "float32"
    max_new_tokens: int = 96
    temperature: float = 0.0
    seed: int = 0
    scratch: ProfilePrompt = field(default_factory=ProfilePrompt)
    update: UpdatePrompt = field(default_factory=UpdatePrompt)
    lora: str | None = None  # vllm: a training run's LoRA adapter folder, served on top of ``model``
    base_url: str | None = None  # openai
    api_key_env: str = "OPENAI_API_KEY"
    qps: int | None = None  # openai: requests per second per worker (None: no limit)
    max_retries: int = 4  # openai

    def __post_init__(self) -> None:
        if self.backend not in ENGINES:
            raise ConfigError(f"--backend must be one of {ENGINES} with --engine ray, not {self.backend!r}")
        if min(self.actors, self.threads, self.batch_size, self.max_new_tokens) < 1:
            raise ConfigError("--actors, --threads, --batch-size and --max-new-tokens must be at least 1")
        if not self.model:
            raise ConfigError(f"--backend {self.backend} needs --model")
        if self.backend == "openai" and not self.base_url:
            raise ConfigError("--backend openai needs --base-url")

    @property
    def name(self) -> str:
        """The model as recorded on every profile (the adapter when one is served)."""
        return self.lora or self.model or ""


def generate(rows: ray.data.Dataset, spec: EngineSpec) -> ray.data.Dataset:
    """Profile rows for user rows, through the engine ``spec`` names."""
    if spec.backend == "transformers":
        return rows.map_batches(TransformersProfiler, fn_constructor_args=(spec,), batch_size=spec.batch_size,
                                batch_format="pyarrow", concurrency=spec.actors, num_cpus=spec.threads)
    processor = vllm_processor(spec) if spec.backend == "vllm" else http_processor(spec)
    return processor(rows.map_batches(_MessagesBuilder, fn_constructor_args=(spec,), batch_format="pyarrow",
                                      concurrency=1 if spec.backend == "openai" else (1, spec.actors)))


class TransformersProfiler:
    """One model copy in a Ray actor; called on a batch of user rows, returns their profile rows."""

    def __init__(self, spec: EngineSpec):
        import torch

        from bump_profiles.engines.backends import TransformersBackend
        from bump_profiles.engines.models import load_causal_lm, load_tokenizer

        torch.set_num_threads(spec.threads)
        torch.manual_seed(spec.seed)
        model = load_causal_lm(spec.model, dtype=spec.dtype, device="cpu")
        self.spec = spec
        self.backend = TransformersBackend(model, load_tokenizer(spec.model), batch_size=spec.batch_size, name=spec.model)

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        todo = [r for r in rows if r["kind"] != "skipped"]
        messages = [row_messages(r, self.spec.scratch, self.spec.update, self.backend.count_tokens) for r in todo]
        done = self.backend.complete(messages, max_new_tokens=self.spec.max_new_tokens,
                                     temperature=self.spec.temperature) if todo else []
        texts = {r["user_id"]: c for r, c in zip(todo, done, strict=True)}
        return _profile_table(rows, {u: (c.text, c.prompt_tokens, c.completion_tokens, c.hit_limit)
                                     for u, c in texts.items()}, self.backend.name)


def _profile_table(rows: list[dict[str, Any]], out: dict[str, tuple], model: str) -> pa.Table:
    import pyarrow as pa

    def col(i: int) -> list:
        return [out[r["user_id"]][i] if r["user_id"] in out else None for r in rows]

    return pa.table({
        "user_id": pa.array([r["user_id"] for r in rows], pa.string()), "profile": pa.array(col(0), pa.string()),
        "model": pa.array([model] * len(rows), pa.string()), "prompt_tokens": pa.array(col(1), pa.int64()),
        "profile_tokens": pa.array(col(2), pa.int64()), "hit_limit": pa.array(col(3), pa.bool_()),
        "read": pa.array([r["read"] for r in rows], pa.string()), "kind": pa.array([r["kind"] for r in rows], pa.string()),
    })


class _MessagesBuilder:
    """The chat messages of each row, for the ``ray.data.llm`` processors (the same prompts; token
    budgets under the model's tokenizer for vLLM, word budgets for an endpoint, as single-process)."""

    def __init__(self, spec: EngineSpec):
        self.spec = spec
        self.count = None
        if spec.backend == "vllm":
            from bump_profiles.engines.models import load_tokenizer

            tok = load_tokenizer(spec.model)
            self.count = lambda s: len(tok(s, add_special_tokens=False)["input_ids"])

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        rows = [r for r in batch.to_pylist() if r["kind"] != "skipped"]  # (skipped users are counted by the driver)
        msgs = [json.dumps(row_messages(r, self.spec.scratch, self.spec.update, self.count)) for r in rows]
        return pa.table({"user_id": [r["user_id"] for r in rows], "read": [r["read"] for r in rows],
                         "kind": [r["kind"] for r in rows], "messages_json": pa.array(msgs, pa.string())})


def vllm_processor(spec: EngineSpec) -> Any:
    """``ray.data.llm``'s vLLM processor: ``spec.actors`` engine replicas, one GPU each; with
    ``spec.lora`` the adapter is served by name on top of ``spec.model`` (its base model)."""
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    from bump_profiles.engines.models import resolve

    engine: dict[str, Any] = {"dtype": "auto" if spec.dtype == "float32" else spec.dtype, "seed": spec.seed,
                              "enable_prefix_caching": True}
    adapter = None
    if spec.lora:  # vLLM loads a local adapter folder by its path, given as the row's "model"
        adapter = os.path.abspath(spec.lora)
        if not os.path.exists(os.path.join(adapter, "adapter_config.json")):
            raise ConfigError(f"--lora {spec.lora}: no adapter_config.json (give a training run's adapter folder)")
        with open(os.path.join(adapter, "adapter_config.json"), encoding="utf-8") as handle:
            rank = int(json.load(handle).get("r", 16))
        engine.update(enable_lora=True, max_lora_rank=max(8, rank), max_loras=1)
    config = vLLMEngineProcessorConfig(model_source=resolve(spec.model), engine_kwargs=engine, concurrency=spec.actors,
                                       batch_size=spec.batch_size)

    def pre(row: dict) -> dict:
        return {**({"model": adapter} if adapter else {}), "messages": json.loads(row["messages_json"]),
                "sampling_params": {"temperature": spec.temperature, "max_tokens": spec.max_new_tokens, "seed": spec.seed}}

    def post(row: dict) -> dict:
        n_out = int(row.get("num_generated_tokens") or 0)  # (the stage keeps no finish reason: a full budget counts as cut)
        return {"user_id": row["user_id"], "profile": str(row["generated_text"]).strip(), "model": spec.name,
                "prompt_tokens": int(row.get("num_input_tokens") or 0), "profile_tokens": n_out,
                "hit_limit": n_out >= spec.max_new_tokens, "read": row["read"], "kind": row["kind"]}

    return build_processor(config, preprocess=pre, postprocess=post)


def http_processor(spec: EngineSpec) -> Any:
    """``ray.data.llm``'s HTTP processor against ``{base_url}/chat/completions``: ``spec.actors``
    workers, at most ``spec.qps`` requests/s each, ``spec.max_retries`` retries with backoff."""
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    key = os.environ.get(spec.api_key_env)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    config = HttpRequestProcessorConfig(url=f"{spec.base_url.rstrip('/')}/chat/completions", headers=headers,
                                        qps=spec.qps, max_retries=spec.max_retries, concurrency=spec.actors,
                                        batch_size=spec.batch_size)

    def pre(row: dict) -> dict:
        return {"payload": {"model": spec.model, "messages": json.loads(row["messages_json"]),
                            "max_tokens": spec.max_new_tokens, "temperature": spec.temperature, "seed": spec.seed}}

    def post(row: dict) -> dict:
        answer = row["http_response"]
        choice, usage = answer["choices"][0], answer.get("usage") or {}
        return {"user_id": row["user_id"], "profile": (choice["message"]["content"] or "").strip(), "model": spec.name,
                "prompt_tokens": usage.get("prompt_tokens"), "profile_tokens": usage.get("completion_tokens"),
                "hit_limit": choice.get("finish_reason") == "length", "read": row["read"], "kind": row["kind"]}

    return build_processor(config, preprocess=pre, postprocess=post)
