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


def test_kept_generations_name_the_model_that_wrote_them(tmp_path):
    """A trained writer's first prompts are the untrained one's; kept texts of one set of weights must not be
    read back as another's (drift runs copy kept generations between outputs)."""
    from argparse import Namespace

    from bump_profiles.engines.backends import Completion

    bench = load_script("benchmarks/bench_incremental.py")

    class Echo:
        def __init__(self, tag):
            self.tag, self.calls = tag, 0

        def complete(self, messages, **_):
            self.calls += 1
            return [Completion(f"{self.tag} {m[-1]['content']}", 3, 2, False) for m in messages]

    a, b = tmp_path / "a", tmp_path / "b"
    for d, byte in ((a, b"\x01"), (b, b"\x02")):
        d.mkdir()
        (d / "adapter_model.safetensors").write_bytes(byte * 64)
    digest_a, digest_b = bench.weights_digest(str(a)), bench.weights_digest(str(b))
    assert digest_a != digest_b and digest_a == bench.weights_digest(str(a))
    args = Namespace(batch_size=2, max_new_tokens=4)
    msgs = [[{"role": "user", "content": f"p{i}"}] for i in range(3)]
    cache = tmp_path / "kept" / "round2-trained.json"
    cache.parent.mkdir()
    first = bench.generate(Echo("A"), msgs, args, cache, digest_a)
    assert [c.text for c in first] == ["A p0", "A p1", "A p2"]
    again = Echo("A")
    assert bench.generate(again, msgs, args, cache, digest_a) == first and again.calls == 0  # resumed, not redone
    with pytest.raises(SystemExit, match="another model"):
        bench.generate(Echo("B"), msgs, args, cache, digest_b)
    with pytest.raises(SystemExit, match="another model"):  # nor as the base model's (no digest)
        bench.generate(Echo("B"), msgs, args, cache)
    with pytest.raises(SystemExit, match="no \\*.safetensors"):
        bench.weights_digest(str(tmp_path / "kept"))
