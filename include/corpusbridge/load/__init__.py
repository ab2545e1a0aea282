"""Load back: verify fetched payload results, load each shard exactly once, reconcile the batch."""
