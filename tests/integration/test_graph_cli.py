"""`corpusbridge related / graph export / concepts --export` on real payload results in the embedded PostgreSQL:
the exported concept rows recount to the exported edges, GraphML parses, the SVG draws every neighbour."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from itertools import combinations
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from load_support import TERMS_V1, Batch, corpus, dictionary, make_batch, register_batch

from corpusbridge.cli import main

pytestmark = pytest.mark.integration

GRAPHML = "{http://graphml.graphdrawing.org/xmlns}"


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    root = tmp_path_factory.mktemp("graph-cli")
    return make_batch(root, "graph-cli", corpus(200, seed=5), dictionary(root, "v1", TERMS_V1), shard_rows=100,
                      embeddings=False)  # fmt: skip


@pytest.fixture
def loaded(db, db_uri: str, batch: Batch, capsys: pytest.CaptureFixture[str]) -> str:
    register_batch(db, batch)
    _cli(capsys, "load", "--manifest", str(batch.manifest), "--results", str(batch.results), "--db", db_uri)
    return db_uri


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_exported_rows_recount_to_the_exported_edges(loaded: str, tmp_path: Path, capsys) -> None:
    rows_file = tmp_path / "rows.parquet"
    out = _cli(capsys, "concepts", "--export", str(rows_file), "--db", loaded)
    rows = pq.read_table(rows_file).to_pylist()
    assert out["rows"] == len(rows) > 0 and set(rows[0]) == {"doc_id", "concept_id", "start", "end", "sentence"}

    done = _cli(capsys, "graph", "export", "--out", str(tmp_path / "g"), "--db", loaded)
    edges = pq.read_table(tmp_path / "g" / "edges.parquet").to_pylist()
    nodes = pq.read_table(tmp_path / "g" / "nodes.parquet").to_pylist()
    assert (done["nodes"], done["edges"]) == (len(nodes), len(edges)) and done["docs"] == 200

    docs: dict[str, set[str]] = {}
    sentences: dict[tuple[str, int], set[str]] = {}
    for row in rows:
        docs.setdefault(row["doc_id"], set()).add(row["concept_id"])
        sentences.setdefault((row["doc_id"], row["sentence"]), set()).add(row["concept_id"])
    pair_docs = Counter(p for found in docs.values() for p in combinations(sorted(found), 2))
    pair_sentences = Counter(p for found in sentences.values() for p in combinations(sorted(found), 2))
    assert {(e["source"], e["target"]): (e["docs"], e["sentences"]) for e in edges} == {
        p: (n, pair_sentences[p]) for p, n in pair_docs.items()
    }
    assert all(e["source"] < e["target"] and -1 <= e["npmi"] <= 1 for e in edges)
    assert {n["concept_id"]: n["docs"] for n in nodes} == Counter(c for f in docs.values() for c in f)
    assert all(n["label"] for n in nodes)


def test_graphml_and_min_docs(loaded: str, tmp_path: Path, capsys) -> None:
    full = _cli(capsys, "graph", "export", "--out", str(tmp_path), "--format", "graphml", "--db", loaded)
    graph = ET.parse(tmp_path / "graph.graphml").getroot().find(f"{GRAPHML}graph")
    assert graph is not None and graph.get("edgedefault") == "undirected"
    ids = {n.get("id") for n in graph.iter(f"{GRAPHML}node")}
    edges = list(graph.iter(f"{GRAPHML}edge"))
    assert len(ids) == full["nodes"] and len(edges) == full["edges"] > 0
    assert all(e.get("source") in ids and e.get("target") in ids for e in edges)

    smallest = min(pq.read_table(_parquet(loaded, tmp_path, capsys) / "nodes.parquet").column("docs").to_pylist())
    pruned = _cli(capsys, "graph", "export", "--out", str(tmp_path / "p"), "--min-docs", str(smallest + 1),
                  "--db", loaded)  # fmt: skip
    assert pruned["nodes"] < full["nodes"]


def _parquet(db_uri: str, tmp_path: Path, capsys) -> Path:
    _cli(capsys, "graph", "export", "--out", str(tmp_path / "all"), "--db", db_uri)
    return tmp_path / "all"


def test_related_lists_neighbours_and_draws_them(loaded: str, tmp_path: Path, capsys) -> None:
    svg = tmp_path / "c2.svg"
    found = _cli(capsys, "related", "C2", "--svg", str(svg), "--db", loaded)
    neighbours = found["neighbours"]
    assert found["concept_id"] == "C2" and neighbours
    scores = [n["npmi_docs"] for n in neighbours]
    assert scores == sorted(scores, reverse=True)
    drawing = ET.parse(svg).getroot()
    texts = " ".join(t.text or "" for t in drawing.iter("{http://www.w3.org/2000/svg}text"))
    assert all(n["concept_id"] in texts for n in neighbours)
    by_sentence = _cli(capsys, "related", "C2", "--by", "sentence", "--limit", "1", "--db", loaded)
    assert by_sentence["by"] == "sentence" and len(by_sentence["neighbours"]) == 1


def test_related_leaves_out_pairs_seen_by_chance_unless_asked(loaded: str, capsys) -> None:
    every = _cli(capsys, "related", "C2", "--min-count", "1", "--limit", "1000", "--db", loaded)
    default = _cli(capsys, "related", "C2", "--limit", "1000", "--db", loaded)
    assert (every["min_count"], default["min_count"]) == (1, 5)
    assert 0 < len(default["neighbours"]) < len(every["neighbours"])
    assert {n["concept_id"] for n in default["neighbours"]} == {
        n["concept_id"] for n in every["neighbours"] if n["docs"] >= 5
    }
    assert main(["related", "C2", "--min-count", "100000", "--db", loaded]) == 0
    assert "--min-count 1 lists every pair" in capsys.readouterr().out


def test_unknown_concept_names_the_fix(loaded: str) -> None:
    with pytest.raises(SystemExit, match="not in the concept graph"):
        main(["related", "NO-SUCH", "--db", loaded])
