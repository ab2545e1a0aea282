"""Record helpers: the JSON encoder behind content hashes and stored authors/raw records."""

from __future__ import annotations

import json

import pytest

from corpusbridge.ingest.records import Record, json_bytes


def test_json_bytes_is_compact_sorted_utf8() -> None:
    assert json_bytes({"b": "é", "a": [1, None]}, sort_keys=True) == '{"a":[1,null],"b":"é"}'.encode()


def test_json_bytes_takes_integers_beyond_64_bits_like_the_standard_encoder() -> None:
    big = {"n": 2**80}
    assert json.loads(json_bytes(big)) == big


def test_json_bytes_refuses_lone_surrogates_with_a_value_error() -> None:
    with pytest.raises(ValueError):
        json_bytes({"t": "\ud800"})


def test_content_hash_ignores_everything_but_the_content() -> None:
    def record(raw: dict) -> Record:
        return Record("id:1", "jsonl", "line 1", "T", "A", None, [{"name": "X"}], 2020, "V", "en", raw)

    assert record({"cited_by": 1}).content_hash() == record({"cited_by": 2}).content_hash()
    changed = Record("id:1", "jsonl", "line 1", "T2", "A", None, [{"name": "X"}], 2020, "V", "en", {})
    assert changed.content_hash() != record({}).content_hash()
