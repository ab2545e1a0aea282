"""The payload's command line, the one thing both backends run: `python -m corpusbridge.extract ...` per shard."""

from __future__ import annotations

PAYLOAD_MODULE = "corpusbridge.extract"


def extract_argv(
    python: str, manifest: str, dictionary: str, out_dir: str, *, embeddings: bool, workers: int | None = None
) -> list[str]:
    """Everything but `--index`: the local backend appends it per shard, the SLURM one from the array task id."""
    argv = [python, "-m", PAYLOAD_MODULE, "--manifest", manifest, "--dictionary", dictionary, "--out", out_dir]
    if not embeddings:
        argv.append("--no-embeddings")
    if workers is not None:
        argv += ["--workers", str(workers)]
    return [*argv, "--json"]
