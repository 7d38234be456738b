"""Evaluation: score profiles against held-out items, compare runs, and report the results."""
