"""The console: library noise silenced unless -v, and the one-line step summary."""

from __future__ import annotations

import logging

from bump_profiles.engines.console import quiet_libraries, step_line


def test_bm25s_debug_lines_are_silenced_even_after_it_sets_debug(caplog):
    quiet_libraries(verbose=False)
    logger = logging.getLogger("bm25s")
    logger.setLevel(logging.DEBUG)  # what `import bm25s` does
    with caplog.at_level(logging.DEBUG):
        logger.debug("Building index from tokens")
        logger.warning("a real problem")
    messages = [r.getMessage() for r in caplog.records if r.name == "bm25s"]
    assert messages == ["a real problem"]


def test_step_line_is_compact():
    logs = {"reward": 0.61234, "ndcg_a": 0.7, "ndcg_b": 0.5, "completions/mean_length": 47.6, "loss": 0.01,
            "profile_tokens": 45.2}
    line = step_line(logs, 3, 16, 31.25)
    assert line == "step   3/16  reward 0.612  NDCG A 0.700 B 0.500  tokens 45  31.2 s"
    assert step_line({"reward": 0.5}, 1, 2, 1.0) == "step   1/2  reward 0.500  NDCG A - B -  tokens -  1.0 s"
