"""The concept graph's size, and whether a given load run changed it: what the DAG's `concept_graph` task reports
and what decides whether the graph's Asset gets an event (analysis DAGs follow only real changes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

SIZE = """
    SELECT (SELECT count(*) FROM concept_pairs), (SELECT count(*) FROM concept_docs),
           t.docs, t.sentences, t.changes
    FROM graph_totals t
"""
# The graph changes exactly when a shard is loaded (graph/load.py runs in the shard's transaction, with its ledger
# row): a run that put ledger rows in changed the graph, a run that put none did not.
SHARDS_OF_RUN = "SELECT count(*) FROM load_ledger WHERE run_label = %s"


@dataclass(frozen=True)
class GraphSummary:
    pairs: int
    concepts: int
    docs: int
    sentences: int
    changes: int  # shards applied to the graph since it was created
    shards_loaded: int  # by the run asked about
    changed: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def graph_summary(conn: psycopg.Connection, run_label: str) -> GraphSummary:
    """The graph's size now, and whether the load run `run_label` (the Airflow run id) changed it."""
    row = conn.execute(SIZE).fetchone()
    pairs, concepts, docs, sentences, changes = row if row else (0, 0, 0, 0, 0)
    shards_row = conn.execute(SHARDS_OF_RUN, (run_label,)).fetchone()
    shards = int(shards_row[0]) if shards_row else 0
    conn.commit()
    return GraphSummary(int(pairs), int(concepts), int(docs), int(sentences), int(changes), shards, shards > 0)
