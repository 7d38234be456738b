"""Shared test fixtures: the real LaMP samples (skipped when ../shared is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAMP_SAMPLES = REPO.parent / "shared" / "data" / "lamp-samples"


@pytest.fixture
def lamp_samples() -> Path:
    """The folder of real LaMP samples; the test is skipped when it is not beside the checkout."""
    if not LAMP_SAMPLES.is_dir():
        pytest.skip("../shared/data/lamp-samples is absent (a fresh clone has no ../shared)")
    return LAMP_SAMPLES


@pytest.fixture(scope="session")
def tiny_lm():
    """(model, tokenizer): a tiny random Llama and its chat tokenizer, in memory, shared read-only."""
    from fakes import tiny_causal_lm, tiny_tokenizer

    tok = tiny_tokenizer()
    return tiny_causal_lm(tok), tok


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random model saved to a folder, loadable by path like any model; tests only read it."""
    from fakes import save_tiny

    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")
