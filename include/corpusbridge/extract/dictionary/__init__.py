"""The concept dictionary: term files read and built into a versioned Aho-Corasick artifact on the workstation
(terms.py, build.py), the artifact's format and loader that every node uses (artifact.py), and the one
normalization that both the dictionary's keys and the matched text go through (normalize.py; its version is part of
the artifact's format, so it lives with the dictionary).

The names below are the dictionary's public surface (`corpusbridge dictionary build`, the compute stage's cache).
"""

from corpusbridge.extract.dictionary.artifact import BuildOptions, DictionaryError, load_dictionary, read_version
from corpusbridge.extract.dictionary.build import build_dictionary

__all__ = [
    "BuildOptions",
    "DictionaryError",
    "build_dictionary",
    "load_dictionary",
    "read_version",
]
