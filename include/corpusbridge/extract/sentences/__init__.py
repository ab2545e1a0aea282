"""Sentence indices for matches, as spaCy's `blank("en")` + `sentencizer` would give them, without importing spaCy
on the fast path: the splitter (splitter.py), a plain-Python port of spaCy's per-chunk tokenizer (chunk_tokenizer.py),
and spaCy's rules exported as data (spacy_rules.py, spacy_en_rules.json; regenerate with
`python -m corpusbridge.extract.sentences.spacy_rules` after a spaCy upgrade).
"""
