"""The loaded graph as files other tools open: Parquet nodes/edges, GraphML (networkx, Gephi), and every concept
row as Parquet (so anyone can recount the graph and compare). Rows stream through server-side cursors in batches:
memory stays flat whatever the graph's size."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from corpusbridge.graph import statements
from corpusbridge.graph.query import totals
from corpusbridge.graph.stats import npmi

BATCH_ROWS = 50_000
Format = Literal["parquet", "graphml"]

NODES_SCHEMA = pa.schema(
    [
        pa.field("concept_id", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("docs", pa.int64(), nullable=False),
        pa.field("sentences", pa.int64(), nullable=False),
    ]
)
EDGES_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),  # source < target (code points)
        pa.field("target", pa.string(), nullable=False),
        pa.field("docs", pa.int64(), nullable=False),
        pa.field("sentences", pa.int64(), nullable=False),
        pa.field("npmi", pa.float64()),  # over documents; null below min_count
        pa.field("npmi_sentences", pa.float64()),
    ]
)
CONCEPT_ROWS_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("concept_id", pa.string(), nullable=False),
        pa.field("start", pa.int32(), nullable=False),
        pa.field("end", pa.int32(), nullable=False),
        pa.field("sentence", pa.int32(), nullable=False),
    ]
)


@dataclass(frozen=True)
class GraphExport:
    format: str
    nodes: int
    edges: int
    files: list[str]
    docs: int  # the NPMI universes the file's statistics were computed over
    sentences: int

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def export_graph(
    conn: psycopg.Connection, out_dir: Path, *, min_docs: int = 1, fmt: Format = "parquet", min_count: int = 1
) -> GraphExport:
    """Nodes with at least `min_docs` documents and the edges between them, written to `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    universe = totals(conn)
    params = {"min_docs": min_docs}
    with conn.transaction():  # one snapshot for nodes and edges; named cursors live in a transaction
        nodes = _stream(conn, statements.NODES, params, "graph_nodes")
        edges = (_edge(row, universe.docs, universe.sentences, min_count) for row in _rows_of_edges(conn, params))
        if fmt == "graphml":
            path = out_dir / "graph.graphml"
            counts = _write_graphml(path, nodes, edges)
            files = [path]
        else:
            files = [out_dir / "nodes.parquet", out_dir / "edges.parquet"]
            counts = (_write_parquet(files[0], NODES_SCHEMA, nodes), _write_parquet(files[1], EDGES_SCHEMA, edges))
    return GraphExport(fmt, counts[0], counts[1], [str(f) for f in files], universe.docs, universe.sentences)


def export_concept_rows(conn: psycopg.Connection, path: Path) -> int:
    """Every loaded (doc_id, concept_id, start, end, sentence) row, in document order; returns the rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with conn.transaction():
        rows = _stream(conn, statements.ALL_CONCEPT_ROWS, {}, "concept_rows")
        return _write_parquet(path, CONCEPT_ROWS_SCHEMA, rows)


def _rows_of_edges(conn: psycopg.Connection, params: dict) -> Iterator[tuple]:
    return _stream(conn, statements.EDGES, params, "graph_edges")


def _stream(conn: psycopg.Connection, query: str, params: dict, name: str) -> Iterator[tuple]:
    with conn.cursor(name=name) as cursor:
        cursor.itersize = BATCH_ROWS
        cursor.execute(query, params)  # type: ignore[arg-type]
        yield from cursor


def _edge(row: tuple, docs: int, sentences: int, min_count: int) -> tuple:
    a, b, pair_docs, pair_sentences, a_docs, a_sentences, b_docs, b_sentences = row
    return (
        a,
        b,
        pair_docs,
        pair_sentences,
        npmi(pair_docs, a_docs, b_docs, docs, min_count=min_count),
        npmi(pair_sentences, a_sentences, b_sentences, sentences, min_count=min_count),
    )


def _write_parquet(path: Path, schema: pa.Schema, rows: Iterator[tuple]) -> int:
    """Batches of rows into a Parquet file, under a temp name renamed at the end (no half file on a crash)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    written = 0
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for batch in _batches(rows):
            columns = list(zip(*batch, strict=True))
            writer.write_table(pa.table(dict(zip(schema.names, columns, strict=True)), schema=schema))
            written += len(batch)
    os.replace(tmp, path)
    return written


def _batches(rows: Iterator[tuple]) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


_GRAPHML_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key id="label" for="node" attr.name="label" attr.type="string"/>
  <key id="docs" for="node" attr.name="docs" attr.type="long"/>
  <key id="sentences" for="node" attr.name="sentences" attr.type="long"/>
  <key id="edocs" for="edge" attr.name="docs" attr.type="long"/>
  <key id="esentences" for="edge" attr.name="sentences" attr.type="long"/>
  <key id="npmi" for="edge" attr.name="npmi" attr.type="double"/>
  <key id="npmi_sentences" for="edge" attr.name="npmi_sentences" attr.type="double"/>
  <graph id="concepts" edgedefault="undirected">
"""


def _write_graphml(path: Path, nodes: Iterator[tuple], edges: Iterator[tuple]) -> tuple[int, int]:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    node_count = edge_count = 0
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(_GRAPHML_HEAD)
        for concept_id, label, docs, sentences in nodes:
            label_data = f'<data key="label">{escape(label)}</data>' if label else ""
            out.write(
                f'    <node id={quoteattr(concept_id)}>{label_data}<data key="docs">{docs}</data>'
                f'<data key="sentences">{sentences}</data></node>\n'
            )
            node_count += 1
        for source, target, docs, sentences, doc_npmi, sentence_npmi in edges:
            stats = "".join(
                f'<data key="{key}">{value!r}</data>'
                for key, value in (("npmi", doc_npmi), ("npmi_sentences", sentence_npmi))
                if value is not None
            )
            out.write(
                f'    <edge source={quoteattr(source)} target={quoteattr(target)}><data key="edocs">{docs}</data>'
                f'<data key="esentences">{sentences}</data>{stats}</edge>\n'
            )
            edge_count += 1
        out.write("  </graph>\n</graphml>\n")
    os.replace(tmp, path)
    return node_count, edge_count
