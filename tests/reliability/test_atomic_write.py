"""A writer killed mid-way leaves the previous file intact (temp file, fsync, rename)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

from bump_profiles.data.atomic import append_jsonl, atomic_write_json

WRITER = textwrap.dedent("""
    import os, sys, time
    from bump_profiles.data import atomic
    def stall(fd):  # the new content is written but not yet renamed into place: block here
        print("writing", flush=True)
        time.sleep(60)
    atomic.os.fsync = stall
    atomic.atomic_write_text(sys.argv[1], "NEW CONTENT " * 100000)
""")


def test_killed_writer_leaves_previous_file_intact(tmp_path):
    target = tmp_path / "results.json"
    atomic_write_json(target, {"version": 1})
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert json.loads(target.read_text()) == {"version": 1}


def test_append_jsonl_adds_whole_lines(tmp_path):
    path = tmp_path / "out.jsonl"
    for i in range(3):
        append_jsonl(path, {"i": i})
    assert [json.loads(x)["i"] for x in path.read_text().splitlines()] == [0, 1, 2]
