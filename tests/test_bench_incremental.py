"""benchmarks/bench_incremental.py end to end with a tiny random generator (no download): the three
profile sets are generated, judged and tabulated; no score is asserted (a random model writes noise)."""

from __future__ import annotations

import json

import pytest
from fakes import load_script, save_tiny


@pytest.mark.slow
def test_bench_incremental_runs_and_counts_prompt_tokens(tmp_path, capsys):
    bench = load_script("benchmarks/bench_incremental.py")
    tiny = save_tiny(tmp_path / "tiny")
    out = tmp_path / "incremental.json"
    assert bench.main(["--model", str(tiny), "--synthetic", "4", "--synthetic-interactions", "14", "16",
                       "--authors", "0", "--max-new-tokens", "6", "--bootstrap", "50", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    r = report["sets"]["synthetic"]
    assert r["users"] == 4 and set(r["rows"]) == {"previous", "updated", "regenerated"}
    for row in r["rows"].values():
        mean, lo, hi = row["ndcg_a"]
        assert 0 <= lo <= mean <= hi <= 1
    # an update reads the previous profile and 4 new items, a regeneration 12-14 items
    assert r["rows"]["updated"]["prompt_tokens_mean"] < r["rows"]["regenerated"]["prompt_tokens_mean"]
    assert r["prompt_token_ratio"] == pytest.approx(
        r["rows"]["regenerated"]["prompt_tokens_mean"] / r["rows"]["updated"]["prompt_tokens_mean"])
    assert "| updated |" in capsys.readouterr().out
    # the generations were kept beside --out; a second run resumes from them and reproduces the table
    cache = tmp_path / "incremental-synthetic"
    assert sorted(p.name for p in cache.iterdir()) == ["previous.json", "regenerated.json", "updated.json"]
    kept = json.loads((cache / "updated.json").read_text())
    assert len(kept["prompts"]) == len(kept["completions"]) == 4 and all("prompt_tokens" in c for c in kept["completions"])
    # mark the kept updates (emptied) so the rerun shows it read them instead of generating again
    kept["completions"] = [{**c, "text": ""} for c in kept["completions"]]
    (cache / "updated.json").write_text(json.dumps(kept))
    assert bench.main(["--model", str(tiny), "--synthetic", "4", "--synthetic-interactions", "14", "16",
                       "--authors", "0", "--max-new-tokens", "6", "--bootstrap", "50", "--out", str(out)]) == 0
    again = json.loads(out.read_text())["sets"]["synthetic"]
    assert again["rows"]["updated"]["empty_profiles"] == 4
    assert again["rows"]["regenerated"] == r["rows"]["regenerated"]
    # another command (a smaller history budget: other prompts) is refused instead of mixing generations
    with pytest.raises(SystemExit, match="other prompts"):
        bench.main(["--model", str(tiny), "--synthetic", "4", "--synthetic-interactions", "14", "16", "--authors", "0",
                    "--max-new-tokens", "6", "--bootstrap", "50", "--scratch-tokens", "40", "--out", str(out)])
