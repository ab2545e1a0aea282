-- The concept co-occurrence graph, kept equal to what document_concepts holds: every count is a sum over the loaded
-- documents, maintained in the load's per-shard transaction (graph/load.py: the shard's partial counts from the
-- payload are added, the previous counts of the documents it replaces are subtracted), so a shard loads into the
-- graph exactly once with its ledger row and a reprocessed document never counts twice.
--
-- Identifiers compare in code-point order (COLLATE "C"), the order the payload's partial counts use for a < b.

CREATE TABLE concept_pairs (
    concept_a text COLLATE "C" NOT NULL,
    concept_b text COLLATE "C" NOT NULL,
    docs      bigint NOT NULL,  -- documents holding both
    sentences bigint NOT NULL,  -- sentences holding both
    PRIMARY KEY (concept_a, concept_b),
    CHECK (concept_a < concept_b)
);
CREATE INDEX concept_pairs_b ON concept_pairs (concept_b, concept_a);

CREATE TABLE concept_docs (
    concept_id text COLLATE "C" PRIMARY KEY,
    label      text,                                  -- its most frequent matched form (first shard that named it)
    docs       bigint NOT NULL,
    sentences  bigint NOT NULL,
    mentions   bigint NOT NULL
);
-- No CHECK (count >= 0) on these two: INSERT .. ON CONFLICT checks the proposed row, a signed delta, before it
-- meets the row it adds to. graph/load.py checks the merged rows instead and fails the shard on a negative count.

-- The universes of NPMI: documents loaded (with or without concepts) and sentences holding at least one concept.
-- `changes` grows with every shard applied: what the DAG compares to emit the graph Asset's event.
CREATE TABLE graph_totals (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    docs       bigint NOT NULL CHECK (docs >= 0),
    sentences  bigint NOT NULL CHECK (sentences >= 0),
    changes    bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Results loaded before this migration: the graph starts equal to them.
INSERT INTO graph_totals (docs, sentences)
SELECT (SELECT count(*) FROM document_results),
       (SELECT count(*) FROM (SELECT DISTINCT doc_id, sentence FROM document_concepts) s);

INSERT INTO concept_docs (concept_id, label, docs, sentences, mentions)
SELECT concept_id, mode() WITHIN GROUP (ORDER BY lower(matched)), count(DISTINCT doc_id),
       count(DISTINCT (doc_id, sentence)), count(*)
FROM document_concepts GROUP BY concept_id;

WITH dc AS (SELECT DISTINCT doc_id, concept_id COLLATE "C" AS concept_id FROM document_concepts),
     sc AS (SELECT DISTINCT doc_id, sentence, concept_id COLLATE "C" AS concept_id FROM document_concepts),
     dp AS (SELECT a.concept_id AS a, b.concept_id AS b, count(*) AS n
            FROM dc a JOIN dc b ON a.doc_id = b.doc_id AND a.concept_id < b.concept_id GROUP BY 1, 2),
     sp AS (SELECT a.concept_id AS a, b.concept_id AS b, count(*) AS n
            FROM sc a JOIN sc b ON a.doc_id = b.doc_id AND a.sentence = b.sentence AND a.concept_id < b.concept_id
            GROUP BY 1, 2)
INSERT INTO concept_pairs (concept_a, concept_b, docs, sentences)
SELECT dp.a, dp.b, dp.n, coalesce(sp.n, 0) FROM dp LEFT JOIN sp ON sp.a = dp.a AND sp.b = dp.b;
