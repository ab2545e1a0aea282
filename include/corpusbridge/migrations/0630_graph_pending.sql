-- The concept graph's shard deltas, folded once per load run (issue 12's load benchmark: one upsert of every pair
-- per shard was the load's largest cost, ~15 us a pair row, and a batch's shards touch mostly the same pairs).
-- A shard's load transaction appends its delta here with its ledger row (exactly once); graph/load.py
-- `fold_pending` adds every pending delta to concept_pairs / concept_docs / graph_totals in one transaction and
-- empties these tables. Unindexed heaps: written by INSERT ... SELECT, read whole by the fold.
CREATE TABLE graph_pending_pairs (
    concept_a text COLLATE "C" NOT NULL,
    concept_b text COLLATE "C" NOT NULL,
    docs      bigint NOT NULL,
    sentences bigint NOT NULL
);

CREATE TABLE graph_pending_concepts (
    concept_id text COLLATE "C" NOT NULL,
    label      text,
    docs       bigint NOT NULL,
    sentences  bigint NOT NULL,
    mentions   bigint NOT NULL
);

-- One row per loaded shard: its change of the document and sentence totals.
CREATE TABLE graph_pending_totals (
    batch_id  text NOT NULL,
    shard     integer NOT NULL,
    docs      bigint NOT NULL,
    sentences bigint NOT NULL,
    PRIMARY KEY (batch_id, shard)
);
