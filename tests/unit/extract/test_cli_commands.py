"""`corpusbridge dictionary build` and `corpusbridge extract` as a user types them (--json summaries)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusbridge.cli import dictionary as dictionary_command
from corpusbridge.cli import extract as extract_command


def _cli(argv: list[str]) -> int:
    # Only these two modules: the full registry also lists commands built on other branches.
    parser = argparse.ArgumentParser(prog="corpusbridge")
    subparsers = parser.add_subparsers(dest="command", required=True)
    dictionary_command.add_parser(subparsers)
    extract_command.add_parser(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


def test_build_then_extract_an_ad_hoc_shard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    terms = tmp_path / "terms.tsv"
    terms.write_text("concept_id\tterm\nC1\tlung cancer\nC2\tlung\n", encoding="utf-8")
    assert _cli(["dictionary", "build", str(terms), "--out", str(tmp_path / "art"), "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["keys"] == 2 and built["terms_read"] == 2 and built["load_seconds"] >= 0
    shard = tmp_path / "s.parquet"
    pq.write_table(pa.table({"doc_id": ["d1", "d2"], "text": ["Lung cancer. Lung.", None]}), shard)
    argv = ["extract", "--input", str(shard), "--dictionary", str(tmp_path / "art"), "--out", str(tmp_path / "o")]
    assert _cli([*argv, "--no-embeddings", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["status"], summary["docs"], summary["concepts"]) == ("done", 2, 2)
    rows = pq.read_table(tmp_path / "o" / "concepts-0.parquet").to_pylist()
    assert [(r["concept_id"], r["sentence"]) for r in rows] == [("C1", 0), ("C2", 1)]


def test_errors_are_one_json_object_naming_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["extract", "--manifest", str(tmp_path / "m.json"), "--index", "0", "--dictionary", str(tmp_path)]
    assert _cli([*argv, "--out", str(tmp_path / "o"), "--json"]) == 2
    assert "manifest not found" in json.loads(capsys.readouterr().out)["error"]
    from corpusbridge.cli import main  # its handler turns a command's SystemExit into the one JSON line

    assert main(["dictionary", "build", str(tmp_path / "absent.tsv"), "--out", str(tmp_path / "a"), "--json"]) == 1
    assert "absent.tsv" in json.loads(capsys.readouterr().out)["error"]


def test_embedding_options_are_checked_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shard = tmp_path / "s.parquet"
    pq.write_table(pa.table({"doc_id": ["d1"], "text": ["Lung cancer."]}), shard)
    argv = ["extract", "--input", str(shard), "--dictionary", str(tmp_path / "art"), "--out", str(tmp_path / "o")]
    assert _cli([*argv, "--embedding-dtype", "bfloat16", "--json"]) == 2
    assert "needs --embedding-runtime torch" in json.loads(capsys.readouterr().out)["error"]
    with pytest.raises(SystemExit):
        _cli([*argv, "--embedding-batch-size", "0"])
    assert not (tmp_path / "o").exists()


def test_the_torch_runtime_without_torch_is_one_json_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("torch is installed here; the message is for CPU nodes without it")
    terms = tmp_path / "terms.tsv"
    terms.write_text("concept_id\tterm\nC1\tlung\n", encoding="utf-8")
    assert _cli(["dictionary", "build", str(terms), "--out", str(tmp_path / "art"), "--json"]) == 0
    capsys.readouterr()
    shard = tmp_path / "s.parquet"
    pq.write_table(pa.table({"doc_id": ["d1"], "text": ["Lung cancer."]}), shard)
    argv = ["extract", "--input", str(shard), "--dictionary", str(tmp_path / "art"), "--out", str(tmp_path / "o")]
    assert _cli([*argv, "--embedding-runtime", "torch", "--json"]) == 2
    assert "needs torch installed" in json.loads(capsys.readouterr().out)["error"]
    assert not [path for path in (tmp_path / "o").iterdir() if path.suffix in (".parquet", ".json")]
