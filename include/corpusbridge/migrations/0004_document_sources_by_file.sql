-- Provenance keyed by where a record sits (file, position), which is unique by construction, instead of
-- (doc_id, file, position). Files are merged in walk order, so inserts now append to the key instead of landing
-- at random doc_ids all over a large index (past shared_buffers at 10^6 documents, every insert touched a
-- cold page); the same key serves the deletes of a re-read file, so the separate file index goes. Lookups of
-- a document's sources use the narrower doc_id index.
ALTER TABLE document_sources DROP CONSTRAINT document_sources_pkey;
ALTER TABLE document_sources ADD PRIMARY KEY (source_file, locator);
DROP INDEX document_sources_file;
CREATE INDEX document_sources_doc ON document_sources (doc_id);
