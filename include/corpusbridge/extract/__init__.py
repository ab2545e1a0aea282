"""The cluster payload: dictionary concept extraction (Aho-Corasick), sentence indices, document embeddings."""
