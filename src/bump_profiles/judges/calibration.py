"""The one registry of score calibrations, and the rule they follow.

A calibration may only use a query's own scores and statistics that involve none of the batch's other
users: anything computed from the other rows or columns of the batch matrix tells a profile which items
are *not* claimed by anyone else, i.e. which are its own (a profile that says nothing then ranks its
user's items first by elimination). The math is :func:`bump_profiles.judges.ranking.calibrate`; this module
holds no numpy so that building the CLI parser stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass

from bump_profiles.errors import ConfigError


@dataclass(frozen=True)
class Calibration:
    """A calibration mode: what it subtracts, and whether training may use it."""

    help: str
    training: bool  # False: the mode uses the batch itself (transductive), evaluation only
    needs_baseline: bool = False


CALIBRATIONS: dict[str, Calibration] = {
    "empty": Calibration(
        "subtract each column's score against a null text: in A each item's score with the empty profile "
        "(removes item popularity), in B each profile's score with the empty item (how much it resembles nothing in particular)",
        training=True, needs_baseline=True),
    "none": Calibration("raw judge scores", training=True),
    "center-transductive": Calibration(
        "double-centre the batch matrix (row, column and grand means): uses the other users' items and "
        "profiles, so it leaks who owns what; evaluation only, never for training", training=False),
}
DEFAULT_CALIBRATION = "none"  # chosen by the numbers in docs/judges.md (LaMP_1, embedding judge)
TRAINING_CALIBRATIONS = tuple(name for name, c in CALIBRATIONS.items() if c.training)


def check_calibration(mode: str, *, training: bool = False) -> Calibration:
    """The registered mode, or a ConfigError that says what to use instead (``training``: leak-free only)."""
    if mode == "center":
        raise ConfigError(
            "calibration 'center' (double-centring over the batch) was renamed 'center-transductive': it leaks "
            f"which items belong to whom and is for evaluation only; train with one of {', '.join(TRAINING_CALIBRATIONS)}"
        )
    if mode not in CALIBRATIONS:
        raise ConfigError(f"unknown calibration '{mode}' (use one of {', '.join(CALIBRATIONS)})")
    if training and not CALIBRATIONS[mode].training:
        raise ConfigError(
            f"calibration '{mode}' is transductive (evaluation only): a training reward must use one of "
            f"{', '.join(TRAINING_CALIBRATIONS)}"
        )
    return CALIBRATIONS[mode]
