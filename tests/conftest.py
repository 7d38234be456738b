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
