"""The Ray path's parts that need no Ray: user rows, shards, the missing-extra error, store paging,
batched refresh. (Ray itself: tests/test_scale_ray.py.)"""

from __future__ import annotations

import json
import random
import sys

import pyarrow as pa
import pytest

from bump_profiles.cli import main
from bump_profiles.data import load_users, split_users
from bump_profiles.data.synthetic import make_users
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.profiles.prompts import ProfilePrompt
from bump_profiles.profiles.provenance import record
from bump_profiles.scale.shards import ShardDir
from bump_profiles.scale.users import load_interactions, row_messages, scratch_row, user_from_records


def interaction_lines(users, seed=0):
    lines = [{"user_id": u.id, "text": it.text, **({"timestamp": it.date} if it.date else {})}
             for u in users for it in u.interactions]
    random.Random(seed).shuffle(lines)
    return lines


def test_user_rows_match_the_single_process_loader_split_and_prompt(tmp_path):
    users = make_users(6, seed=3)
    path = tmp_path / "log.jsonl"
    lines = interaction_lines(users)
    lines.append({"user_id": "short", "text": "only one thing"})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    loaded = {u.id: u for u in load_users(path)}
    split = {s.user.id: s for s in split_users(list(loaded.values()), 2).users}
    by_user: dict[str, list] = {}
    for n, line in enumerate(lines, start=1):  # scattered over the file, as a shuffle hands them over
        by_user.setdefault(line["user_id"], []).append((str(path), n, json.dumps(line)))
    prompt = ProfilePrompt(history_items=5)
    for uid, records in by_user.items():
        random.Random(uid).shuffle(records)
        user = user_from_records(records)
        assert user.interactions == loaded[uid].interactions
        row = scratch_row(user, k=2)
        if uid == "short":
            assert row["kind"] == "skipped"
            continue
        assert json.loads(row["read"]) == record(split[uid].history, split[uid].heldout)
        assert load_interactions(row["history"]) == split[uid].history
        assert row_messages(row, prompt, None, None) == prompt.messages(split[uid].history)


def test_user_lines_and_a_duplicate_user_line(tmp_path):
    u = make_users(1)[0]
    line = {"user_id": u.id, "interactions": [{"text": it.text, "timestamp": it.date} for it in u.interactions]}
    user = user_from_records([("f.jsonl", 1, json.dumps(line))])
    assert [it.text for it in user.interactions] == [it.text for it in u.interactions]
    with pytest.raises(DataError, match="f.jsonl.*line 1.*duplicate user id"):
        user_from_records([("f.jsonl", 1, json.dumps(line)), ("f.jsonl", 7, json.dumps(line))])
    with pytest.raises(DataError, match="line 4.*'text'"):
        user_from_records([("g.jsonl", 4, json.dumps({"user_id": "x", "txt": "no text"}))])


def shard(ids, model="m"):
    n = len(ids)
    return pa.table({"user_id": ids, "profile": [f"p {i}" for i in ids], "model": [model] * n,
                     "prompt_tokens": [3] * n, "profile_tokens": [2] * n, "hit_limit": [False] * n,
                     "read": [json.dumps({"split": None, "n": 1, "hash": "h", "items": ["x"]})] * n})


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_shards_are_atomic_and_their_users_are_done(tmp_path, fmt):
    out = ShardDir(tmp_path / "out", fmt)
    out.write(shard(["a", "b"]))
    out.write(shard(["c"]))
    (tmp_path / "out" / f".part-000002-dead.{fmt}.tmp").write_bytes(b"half a shard")  # a killed write
    assert sorted(out.done(model="m").to_pylist()) == ["a", "b", "c"]
    assert out.remove_temps() == 1 and len(out.shards()) == 2
    rows = sorted(out.rows(), key=lambda r: r["user_id"])
    assert rows[0] == {"user_id": "a", "profile": "p a", "model": "m", "prompt_tokens": 3, "profile_tokens": 2,
                       "hit_limit": False, "read": {"split": None, "n": 1, "hash": "h", "items": ["x"]}}
    with pytest.raises(ConfigError, match="from model 'm'"):
        out.done(model="other")
    out.write(shard(["c"]))
    with pytest.raises(DataError, match="two shards"):
        out.done()


def test_without_ray_the_ray_engine_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    from bump_profiles.scale import require_ray

    with pytest.raises(ConfigError, match=r"pip install -e '\.\[scale\]'"):
        require_ray()
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"user_id": "u", "text": "hello"}) + "\n")
    code = main(["profile", "--engine", "ray", "--model", "x", "--data", str(log), "--out", str(tmp_path / "o")])
    assert code == 2 and "[scale]" in capsys.readouterr().err


def read_records(path, monkeypatch, chunk=None):
    """Records of one file as the Ray datasource reads them (its read method, without a cluster)."""
    pytest.importorskip("ray.data")
    import pyarrow as pa

    from bump_profiles.scale import logs

    if chunk:
        monkeypatch.setattr(logs, "CHUNK_BYTES", chunk)
    source = object.__new__(logs._log_datasource())  # the read needs no state: skip Ray's path listing
    with pa.OSFile(str(path)) as f:
        tables = list(source._read_stream(f, str(path)))
    return [r for t in tables for r in t.to_pylist()]


def test_jsonl_in_small_chunks_and_parquet_give_the_same_users_as_the_loader(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    users = make_users(4, seed=5)
    lines = interaction_lines(users)
    jsonl = tmp_path / "log.jsonl"
    jsonl.write_text("".join(json.dumps(x) + "\n" + ("\n" if i == 3 else "") for i, x in enumerate(lines)))
    pq.write_table(pa.Table.from_pylist(lines), tmp_path / "log.parquet")
    want = {u.id: u.interactions for u in load_users(jsonl)}
    for path, chunk in ((jsonl, 37), (tmp_path / "log.parquet", None)):  # 37 bytes: lines cut across chunks
        records = read_records(path, monkeypatch, chunk)
        assert len(records) == len(lines)
        by_user: dict[str, list] = {}
        for r in records:
            by_user.setdefault(r["user_id"], []).append((r["path"], r["line"], r["record"]))
        got = {uid: user_from_records(recs).interactions for uid, recs in by_user.items()}
        assert {u: [(it.text, it.date) for it in v] for u, v in got.items()} == \
            {u: [(it.text, it.date) for it in v] for u, v in want.items()}


def test_a_bad_log_line_is_named_by_file_and_line(tmp_path, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_id": "a", "text": "fine"}\n{"user_id": "a", "text": \n')
    with pytest.raises(DataError, match=r"bad.jsonl.*line 2.*not valid JSON"):
        read_records(bad, monkeypatch)
    bad.write_text('{"user_id": "a", "text": "fine"}\n{"text": "whose?"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl.*line 2.*user_id"):
        read_records(bad, monkeypatch)
