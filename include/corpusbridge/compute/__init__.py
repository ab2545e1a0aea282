"""Compute: running the cluster payload on every shard of an export batch, locally or as a SLURM array."""
