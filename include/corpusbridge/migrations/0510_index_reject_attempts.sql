-- Issue 13 item 6: documents Elasticsearch refused are sent again by later runs (index/elastic.py) instead of
-- being left behind the watermark. `attempts` counts refusals of the same version (clean_seq); after
-- elastic.REJECT_ATTEMPTS the reject is `permanent` (rejected for good) until the document changes.
ALTER TABLE index_rejects
    ADD COLUMN attempts  integer NOT NULL DEFAULT 1,
    ADD COLUMN permanent boolean NOT NULL DEFAULT false;
