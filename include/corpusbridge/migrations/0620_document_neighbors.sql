-- The document similarity graph: the exact k nearest neighbours of every loaded document by vector, computed by the
-- kNN job (graph/knn_payload.py, locally or as a SLURM array) and loaded by graph/neighbors_load.py.
--
-- neighbor_graphs is the kNN job's ledger: one row per loaded graph, keyed by the sha256 over its parts' entries.
-- A load replaces the previous graph in one transaction (delete, insert, flip `current`), so a reader sees the old
-- graph or the new one, never a mix; loading the current graph's result again finds its row and loads nothing.

CREATE TABLE neighbor_graphs (
    graph_id      bigserial PRIMARY KEY,
    result_sha256 text NOT NULL,        -- sha256 over the parts' neighbors-I.json, in index order
    input_sha256  text NOT NULL,        -- the exported vectors the job read
    k             integer NOT NULL CHECK (k >= 1),
    parts         integer NOT NULL CHECK (parts >= 1),
    docs          bigint NOT NULL,
    edges         bigint NOT NULL,
    backend       text,
    device        text,                 -- cpu or cuda (the first part's; parts may differ on a mixed cluster)
    code_version  text,
    run_label     text NOT NULL,
    image_digest  text,
    current       boolean NOT NULL DEFAULT false,
    loaded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX neighbor_graphs_one_current ON neighbor_graphs (current) WHERE current;
CREATE INDEX neighbor_graphs_result ON neighbor_graphs (result_sha256);

CREATE TABLE document_neighbors (
    doc_id      text NOT NULL,
    rank        smallint NOT NULL CHECK (rank >= 1),
    neighbor_id text NOT NULL,
    cosine      real NOT NULL,
    graph_id    bigint NOT NULL REFERENCES neighbor_graphs,
    PRIMARY KEY (doc_id, rank),
    CHECK (doc_id <> neighbor_id)
);
