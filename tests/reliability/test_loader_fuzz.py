"""Fuzz the loaders: whatever the bytes, they load or raise our DataError, nothing else escapes.

Three strategies over 10,500 inputs in all: raw bytes, arbitrary JSON values, and near-valid
records with fields of the wrong type or missing.
"""

from __future__ import annotations

import json
import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bump_profiles.data import load_jsonl, load_lamp_questions
from bump_profiles.errors import DataError

FAST = settings(max_examples=3500, deadline=None, suppress_health_check=list(HealthCheck), database=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
field_values = st.none() | st.integers() | st.text(max_size=12) | st.lists(st.text(max_size=5), max_size=2) | st.floats(allow_nan=False)
lamp_item = st.fixed_dictionaries({}, optional={"id": field_values, "title": field_values, "abstract": field_values, "date": field_values})
lamp_question = st.fixed_dictionaries({}, optional={"id": field_values, "input": field_values, "profile": st.lists(lamp_item, max_size=3) | field_values, "user_id": field_values})
jsonl_record = st.fixed_dictionaries({}, optional={"user_id": field_values, "text": field_values, "timestamp": field_values, "score": field_values, "interactions": st.lists(st.dictionaries(st.sampled_from(["text", "timestamp", "id"]), field_values), max_size=3) | field_values})


def _load_both(data: bytes) -> None:
    fd, path = tempfile.mkstemp(suffix=".json")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        for loader in (load_lamp_questions, load_jsonl):
            try:
                loader(path)
            except DataError:
                pass
    finally:
        os.unlink(path)


@FAST
@given(st.binary(max_size=200))
def test_random_bytes(data):
    _load_both(data)


@FAST
@given(json_values)
def test_random_json_values(value):
    _load_both(json.dumps(value).encode())


@FAST
@given(st.lists(lamp_question, max_size=3), st.lists(jsonl_record, max_size=4))
def test_near_valid_records(questions, records):
    _load_both(json.dumps(questions).encode())
    _load_both("\n".join(json.dumps(r) for r in records).encode())
