"""``profile --engine ray`` on a real local Ray (2 CPUs, no dashboard, one cluster for the module):
the same profiles as single-process ``profile``, an OpenAI-compatible endpoint through
``ray.data.llm``, kill -9 of the driver and of a worker then a rerun gives each user exactly once, a
second live run is refused, and ``refresh --engine ray`` on a store (also with an update writer). Tiny random
models, greedy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the scale extra (Ray Data) is not installed")

from openai_stub import OpenAIStub  # noqa: E402

from bump_profiles.data import load_users, split_users  # noqa: E402
from bump_profiles.data.synthetic import make_users  # noqa: E402
from bump_profiles.engines.backends import OpenAIBackend, TransformersBackend  # noqa: E402
from bump_profiles.engines.models import load_causal_lm, load_tokenizer  # noqa: E402
from bump_profiles.engines.openai_client import OpenAIClient  # noqa: E402
from bump_profiles.errors import ConfigError  # noqa: E402
from bump_profiles.profiles.generate import generate_profiles  # noqa: E402
from bump_profiles.profiles.prompts import ProfilePrompt  # noqa: E402
from bump_profiles.scale.engines import EngineSpec  # noqa: E402
from bump_profiles.scale.run import run_profiles  # noqa: E402
from bump_profiles.scale.shards import ShardDir  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
PROMPT = ProfilePrompt(history_items=6, history_tokens=120)


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 1024**2, log_to_driver=False,
             configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def write_log(path: Path, n_users: int, seed: int = 0) -> Path:
    """Interaction lines of ``n_users`` synthetic users, shuffled (grouping must put them back)."""
    import random

    lines = [{"user_id": u.id, "text": it.text, **({"timestamp": it.date} if it.date else {})}
             for u in make_users(n_users, seed=seed) for it in u.interactions]
    random.Random(seed).shuffle(lines)
    lines.append({"user_id": "too-short", "text": "one interaction only"})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def reference(log: Path, model: Path, out: Path, *, k: int = 2, max_new_tokens: int = 12) -> dict[str, dict]:
    """What single-process ``profile`` writes for the same users."""
    users = split_users(load_users(log), k).users
    backend = TransformersBackend(load_causal_lm(str(model)), load_tokenizer(str(model)), name=str(model))
    generate_profiles(users, backend, PROMPT, out, max_new_tokens=max_new_tokens, progress=False)
    return {r["user_id"]: r for r in map(json.loads, out.read_text().splitlines())}


def spec(model: Path, **kw) -> EngineSpec:
    return EngineSpec(model=str(model), scratch=PROMPT, max_new_tokens=kw.pop("max_new_tokens", 12), **kw)


def shard_rows(out: Path) -> list[dict]:
    return list(ShardDir(out).rows())


def test_two_actors_write_exactly_what_profile_writes(cluster, tiny_model, tmp_path):
    log = write_log(tmp_path / "log.jsonl", 10)
    want = reference(log, tiny_model, tmp_path / "single.jsonl")
    s = run_profiles(str(log), str(tmp_path / "out"), spec(tiny_model, actors=2, batch_size=2), k=2, shard_rows=4)
    got = shard_rows(tmp_path / "out")
    assert (s.written, s.skipped_too_short, s.shards) == (10, 1, 3)
    assert len(got) == 10 and {r["user_id"]: r for r in got} == want
    again = run_profiles(str(log), str(tmp_path / "out"), spec(tiny_model, actors=2), k=2)
    assert (again.already_done, again.written) == (10, 0)


def test_an_openai_endpoint_through_ray_data_llm_matches_the_openai_backend(cluster, tmp_path):
    log = write_log(tmp_path / "log.jsonl", 6)
    with OpenAIStub() as stub:
        client = OpenAIClient(stub.base_url, "stub-model", max_retries=0)
        generate_profiles(split_users(load_users(log), 2).users, OpenAIBackend(client), PROMPT, tmp_path / "one.jsonl",
                          progress=False, max_new_tokens=12)
    want = {r["user_id"]: r for r in map(json.loads, (tmp_path / "one.jsonl").read_text().splitlines())}
    with OpenAIStub([503, "ok"]) as stub:  # the first request fails: the processor retries it
        s = run_profiles(str(log), str(tmp_path / "out"), spec("stub-model", backend="openai", base_url=stub.base_url,
                         qps=50, max_retries=2, batch_size=4), k=2, fmt="jsonl")
        assert s.written == 6 and len(stub.requests) == 7
    got = {r["user_id"]: r for r in shard_rows(tmp_path / "out")}
    assert got == want


def test_the_vllm_processor_is_configured_for_replicas_and_a_lora_adapter(cluster, tiny_model, tmp_path):
    """Construction only: vLLM itself (and a GPU) is absent here, so no generation runs."""
    from ray.data.llm import vLLMEngineProcessorConfig

    from bump_profiles.scale import engines

    adapter = tmp_path / "run" / "final"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 32, "base_model_name_or_path": str(tiny_model)}))
    seen = {}
    real = vLLMEngineProcessorConfig

    def capture(**kw):
        seen.update(kw)
        return real(**kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ray.data.llm.vLLMEngineProcessorConfig", capture)
        processor = engines.vllm_processor(spec(tiny_model, backend="vllm", actors=4, lora=str(adapter)))
    assert processor is not None
    assert seen["concurrency"] == 4 and seen["model_source"] == str(tiny_model)
    assert seen["engine_kwargs"]["enable_lora"] and seen["engine_kwargs"]["max_lora_rank"] == 32
    with pytest.raises(ConfigError, match="adapter_config.json"):
        engines.vllm_processor(spec(tiny_model, backend="vllm", lora=str(tmp_path)))


def driver(log: Path, out: Path, model: Path, address: str, **env) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "bump_profiles.cli", "profile", "--engine", "ray", "--data", str(log),
           "--out", str(out), "--model", str(model), "--k", "2", "--max-new-tokens", "12", "--history-items", "6",
           "--history-tokens", "120", "--batch-size", "1", "--shard-rows", "2", "--actors", "1"]
    return subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(SRC), "RAY_ADDRESS": address,
                                      "OMP_NUM_THREADS": "1", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for(cond, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"gave up waiting (exit {proc.poll()}): {proc.stdout.read().decode()[-2000:]}")
        time.sleep(0.05)


def test_kill9_of_the_driver_then_rerun_gives_each_user_once_and_a_live_run_is_refused(cluster, tiny_model, tmp_path):
    log, out = write_log(tmp_path / "log.jsonl", 60), tmp_path / "out"
    proc = driver(log, out, tiny_model, cluster)
    wait_for(lambda: out.is_dir() and len(ShardDir(out).shards()) >= 1, proc)
    with pytest.raises(ConfigError, match="another run is writing"):
        run_profiles(str(log), str(out), spec(tiny_model), k=2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cut = len(shard_rows(out))
    assert 0 < cut < 60, "the driver was not killed mid-run"
    s = run_profiles(str(log), str(out), spec(tiny_model, actors=2), k=2, shard_rows=16)
    ids = [r["user_id"] for r in shard_rows(out)]
    assert s.already_done == cut and len(ids) == len(set(ids)) == 60
    want = reference(log, tiny_model, tmp_path / "single.jsonl")
    assert {r["user_id"]: r for r in shard_rows(out)} == want


def _descendants(pid: int):
    import psutil

    return psutil.Process(pid).children(recursive=True)


def test_kill9_of_a_worker_then_rerun_gives_each_user_once(cluster, tiny_model, tmp_path):
    log, out = write_log(tmp_path / "log.jsonl", 40, seed=1), tmp_path / "out"
    proc = driver(log, out, tiny_model, cluster)
    wait_for(lambda: out.is_dir() and len(ShardDir(out).shards()) >= 1, proc)
    workers = [p for p in _descendants(os.getpid()) if "TransformersProfiler" in " ".join(p.cmdline())]
    assert len(workers) == 1  # this module's cluster runs only this driver's actor
    os.kill(workers[0].pid, signal.SIGKILL)
    output = proc.communicate(timeout=300)[0].decode()
    if proc.returncode != 0:  # Ray may retry the lost batch on a restarted actor, or the run may fail: rerun
        run_profiles(str(log), str(out), spec(tiny_model), k=2)
    ids = [r["user_id"] for r in shard_rows(out)]
    assert len(ids) == len(set(ids)) == 40, output[-2000:]


def test_refresh_on_ray_pages_the_store_writes_what_the_service_writes_and_is_idempotent(cluster, tiny_model, tmp_path):
    from bump_profiles.profiles.refresh import Refresher
    from bump_profiles.scale.refresh import refresh_store
    from bump_profiles.store import NewInteraction, ProfileStore

    stores = [ProfileStore(str(tmp_path / f"{name}.db")) for name in ("local", "ray")]
    for store in stores:
        for u in make_users(7, seed=2):
            store.add_interactions(u.id, [NewInteraction(it.text, it.date) for it in u.interactions])
        seq = store.add_interactions("user-with-a-profile", [NewInteraction("first post about tea")])[0]
        store.write_profile("user-with-a-profile", "Likes tea.", generator="earlier", mode="scratch",
                            previous_version=None, through_seq=seq, source_seqs=[seq])
        store.add_interactions("user-with-a-profile", [NewInteraction("second post about green tea")])
    backend = TransformersBackend(load_causal_lm(str(tiny_model)), load_tokenizer(str(tiny_model)), name=str(tiny_model))
    local = Refresher(stores[0], backend, scratch_prompt=PROMPT, max_new_tokens=12)
    results = local.refresh_many(stores[0].stale_users())  # one user gets an update, the rest scratch
    empty = sum(isinstance(r, Exception) for r in results)  # (a tiny random model may say nothing: not stored)
    s = refresh_store(stores[1], spec(tiny_model, actors=2, batch_size=2), page_size=3)
    assert (s.pages, s.written, s.superseded, s.failed) == (3, 8 - empty, 0, empty)
    def state(p):
        return None if p is None else (p.text, p.mode, p.previous_version, p.source_seqs, p.through_seq, p.version)

    for uid in stores[0].users():
        assert state(stores[1].current_profile(uid)) == state(stores[0].current_profile(uid))
    again = refresh_store(stores[1], spec(tiny_model), page_size=3)  # a retry: nothing new is written
    assert again.written == 0 and again.failed == empty


def test_refresh_on_ray_with_an_update_writer_writes_what_the_service_writes(cluster, tiny_model, tmp_path):
    """The first profile by the generator, the update by another model, as the local Refresher with
    ``update_backend`` writes them: one Ray Data pass per engine. The generator writes blanks (no version), the
    writer text, so an update through the wrong engine writes nothing."""
    from fakes import save_tiny

    from bump_profiles.profiles.refresh import Refresher
    from bump_profiles.scale.refresh import refresh_store
    from bump_profiles.store import NewInteraction, ProfileStore

    writer = save_tiny(tmp_path / "writer", varied=True)
    stores = [ProfileStore(str(tmp_path / f"{name}.db")) for name in ("local", "ray")]
    for store in stores:
        store.add_interactions("new", [NewInteraction(it.text) for it in make_users(1, seed=3)[0].interactions])
        seq = store.add_interactions("old", [NewInteraction("first post about tea")])[0]
        store.write_profile("old", "Likes tea.", generator="earlier", mode="scratch", previous_version=None,
                            through_seq=seq, source_seqs=[seq])
        store.add_interactions("old", [NewInteraction("second post about green tea")])

    def backend(path):
        return TransformersBackend(load_causal_lm(str(path)), load_tokenizer(str(path)), name=str(path))

    Refresher(stores[0], backend(tiny_model), update_backend=backend(writer), scratch_prompt=PROMPT,
              max_new_tokens=12).refresh_many(["new", "old"])
    s = refresh_store(stores[1], spec(tiny_model), update_spec=spec(writer))
    assert (s.written, s.failed, s.superseded) == (1, 1, 0)
    for store in stores:
        assert [v.generator for v in store.profile_history("old")] == ["earlier", str(writer)]
        assert store.current_profile("new") is None  # the generator's blank first profile: not stored
    ours, theirs = (store.current_profile("old") for store in stores)
    assert ours.text.strip() and (ours.text, ours.source_seqs) == (theirs.text, theirs.source_seqs)
