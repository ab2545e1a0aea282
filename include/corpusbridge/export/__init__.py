"""Export: a batch of clean documents as Parquet shards plus a manifest the cluster payload verifies."""
