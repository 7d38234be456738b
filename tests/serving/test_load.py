"""A bounded load test of the real service on 127.0.0.1 (benchmarks/bench_serve.py, ~10 s of load):
concurrent writers and readers plus refresh jobs; every acknowledged interaction reads back exactly
once. Figures are printed, not asserted (speed is measured by the benchmark script)."""

from __future__ import annotations

import json

import pytest

from bump_profiles.commands.bench import DEFAULT_DIR, load_script
from serving.service import SlowStub


@pytest.mark.slow
def test_concurrent_writers_and_readers_lose_and_duplicate_nothing(store_url, tmp_path):
    bench = load_script(DEFAULT_DIR, "serve")
    with SlowStub(delay=0.02) as stub:
        proc, url = bench.start_service(store_url, stub.base_url, tmp_path / "service.log")
        try:
            result = bench.run_load(url, seconds=8, writers=4, readers=4, users=20, batch=10, refresh_every=2)
        finally:
            proc.terminate()
            proc.wait(30)
    print("\n" + json.dumps(result))
    assert result["errors"] == 0, result["first_errors"]
    assert result["writes"] > 0 and result["reads"] > 0 and result["refresh_jobs"] > 0
    assert result["interactions_acknowledged"] == result["interactions_read_back"]
    assert result["lost"] == result["duplicated"] == result["unexpected"] == 0
