"""Rewards: BUMP (label-free) and labeled reward functions, their shared scoring, best-of-n, the alignment check."""
