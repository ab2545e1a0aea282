"""Both scanning engines report the same word-boundary hits, and the matcher's answer does not depend on their
order."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from corpusbridge.extract.concepts import scan
from corpusbridge.extract.concepts.matcher import Matcher
from corpusbridge.extract.dictionary import build_dictionary, load_dictionary
from corpusbridge.extract.dictionary.normalize import normalize_text

WORDS = ["lung", "cancer", "cell", "small", "line", "il", "6", "t", "é", "straße", "b"]


def _random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 40)):
        parts.append(rng.choice(WORDS).upper() if rng.random() < 0.2 else rng.choice(WORDS))
        parts.append(rng.choice([" ", " ", " ", "-", ", ", ". ", "  ", "(", ")", "s "]))
    return "".join(parts)


@pytest.fixture(scope="module")
def dictionary(tmp_path_factory: pytest.TempPathFactory):
    rng = random.Random(7)
    terms = {" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) for _ in range(120)}
    terms |= {"IL-6", "t(9;22)", "small cell lung cancer", "cell line", "ell", "ung cancer"}  # and inside words
    folder = tmp_path_factory.mktemp("scan")
    source = folder / "terms.tsv"
    source.write_text("concept_id\tterm\n" + "".join(f"C{i}\t{t}\n" for i, t in enumerate(sorted(terms))), "utf-8")
    build_dictionary(source, folder / "artifact")
    return load_dictionary(folder / "artifact")


def test_engines_report_the_same_hits_at_word_starts(dictionary) -> None:
    rust = scan.hit_finder(dictionary, "ahocorasick_rs")
    python = scan.hit_finder(dictionary, "pyahocorasick")
    rng = random.Random(1)
    inside_words = 0
    for _ in range(300):
        mapped = " " + normalize_text(_random_text(rng)).mapped + " "
        rust_hits = sorted(rust(mapped))
        python_hits = sorted(python(mapped))
        assert all(mapped[start - 1] == " " and mapped[end - 1] == " " for _, start, end in python_hits)
        assert [hit for hit in rust_hits if mapped[hit[1] - 1] == " "] == python_hits
        inside_words += len(rust_hits) - len(python_hits)
    assert inside_words > 0  # the Rust keys have no leading space: the matcher drops these


def test_matches_do_not_depend_on_the_order_of_hits(dictionary) -> None:
    matcher, reversed_order = Matcher(dictionary, "ahocorasick_rs"), Matcher(dictionary, "ahocorasick_rs")
    forward = reversed_order._hits
    reversed_order._hits = lambda mapped: list(reversed(list(forward(mapped))))
    rng = random.Random(2)
    texts = [_random_text(rng) for _ in range(300)]
    assert sum(len(matcher.find(t)) for t in texts) > 300
    for text in texts:
        assert reversed_order.find(text) == matcher.find(text) == Matcher(dictionary, "pyahocorasick").find(text)


def test_keys_read_back_by_entry(dictionary) -> None:
    keys = scan.dictionary_keys(dictionary)
    assert len(keys) == len(dictionary.infos) and all(k.startswith(" ") and k.endswith(" ") for k in keys)
    assert [len(k) for k in keys] == [info >> 2 for info in dictionary.infos]  # info: key length << 2 | kind


def test_auto_uses_rust_for_small_dictionaries_only(dictionary, monkeypatch: pytest.MonkeyPatch) -> None:
    assert scan.choose_engine(dictionary) == "ahocorasick_rs"
    monkeypatch.setattr(scan, "RUST_MAX_KEYS", len(dictionary.infos) - 1)
    assert scan.choose_engine(dictionary) == "pyahocorasick"
    assert scan.choose_engine(dictionary, "ahocorasick_rs") == "ahocorasick_rs"
    with pytest.raises(ValueError, match="unknown matching engine 'regex'"):
        scan.choose_engine(dictionary, "regex")  # type: ignore[arg-type]


def test_split_artifacts_scan_with_their_shipped_automata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "terms.tsv"
    source.write_text("concept_id\tterm\n" + "".join(f"C{i}\t{w} term\n" for i, w in enumerate(WORDS)), "utf-8")
    monkeypatch.setattr("corpusbridge.extract.dictionary.build.PART_PICKLE_BYTES", 256)
    build_dictionary(source, tmp_path / "split")
    loaded = load_dictionary(tmp_path / "split")
    assert len(loaded.automata) > 1
    text = "Lung term, cell term and straße term; b term."
    assert Matcher(loaded, "pyahocorasick").find(text) == Matcher(loaded, "ahocorasick_rs").find(text)
    assert len(Matcher(loaded).find(text)) == 4
