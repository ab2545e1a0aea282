"""Ingestion: crawled files of several scholarly formats -> raw_documents, incremental and lossless.

Entry point: `corpusbridge.ingest.stage.run_ingest`.
"""
