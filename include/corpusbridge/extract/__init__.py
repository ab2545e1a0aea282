"""The cluster payload: dictionary concept extraction and embeddings over exported Parquet shards."""
