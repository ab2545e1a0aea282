-- Canonical documents are the only ones exported. `canonical_id = doc_id` compares two columns, which the planner
-- estimates at 0.5% of the rows whatever the data: with ~100% canonical it then chose nested-loop anti-joins that
-- are quadratic at scale. A stored boolean gets real statistics. (0310's partial index on the two-column predicate
-- is replaced by one on the boolean.)
ALTER TABLE clean_documents ADD COLUMN IF NOT EXISTS is_canonical boolean
    GENERATED ALWAYS AS (canonical_id = doc_id) STORED;
DROP INDEX IF EXISTS clean_documents_canonical;
-- Exported in byte order of doc_id (COLLATE "C": the same order, hence the same shards, on every server whatever its
-- locale); this partial index serves that ordered scan.
CREATE INDEX IF NOT EXISTS clean_documents_canonical_c ON clean_documents ((doc_id COLLATE "C")) WHERE is_canonical;
