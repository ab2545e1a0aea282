"""Build a real dictionary artifact from a few terms (real pyahocorasick, real files); every test that makes a
matcher runs once per scanning engine, which pins that both give the same matches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from corpusbridge.extract.concepts.matcher import Matcher
from corpusbridge.extract.dictionary import BuildOptions, build_dictionary, load_dictionary

MakeMatcher = Callable[..., Matcher]


@pytest.fixture(params=["pyahocorasick", "ahocorasick_rs"])
def make_matcher(tmp_path: Path, request: pytest.FixtureRequest) -> MakeMatcher:
    counter = iter(range(1000))

    def make(terms: dict[str, str] | list[tuple[str, str]], **options: bool) -> Matcher:
        rows = terms.items() if isinstance(terms, dict) else terms
        number = next(counter)
        source = tmp_path / f"terms-{number}.tsv"
        source.write_text("concept_id\tterm\n" + "".join(f"{c}\t{t}\n" for t, c in rows), encoding="utf-8")
        artifact = tmp_path / f"artifact-{number}"
        build_dictionary(source, artifact, BuildOptions(**options))
        return Matcher(load_dictionary(artifact), engine=request.param)

    return make
