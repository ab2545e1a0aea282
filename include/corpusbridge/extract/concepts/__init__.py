"""Concept matching on a node: raw hits of the loaded artifact's keys in normalized text (scan.py, two engines) and
the whole-word, leftmost-longest selection with offsets into the original text (matcher.py).

Depends on dictionary/ (the artifact and its normalization), never the reverse: building a dictionary needs no
matcher.
"""
