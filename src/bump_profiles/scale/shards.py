"""The output of a Ray run: a folder (local, or a bucket through pyarrow.fs) of profile shards.

Each shard is written whole or not at all: locally to a hidden temp file that is fsynced and then
renamed (a crash leaves a temp file, removed by the next run, never a half shard); on an object
store by one PUT, which is atomic there. The users of the finished shards are the users done: a
rerun skips them, so each user lands in exactly one shard. Parquet shards keep ``read`` (the
provenance) as a JSON text column, so that shards of any split share one schema; JSONL shards hold
the very lines single-process ``profile`` writes.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bump_profiles.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = ("parquet", "jsonl")


def is_uri(path: str) -> bool:
    return "://" in str(path)


class ShardDir:
    """Shards ``part-NNNNNN-<id>.<fmt>`` under ``root`` (a path or a URI such as ``s3://bucket/profiles``)."""

    def __init__(self, root: str | Path, fmt: str = "parquet"):
        from pyarrow import fs as pafs

        if fmt not in FORMATS:
            raise ConfigError(f"shard format must be one of {FORMATS}, not {fmt!r}")
        self.fmt = fmt
        self.uri = str(root)
        if is_uri(self.uri):
            self.fs, self.root = pafs.FileSystem.from_uri(self.uri)
            self.local = False
        else:
            self.fs, self.root = pafs.LocalFileSystem(), str(Path(root).resolve())
            self.local = True
        self.fs.create_dir(self.root, recursive=True)
        self._next: int | None = None  # the next shard's number (one writer at a time: the run's lock)

    def _files(self) -> list[str]:
        from pyarrow import fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(self.root, recursive=False))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File)

    def shards(self) -> list[str]:
        return [p for p in self._files() if os.path.basename(p).startswith("part-")
                and p.endswith((".parquet", ".jsonl"))]

    def remove_temps(self) -> int:
        """Delete temp files a killed run left behind (they never count as done)."""
        temps = [p for p in self._files() if os.path.basename(p).startswith(".part-") and p.endswith(".tmp")]
        for p in temps:
            self.fs.delete_file(p)
        return len(temps)

    def done(self, model: str | None = None) -> pa.Array:
        """The user ids in the finished shards (an Arrow string array: compact for millions of ids).

        A user found twice, or a shard written by another model than ``model``, is refused: resuming
        would duplicate users or mix two generators in one output."""
        import pyarrow as pa
        import pyarrow.compute as pc

        chunks = []
        for path in self.shards():
            ids, models = self._ids_and_models(path)
            if model is not None and len(models) and not pc.all(pc.equal(models, model)).as_py():
                other = next(m for m in models.to_pylist() if m != model)
                raise ConfigError(f"{self.uri} holds profiles from model '{other}' ({path}) but this run uses "
                                  f"'{model}': choose another output, or delete it to start over")
            chunks.append(ids)
        ids = pa.chunked_array(chunks, type=pa.string()).combine_chunks() if chunks else pa.array([], pa.string())
        if len(ids) and pc.count_distinct(ids).as_py() != len(ids):
            raise DataError("a user appears in two shards: the output was written by something other than one run "
                            "at a time", path=self.uri)
        return ids

    def _ids_and_models(self, path: str) -> tuple[pa.Array, pa.Array]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if path.endswith(".parquet"):
            table = pq.read_table(path, columns=["user_id", "model"], filesystem=self.fs)
            return table["user_id"].combine_chunks(), table["model"].combine_chunks()
        rows = list(self._jsonl_rows(path))
        return pa.array([r["user_id"] for r in rows], pa.string()), pa.array([r.get("model") for r in rows], pa.string())

    def _jsonl_rows(self, path: str) -> Iterator[dict[str, Any]]:
        with self.fs.open_input_stream(path) as handle:
            for n, line in enumerate(handle.read().decode("utf-8").splitlines(), start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"not a valid profile line ({exc.msg})", path=path, record=f"line {n}") from exc

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every profile line of every shard, as single-process ``profile`` writes them."""
        import pyarrow.parquet as pq

        from bump_profiles.scale.users import profile_line

        for path in self.shards():
            if path.endswith(".parquet"):
                yield from (profile_line(r) for r in pq.read_table(path, filesystem=self.fs).to_pylist())
            else:
                yield from self._jsonl_rows(path)

    def write(self, table: pa.Table) -> str:
        """Write one shard atomically; its path."""
        if self._next is None:
            self._next = len(self.shards())
        name = f"part-{self._next:06d}-{uuid.uuid4().hex[:8]}.{self.fmt}"
        self._next += 1
        payload = self._encode(table)
        final = f"{self.root}/{name}"
        if not self.local:
            with self.fs.open_output_stream(final) as out:  # one PUT: atomic on object stores
                out.write(payload)
            return final
        tmp = f"{self.root}/.{name}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.root)
        return final

    def _encode(self, table: pa.Table) -> bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from bump_profiles.scale.users import profile_line

        if self.fmt == "jsonl":
            return "".join(json.dumps(profile_line(r), ensure_ascii=False) + "\n" for r in table.to_pylist()).encode()
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return sink.getvalue().to_pybytes()


def _fsync_dir(path: str) -> None:
    """Make a rename durable: fsync the folder that holds it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
