"""The cluster payload: dictionary concept extraction (Aho-Corasick), sentence indices, document embeddings.

Rooms, by where they run:

- the payload program, on a node, one shard per run (this folder): `__main__.py` and `command.py` (its command
  line), `program.py` (verify, match, embed, publish), `workers.py` (forked matching processes), `vectors.py` (the
  embedding thread), `results.py` (output schemas and the result entry, also read by the load stage);
- `dictionary/`: term files -> artifact on the workstation, and the artifact's loader on every node;
- `concepts/`: matching a loaded dictionary in text;
- `sentences/`: sentence indices of the matches;
- `embeddings/`: the embedding model and its numpy/torch runtimes.

Arrows point down: program -> concepts/sentences/embeddings -> dictionary; nothing here imports `corpusbridge.cli`.
"""
