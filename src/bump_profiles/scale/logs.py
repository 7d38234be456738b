"""Reading an interaction log of any size into Ray Data, one row per user.

The log is JSONL (interaction lines or user lines, as :mod:`bump_profiles.data.jsonl` reads) or
Parquet with the same fields, one file or a folder of shards, local or in a bucket (any path Ray and
pyarrow.fs open: ``s3://``, ``gs://``, ``abfs://``). Every record keeps its file and line, so a bad
record is named, and a user's interactions are put back in file order after Ray's shuffle groups
them: the same order, hence the same split and prompt, as the single-process loader.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bump_profiles.data.jsonl import _user_id
from bump_profiles.errors import DataError
from bump_profiles.scale import require_ray
from bump_profiles.scale.users import scratch_row, user_from_records

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data

CHUNK_BYTES = 8 << 20  # JSONL is read in chunks of this size: a read task never holds a whole huge file
BLOCK_ROWS = 20_000


def read_log(paths: str | list[str]) -> ray.data.Dataset:
    """Records ``{user_id, path, line, record}`` (``record``: the JSON text) of every log file."""
    require_ray()
    import ray.data

    return ray.data.read_datasource(_log_datasource()(paths))


def user_rows(records: ray.data.Dataset, *, k: int = 0, done: pa.Array | None = None) -> ray.data.Dataset:
    """One row per user not in ``done`` (see :mod:`bump_profiles.scale.users` for the columns)."""
    ray = require_ray()
    if done is not None and len(done):
        done_ref = ray.put(done)

        def pending(batch: pa.Table) -> pa.Table:
            import pyarrow.compute as pc

            return batch.filter(pc.invert(pc.is_in(batch["user_id"], value_set=ray.get(done_ref))))

        records = records.map_batches(pending, batch_format="pyarrow")
    return records.groupby("user_id").map_groups(lambda g: _group_row(g, k), batch_format="pyarrow")


def _group_row(group: pa.Table, k: int) -> pa.Table:
    import pyarrow as pa

    user = user_from_records(list(zip(group["path"].to_pylist(), group["line"].to_pylist(),
                                      group["record"].to_pylist(), strict=True)))
    return pa.Table.from_pylist([scratch_row(user, k)])


def _records(path: str, rows: list[tuple[int, Any]]) -> dict[str, list]:
    out: dict[str, list] = {"user_id": [], "path": [], "line": [], "record": []}
    for line, obj in rows:
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object, got {type(obj).__name__}", path=path, record=f"line {line}")
        out["user_id"].append(_user_id(obj, f"line {line}", path))
        out["path"].append(path)
        out["line"].append(line)
        out["record"].append(json.dumps(obj, ensure_ascii=False, default=str))
    return out


def _jsonl_lines(f: Any, path: str) -> Iterator[list[tuple[int, Any]]]:
    """Parsed lines of a JSONL stream, in blocks, read in bounded chunks."""
    rest, lineno, block = b"", 0, []
    while True:
        chunk = f.read(CHUNK_BYTES)
        data = rest + chunk
        lines = data.split(b"\n")
        rest = lines.pop() if chunk else b""
        for raw in lines:
            lineno += 1
            if not raw.strip():
                continue
            try:
                block.append((lineno, json.loads(raw.decode("utf-8"))))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DataError(f"not valid JSON ({exc})", path=path, record=f"line {lineno}") from exc
            if len(block) >= BLOCK_ROWS:
                yield block
                block = []
        if not chunk:
            break
    if block:
        yield block


def _log_datasource() -> type:
    """The datasource class, built on first use so that importing this module never imports Ray."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from ray.data.datasource import FileBasedDatasource

    class LogDatasource(FileBasedDatasource):
        def __init__(self, paths: str | list[str]):
            super().__init__(paths, file_extensions=["jsonl", "parquet"])

        def _read_stream(self, f: pa.NativeFile, path: str) -> Iterator[pa.Table]:
            if path.endswith(".parquet"):
                line = 0
                for batch in pq.ParquetFile(f).iter_batches(batch_size=BLOCK_ROWS):
                    rows = batch.to_pylist()
                    yield pa.table(_records(path, [(line + i + 1, r) for i, r in enumerate(rows)]))
                    line += len(rows)
            else:
                for block in _jsonl_lines(f, path):
                    yield pa.table(_records(path, block))

    return LogDatasource
