"""The news-authors benchmark: real HuffPost authors, a seeded author split, every baseline.

``data``: loading, capping and splitting the authors, and the downstream questions built from the
evaluation authors' held-out articles. ``config``: the benchmark's YAML config. ``keywords``: the
keyword-profile reference. ``stats``: per-author metrics and bootstrap intervals. ``pipeline``: the
resumable stages. ``report``: the table and figure.
"""
